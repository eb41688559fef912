"""The loop breaker: mail that could feed a mail loop is quarantined, not answered."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from dispatchd.domain.loops_budget import breaker_reason
from dispatchd.domain.models import Disposition, InboundMail
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.intake_record import MessageRecord, Outcome, finish
from dispatchd.flows.notices import loop_notices
from dispatchd.store import queries
from dispatchd.store.tables import JobRun

log = structlog.get_logger("dispatchd.ingest")


def trip_loop_breaker(session: Session, mail: InboundMail, row: MessageRecord, task_id: int | None,
                      deps: IntakeDeps, now: datetime) -> Outcome | None:
    """Quarantine instead of answering when replying could feed a mail loop; tell the managers."""
    # Known clients are people: the same-text check is for unknown responders changing address.
    known = bool(deps.directory.clients_of_sender(mail.sender))
    activity = queries.recent_activity(session, mail.sender, task_id, None if known else row.body_hash,
                                       now - timedelta(hours=1))
    reason = breaker_reason(activity, deps.config.intake.reply_limits)
    if reason is None:
        return None
    log.error("loop.breaker_tripped", message_id=mail.message_id, sender=mail.sender, task_id=task_id, reason=reason)
    notices = []
    hour = now.strftime("%Y-%m-%dT%H")
    try:
        with session.begin_nested():
            session.add(JobRun(job="loop-breaker", period=hour, recipient=mail.sender, ran_at=now))
        notices = loop_notices(mail, reason, deps.notices)
    except IntegrityError:
        pass  # the owners already heard about this sender this hour
    row.task_id = task_id
    row.dedup_key = None  # a retry from quarantine must not count as a duplicate
    return finish(session, row, Disposition.QUARANTINED, f"loop breaker: {reason}", notices, deps)
