"""Putting notices in the outbox: composed once, with fixed bytes and Message-ID, in the caller's
transaction (the sender process sends them later: ``flows/outbox.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from dispatchd.domain.tokens import bounce_address
from dispatchd.flows.notices import NoticeContext
from dispatchd.mail.compose import OutboundMail, bare_address, compose, new_message_id
from dispatchd.store import queries
from dispatchd.store.tables import Outbox


def enqueue(session: Session, notices: list[OutboundMail], ctx: NoticeContext, now: datetime) -> None:
    """Compose ``notices`` and put them in the outbox, inside the caller's transaction.

    The envelope sender is a signed VERP address (requests+m<task>.<Message-ID part>.<sig>@…),
    so a bounce names the exact email that failed even when it quotes nothing of it.
    """
    if not notices:
        return
    config = ctx.config
    rows = []
    for notice in notices:
        message_id = new_message_id(config.smtp.from_address, notice.task_id)
        raw = compose(notice, config.smtp.from_address, notice.reply_to or config.mailbox.address, message_id, now)
        envelope_from = (bounce_address(config.mailbox.address, message_id, ctx.secret) if config.smtp.verp
                         else bare_address(config.smtp.from_address))
        rows.append(dict(
            message_id=message_id, task_id=notice.task_id, kind=notice.kind, envelope_from=envelope_from,
            recipients=",".join(notice.to), subject=notice.subject[:500], raw=raw, status="pending", attempts=0,
            next_attempt_at=now, last_error="", created_at=now))
    # Plain INSERTs, one statement for all: nothing reads the rows back in this transaction
    # through the ORM, and building the mapped objects cost as much as composing the emails.
    session.connection().execute(_INSERT_OUTBOX, rows)
    for notice in notices:
        if notice.kind in queries.AUTO_REPLY_KINDS:
            queries.count_auto_reply(session, notice.to, notice.task_id, now)


_INSERT_OUTBOX = insert(Outbox.__table__)  # type: ignore[attr-defined]
