"""The outbox sender: claim due mail, send it, record what happened.

A claim is committed before sending and the result after, so a crash in between leaves
a 'sending' row whose claimer is gone; ``release_orphaned_claims`` returns it to the queue
and the resend carries the same bytes and the same Message-ID. Results are recorded per
batch, so a crash resends at most one batch. Several instances may drain one outbox
(PostgreSQL): each claims rows the others are not claiming. Temporary failures back off
exponentially; permanent ones, or too many attempts, park the row for an operator
(``dispatchd outbox``).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy import bindparam, update
from sqlmodel import Session, col, func, select

from dispatchd.clock import Clock, as_utc
from dispatchd.config import SmtpConfig
from dispatchd.mail.smtp import Delivery, SendResult, SmtpSender
from dispatchd.store import queries
from dispatchd.store.coordination import Coordinator
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Outbox

log = structlog.get_logger("dispatchd.outbox")
ORPHAN_CHECK_SECONDS = 5.0  # how often a drain looks for claims of vanished instances


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    max_attempts: int = 12

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


@dataclass
class DrainReport:
    sent: int = 0
    deferred: int = 0
    parked: int = 0


class OutboxSender:
    def __init__(self, engine: Engine, connections: list[SmtpSender], clock: Clock, policy: RetryPolicy,
                 coordinator: Coordinator):
        self.engine = engine
        self.connections = connections
        self.clock = clock
        self.policy = policy
        self.coordinator = coordinator
        self.outage: str | None = None
        self._orphans_checked_at: float | None = None

    def release_claims(self) -> int:
        """Return the claims of crashed instances (or of our own previous life) to the queue."""
        with Session(self.engine) as session, session.begin():
            live = self.coordinator.live_instances(session.connection())
            released = queries.release_orphaned_claims(session, live)
        if released:
            log.warning("outbox.claims_released", count=released)
        return released

    async def drain(self, stop: asyncio.Event | None = None, batch: int = 100, keep_open: bool = False) -> DrainReport:
        """Send everything due now; returns when nothing due is left or the server is down.
        ``keep_open`` keeps the SMTP connection for the next call (more mail is coming)."""
        report = DrainReport()
        # Only what was due when we started: a row deferred in this pass waits for the next.
        started = self.clock.now()
        if self._orphans_checked_at is None or time.monotonic() - self._orphans_checked_at > ORPHAN_CHECK_SECONDS:
            self._orphans_checked_at = time.monotonic()
            await asyncio.to_thread(self.release_claims)
        try:
            stopped = stop is not None and stop.is_set()
            rows = [] if stopped else await asyncio.to_thread(self._settle, [], [], report, batch, started)
            while rows:
                results, untouched = await self._send(rows)
                more = 0 if untouched or (stop is not None and stop.is_set()) else batch
                # One commit per batch: a crash before it resends the batch with the same Message-IDs.
                rows = await asyncio.to_thread(self._settle, results, untouched, report, more, started)
        finally:
            if not keep_open or self.outage:
                await self.close()
        return report

    async def _send(self, rows: list[Outbox]) -> tuple[list[tuple[Outbox, SendResult]], list[Outbox]]:
        """Send ``rows`` over the connections at once: each waits on the server most of the time.
        One recipient's mail keeps its order (always the same connection). Once the server is
        unreachable no connection starts another mail; the rows not tried are returned."""
        lanes: list[list[int]] = [[] for _ in self.connections]
        for index, row in enumerate(rows):
            lanes[zlib.crc32(row.recipients.encode()) % len(lanes)].append(index)
        results: dict[int, SendResult] = {}
        unreachable = False

        async def send_lane(smtp: SmtpSender, lane: list[int]) -> None:
            nonlocal unreachable
            for index in lane:
                if unreachable:
                    return
                row = rows[index]
                result = results[index] = await smtp.send(row.envelope_from, row.recipients.split(","), row.raw)
                if result.delivery is Delivery.TEMPORARY and _connection_fault(result.detail):
                    unreachable = True
        await asyncio.gather(*(send_lane(smtp, lane) for smtp, lane in zip(self.connections, lanes) if lane))
        return ([(rows[index], results[index]) for index in sorted(results)],
                [row for index, row in enumerate(rows) if index not in results])

    async def close(self) -> None:
        """Close the SMTP connections (the next send opens them again)."""
        for smtp in self.connections:
            await smtp.close()

    def _settle(self, results: list[tuple[Outbox, SendResult]], untouched: list[Outbox], report: DrainReport,
                claim: int, due_by: datetime) -> list[Outbox]:
        """Record what was sent, hand back what was not tried, and claim up to ``claim`` more:
        one write transaction, so the sender waits for its turn once per batch, not twice."""
        with write_turn(self.engine), Session(self.engine, expire_on_commit=False) as session, session.begin():
            for claimed, result in results:
                self._record(session, claimed, result, report)
            for row in untouched:
                session.connection().execute(_UNCLAIM, dict(b_id=row.id, b_claimer=row.claimed_by))
            if not claim:
                return []
            return queries.claim_outbox(session, due_by, self.clock.now(), claim, self.coordinator.instance_id())

    def _record(self, session: Session, claimed: Outbox, result: SendResult, report: DrainReport) -> None:
        """One UPDATE from what the claim loaded; it holds only while the row is still ours."""
        now = self.clock.now()
        attempts = claimed.attempts + 1
        status, sent_at, retry_at, error = "pending", None, claimed.next_attempt_at, result.detail[:2000]
        if result.delivery is Delivery.SENT:
            status, sent_at, error = "sent", now, result.detail if "refused" in result.detail else ""
        elif result.delivery is Delivery.PERMANENT or attempts >= self.policy.max_attempts:
            status = "parked"
        else:
            retry_at = now + self.policy.delay(attempts)
        updated = session.connection().execute(_RECORD_RESULT, dict(
            b_id=claimed.id, b_claimer=claimed.claimed_by, b_status=status, b_attempts=attempts,
            b_sent_at=sent_at, b_retry_at=retry_at, b_error=error))
        if not updated.rowcount:
            # Our claim was released (our database connection was lost meanwhile): the row's
            # new claimer sends it again, with the same Message-ID, and records the result.
            log.warning("outbox.claim_lost", message_id=claimed.message_id)
            return
        fields = dict(message_id=claimed.message_id, task_id=claimed.task_id, to=claimed.recipients, attempt=attempts)
        if status == "sent":
            report.sent += 1
            if self.outage:
                log.info("smtp.recovered", after=self.outage)
                self.outage = None
            log.info("smtp.sent", **fields)
        elif status == "parked":
            report.parked += 1
            log.error("smtp.parked", reason=result.detail, **fields)
        else:
            report.deferred += 1
            self._note_outage(result.detail, retry_at.isoformat(), fields)

    def _note_outage(self, detail: str, retry_at: str, fields: dict[str, object]) -> None:
        """An outage is logged once as an error, each retry only at debug level."""
        if _connection_fault(detail) and self.outage is None:
            self.outage = detail
            log.error("smtp.unavailable", reason=detail, retry_at=retry_at)
        log.log(10 if self.outage else 30, "smtp.deferred", reason=detail, retry_at=retry_at, **fields)

    def next_due(self) -> float | None:
        """Seconds until the next pending row is due (0 if now), or None if none is pending."""
        with Session(self.engine) as session:
            due = as_utc(queries.next_outbox_due(session))
        if due is None:
            return None
        return max(0.0, (due - self.clock.now()).total_seconds())


def outbox_sender(smtp: SmtpConfig, engine: Engine, clock: Clock, coordinator: Coordinator,
                  policy: RetryPolicy | None = None) -> OutboxSender:
    """The sender for the configured server, over ``[smtp] connections`` connections; as many
    attempts as ``[smtp] max_attempts`` unless ``policy`` says otherwise."""
    return OutboxSender(engine, [SmtpSender(smtp) for _ in range(smtp.connections)], clock,
                        policy or RetryPolicy(max_attempts=smtp.max_attempts), coordinator)


def pending_count(engine: Engine) -> int:
    """Mail waiting to go out or being sent now."""
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Outbox).where(
            col(Outbox.status).in_(("pending", "sending")))).one()


_OUTBOX = Outbox.__table__  # type: ignore[attr-defined]
# Prepared once: building the statement per email cost more than running it.
_RECORD_RESULT = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.status == "sending",
    _OUTBOX.c.claimed_by == bindparam("b_claimer"),
).values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), sent_at=bindparam("b_sent_at"),
         next_attempt_at=bindparam("b_retry_at"), last_error=bindparam("b_error"), claimed_at=None,
         claimed_by=None)
_UNCLAIM = update(_OUTBOX).where(
    _OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.status == "sending", _OUTBOX.c.claimed_by == bindparam("b_claimer"),
).values(status="pending", claimed_at=None, claimed_by=None)


def _connection_fault(detail: str) -> bool:
    """No SMTP reply code: the server was not reached (as opposed to a 4xx answer)."""
    return not detail[:3].isdigit()
