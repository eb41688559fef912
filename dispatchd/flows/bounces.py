"""Bounces: a delivery report is attached to the email that failed, never read as a request.

The failed email is found by its VERP envelope address, else by the Message-ID the report
quotes. A permanent failure marks that outbox entry ``bounced``, adds an event to its task and
tells the queue owners (never about a notice that was itself about a bounce: no loops). A delay
report is only noted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import Session, select

from dispatchd.domain.bounces import BounceVerdict, worst
from dispatchd.domain.models import InboundMail
from dispatchd.domain.tokens import find_bounced_email
from dispatchd.flows.notices import NoticeContext, bounce_notices
from dispatchd.mail.compose import OutboundMail
from dispatchd.store import queries
from dispatchd.store.tables import Outbox, Task

log = structlog.get_logger("dispatchd.bounces")


@dataclass(frozen=True)
class BounceOutcome:
    outbox: Outbox | None
    verdict: BounceVerdict | None
    reason: str
    notices: tuple[OutboundMail, ...] = ()


def handle_bounce(session: Session, mail: InboundMail, ctx: NoticeContext, now: datetime) -> BounceOutcome | None:
    """None when ``mail`` is not a bounce: no delivery report and not sent to a VERP address."""
    named = find_bounced_email(mail.recipients, ctx.config.mailbox.address, ctx.secret)
    if named is None and not mail.delivery_reports:
        return None
    row = queries.outbox_named(session, named) if named is not None else None
    if row is None and mail.bounced_message_id:
        row = session.exec(select(Outbox).where(Outbox.message_id == mail.bounced_message_id)).first()
    found = worst(mail.delivery_reports)
    if row is None:
        return BounceOutcome(None, found[1] if found else None, "bounce for a message we did not send")
    if found is None:
        # A VERP hit without a machine-readable report: treat as a permanent failure to be safe.
        found_verdict = BounceVerdict("permanent", True, "bounced (no delivery-status part)")
    else:
        found_verdict = found[1]
    task = session.get(Task, row.task_id) if row.task_id is not None else None
    if not found_verdict.permanent:
        if task is not None:
            queries.add_event(session, task, now, "mailer-daemon", "delivery_delayed",
                              f"{row.recipients}: {found_verdict.explanation}", mail.message_id)
        return BounceOutcome(row, found_verdict, f"outbox {row.id}: {found_verdict.explanation}")
    row.status, row.last_error = "bounced", found_verdict.explanation[:2000]
    session.add(row)
    notices: tuple[OutboundMail, ...] = ()
    if task is not None:
        queries.add_event(session, task, now, "mailer-daemon", "bounce",
                          f"{row.kind} to {row.recipients}: {found_verdict.explanation}", mail.message_id)
        if row.kind != "staff-bounce":
            notices = tuple(bounce_notices(task, row.recipients, row.subject, found_verdict.explanation, ctx))
    log.warning("mail.bounced", outbox_id=row.id, task_id=row.task_id, kind=found_verdict.kind,
                to=row.recipients, message_id=row.message_id)
    return BounceOutcome(row, found_verdict, f"outbox {row.id}: {found_verdict.explanation}", notices)
