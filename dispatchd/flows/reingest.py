"""Taking in mail that is already recorded: a quarantined message retried after a fix, mail recorded
before go-live imported (``dispatchd import``). Each replaces the record with the normal one; an
operator asked for it, so the loop breaker stands aside."""

from __future__ import annotations

import structlog
from sqlmodel import Session

from dispatchd.config import MailboxConfig
from dispatchd.domain.models import Disposition, RawMail
from dispatchd.errors import DispatchdError
from dispatchd.flows.ingest import ingest_unrecorded
from dispatchd.flows.intake_deps import INFRASTRUCTURE_ERRORS, IntakeDeps
from dispatchd.flows.intake_record import Outcome, log_ingested
from dispatchd.flows.oversize import keep_raw
from dispatchd.store import queries
from dispatchd.store.db import write_turn
from dispatchd.store.tables import InboundMessage, Task

log = structlog.get_logger("dispatchd.ingest")


def retry_quarantined(row_id: int, deps: IntakeDeps) -> Outcome | None:
    """Process a quarantined message again from its stored bytes (after a fix or a rule change).

    On success its quarantine row is replaced by the normal record; on failure it stays.
    """
    with Session(deps.engine) as session, session.begin():
        row = session.get(InboundMessage, row_id)
        if row is None or row.disposition != Disposition.QUARANTINED:
            return None
        if not row.raw_sha256:
            raise DispatchdError(f"message {row_id}: its stored copy was removed by [retention] quarantine")
        raw = RawMail(row.folder, row.uidvalidity, row.uid, deps.blobs.get(row.raw_sha256))
        mailbox = deps.config.mailbox_reading(row.account, row.folder)
        previous = row.reason
        try:
            with session.begin_nested():
                session.delete(row)
                session.flush()
                outcome = ingest_unrecorded(session, raw, row.raw_sha256, deps, mailbox, trusted=True)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # still broken: keep it quarantined, with the new reason
            log.exception("quarantine.retry_failed", row_id=row_id)
            row = session.get(InboundMessage, row_id) or row
            row.reason = f"{type(exc).__name__}: {exc} (before: {previous})"[:2000]
            return Outcome(raw.uid, Disposition.QUARANTINED, row.message_id, reason=row.reason)
    log.info("quarantine.retried", row_id=row_id, task_id=outcome.task_id, disposition=outcome.disposition.value)
    return outcome


def take_in_before_go_live(raws: list[RawMail], deps: IntakeDeps, mailbox: MailboxConfig) -> list[Outcome | None]:
    """Ingest messages recorded as before go-live (``dispatchd import``), in one transaction: each
    record is replaced by the normal one. None for a message no longer waiting (taken meanwhile).
    Raises if any of them breaks, leaving all of them as they were."""
    digests = [keep_raw(raw, deps) for raw in raws]
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        outcomes = [_take_in(session, raw, digest, deps, mailbox) for raw, digest in zip(raws, digests)]
    for outcome in outcomes:
        if outcome is not None:
            log_ingested(outcome)
    return outcomes


def _take_in(session: Session, raw: RawMail, digest: str, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome | None:
    row = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    if row is None or row.disposition != Disposition.BEFORE_GO_LIVE:
        return None
    arrived = row.received_at
    session.delete(row)
    session.flush()
    outcome = ingest_unrecorded(session, raw, digest, deps, mailbox, trusted=True)  # the owner asked for it
    if outcome.task_id is not None and outcome.disposition in (Disposition.TASK, Disposition.TRIAGE):
        told = "nobody was mailed (--quiet)" if deps.quiet else "mail sent as intake would"
        task = session.get(Task, outcome.task_id)
        assert task is not None
        queries.add_event(session, task, deps.clock.now(), "dispatchd", "imported",
                          f"arrived {arrived:%Y-%m-%d %H:%M}, before go-live; {told}", outcome.message_id)
    return outcome
