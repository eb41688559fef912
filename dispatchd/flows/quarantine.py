"""Recording a message that broke processing: raw bytes kept, retryable (``flows/reingest.py``)."""

from __future__ import annotations

import hashlib

from sqlmodel import Session

from dispatchd.config import MailboxConfig
from dispatchd.domain.models import Disposition, RawMail
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.intake_record import Outcome
from dispatchd.mail.parse import parse_mail
from dispatchd.store import queries
from dispatchd.store.tables import InboundMessage


def quarantine(raw: RawMail, digest: str, reason: str, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome:
    """Record a message that could not be processed; it stays retryable from its raw bytes."""
    now = deps.clock.now()
    with Session(deps.engine) as session, session.begin():
        existing = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
        message_id = _safe_message_id(raw.data)
        if existing is None:
            session.add(InboundMessage(
                account=mailbox.account, folder=raw.folder, uidvalidity=raw.uidvalidity, uid=raw.uid,
                mailbox_address=mailbox.address, message_id=message_id, received_at=now,
                disposition=Disposition.QUARANTINED, reason=reason[:2000], raw_sha256=digest,
                size=len(raw.data)))
        queries.advance_cursor(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    return Outcome(raw.uid, Disposition.QUARANTINED, message_id, reason=reason)


def _safe_message_id(data: bytes) -> str:
    try:
        return parse_mail(data).message_id
    except Exception:  # the message that broke processing may break this too
        return f"<sha256.{hashlib.sha256(data).hexdigest()[:40]}@dispatchd.invalid>"
