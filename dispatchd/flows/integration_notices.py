"""The email that tells a destination's owners its events are parked or it is gone.

Sent once per trouble (``IntegrationDestination.owners_told_at``, cleared by `integrations retry`),
queued in the outbox in the transaction that parked the events, like every other email.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from dispatchd.config import Config, Destination
from dispatchd.mail.compose import OutboundMail, bare_address, compose, new_message_id
from dispatchd.store.tables import Outbox


def owners_of(config: Config, destination: Destination) -> tuple[str, ...]:
    """The destination's ``owners``, else the staff with the manager role."""
    return destination.owners or tuple(s.email for s in config.staff if s.role == "manager")


def tell_owners(session: Session, config: Config, destination: Destination, what: str, now: datetime) -> None:
    owners = owners_of(config, destination)
    if not owners:
        return
    text = (f"The {destination.kind} destination {destination.name!r} needs you: {what}.\n\n"
            f"See `dispatchd integrations`. Once the receiver works again, `dispatchd integrations retry "
            f"{destination.name}` sends the parked events (same event ids) and re-enables it.\n")
    notice = OutboundMail(kind="staff-integration", to=owners, subject=f"Integration {destination.name}: {what}"[:200],
                          text=text)
    message_id = new_message_id(config.smtp.from_address, None)
    raw = compose(notice, config.smtp.from_address, config.mailbox.address, message_id, now)
    session.connection().execute(insert(Outbox.__table__), [dict(  # type: ignore[attr-defined]
        message_id=message_id, task_id=None, kind=notice.kind, envelope_from=bare_address(config.smtp.from_address),
        recipients=",".join(owners), subject=notice.subject, raw=raw, status="pending", attempts=0,
        next_attempt_at=now, last_error="", created_at=now)])
