"""The outbox sender: claim due mail, send it, record what happened.

A claim is committed before sending and the result after, so a crash in between leaves
a 'sending' row whose claimer is gone; ``release_orphaned_claims`` returns it to the queue
and the resend carries the same bytes and the same Message-ID. Results are recorded per
batch, so a crash resends at most one batch. Several instances may drain one outbox
(PostgreSQL): each claims rows the others are not claiming.

Two kinds of failure, kept apart. The server's (it is unreachable, refuses our login, says 421
or that a quota is used up: ``mail.smtp_faults``) stops the pass, charges no email and starts
the sender-wide hold (``flows.sender_hold``). One email's: a 4xx backs that email off
(capped, for ``[smtp] give_up_after``, three days by default); a 5xx, or running out of time,
parks it for an operator (``dispatchd outbox``, ``dispatchd outbox requeue``).
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
from dispatchd.flows.sender_hold import SenderHold, read_hold
from dispatchd.mail.smtp import Delivery, SendResult, SmtpSender
from dispatchd.mail.smtp_faults import ServerFault
from dispatchd.oauth import TokenSource
from dispatchd.store import queries
from dispatchd.store.coordination import Coordinator
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Outbox

log = structlog.get_logger("dispatchd.outbox")
ORPHAN_CHECK_SECONDS = 5.0  # how often a drain looks for claims of vanished instances


@dataclass(frozen=True)
class RetryPolicy:
    """How one email that met a temporary refusal is retried: doubling waits up to an hour,
    for ``give_up_after`` in all (counted from the waits, so a requeued email starts afresh),
    or at most ``max_attempts`` times if the owner set that."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    give_up_after: timedelta = timedelta(days=3)
    max_attempts: int | None = None

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.max_seconds, self.base_seconds * 2 ** max(0, min(attempts, 60) - 1)))

    def exhausted(self, attempts: int) -> bool:
        """After ``attempts`` failed attempts, is it time to park the email?"""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        waited = sum((self.delay(n) for n in range(1, attempts + 1)), timedelta())
        return waited >= self.give_up_after


@dataclass
class DrainReport:
    sent: int = 0
    deferred: int = 0
    parked: int = 0
    held: bool = False  # nothing was tried: the sender-wide hold is in force


class OutboxSender:
    def __init__(self, engine: Engine, connections: list[SmtpSender], clock: Clock, policy: RetryPolicy,
                 coordinator: Coordinator):
        self.engine = engine
        self.connections = connections
        self.clock = clock
        self.policy = policy
        self.coordinator = coordinator
        self.hold = SenderHold(engine, clock)
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
        fault: ServerFault | None = None
        try:
            held = await asyncio.to_thread(self.hold.current)
            if held is not None and held.until_at > started:
                report.held = True  # the server refused us lately: no connection before the hold ends
                return report
            stopped = stop is not None and stop.is_set()
            rows = [] if stopped else await asyncio.to_thread(self._settle, [], [], report, batch, started)
            while rows:
                results, untouched, fault = await self._send(rows)
                more = 0 if fault or untouched or (stop is not None and stop.is_set()) else batch
                # One commit per batch: a crash before it resends the batch with the same Message-IDs.
                rows = await asyncio.to_thread(self._settle, results, untouched, report, more, started)
            if fault is not None:
                await asyncio.to_thread(self.hold.fault, fault)
            elif held is not None and report.sent:
                await asyncio.to_thread(self.hold.recovered)
        finally:
            if not keep_open or fault is not None or report.held:
                await self.close()
        return report

    async def _send(self, rows: list[Outbox]) -> tuple[list[tuple[Outbox, SendResult]], list[Outbox],
                                                      ServerFault | None]:
        """Send ``rows`` over the connections at once: each waits on the server most of the time.
        One recipient's mail keeps its order (always the same connection). Once the server
        refuses us (``ServerFault``) no connection starts another mail; the rows not tried are
        returned with the fault."""
        lanes: list[list[int]] = [[] for _ in self.connections]
        for index, row in enumerate(rows):
            lanes[zlib.crc32(row.recipients.encode()) % len(lanes)].append(index)
        busy = [(smtp, lane) for smtp, lane in zip(self.connections, lanes) if lane]
        # One session first, alone: a refused login or a dead server then costs one connection
        # and one AUTH, not one per connection.
        fault = await busy[0][0].open()
        if fault is not None:
            return [], rows, fault
        results: dict[int, SendResult] = {}

        async def send_lane(smtp: SmtpSender, lane: list[int]) -> None:
            nonlocal fault
            for index in lane:
                if fault is not None:
                    return
                row = rows[index]
                result = await smtp.send(row.envelope_from, row.recipients.split(","), row.raw)
                if result.delivery is not Delivery.NOT_TRIED:
                    results[index] = result
                fault = fault or result.fault
        await asyncio.gather(*(send_lane(smtp, lane) for smtp, lane in busy))
        return ([(rows[index], results[index]) for index in sorted(results)],
                [row for index, row in enumerate(rows) if index not in results], fault)

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
        elif result.delivery is Delivery.PERMANENT or self.policy.exhausted(attempts):
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
            log.info("smtp.sent", **fields)
        elif status == "parked":
            report.parked += 1
            log.error("smtp.parked", reason=result.detail, **fields)
        else:
            report.deferred += 1
            # A lost session is reported once, by the hold; an email's own refusal each time.
            log.log(10 if result.fault else 30, "smtp.deferred", reason=result.detail, retry_at=retry_at.isoformat(),
                    **fields)

    def next_due(self) -> float | None:
        """Seconds until the next pending row may go (0 if now: it is due and no hold is in
        force), or None if none is pending."""
        with Session(self.engine) as session:
            due = as_utc(queries.next_outbox_due(session))
        if due is None:
            return None
        return max(0.0, (due - self.clock.now()).total_seconds(), self.hold.remaining())

    def next_look(self) -> float | None:
        """``next_due``, but no later than the next look for orphaned claims while rows are being
        sent elsewhere (after our own drain, a claimed row is another instance's): if that
        instance dies, its mail goes out within seconds, not at the idle wake-up half a minute on."""
        due = self.next_due()
        with Session(self.engine) as session:
            claimed = queries.outbox_claimed(session)
        if not claimed:
            return due
        return ORPHAN_CHECK_SECONDS if due is None else min(due, ORPHAN_CHECK_SECONDS)


def outbox_sender(smtp: SmtpConfig, engine: Engine, clock: Clock, coordinator: Coordinator,
                  policy: RetryPolicy | None = None) -> OutboxSender:
    """The sender for the configured server, over ``[smtp] connections`` connections; an email
    is retried for ``[smtp] give_up_after`` (and ``max_attempts``) unless ``policy`` says otherwise."""
    policy = policy or RetryPolicy(give_up_after=timedelta(hours=smtp.give_up_after_hours),
                                   max_attempts=smtp.max_attempts)
    tokens = TokenSource(smtp.oauth2) if smtp.oauth2 else None
    return OutboxSender(engine, [SmtpSender(smtp, tokens) for _ in range(smtp.connections)], clock, policy,
                        coordinator)


def pending_count(engine: Engine) -> int:
    """Mail waiting to go out or being sent now."""
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Outbox).where(
            col(Outbox.status).in_(("pending", "sending")))).one()


def outbox_status(engine: Engine, now: datetime) -> str:
    """One line for ``systemctl status``: what waits, and why nothing goes if a hold is in force."""
    line = f"{pending_count(engine)} queued in outbox"
    hold = read_hold(engine)
    if hold is not None and hold.until_at > now:
        line += f"; {hold.describe()}"
    return line


def requeue(engine: Engine, now: datetime, ids: list[int] | None) -> list[Outbox]:
    """Parked mail (the rows ``ids``, or all of them with None) goes back to the queue, due now,
    with its attempts forgotten. The stored bytes are sent, so the Message-ID is the same."""
    with write_turn(engine), Session(engine, expire_on_commit=False) as session, session.begin():
        query = select(Outbox).where(Outbox.status == "parked")
        if ids is not None:
            query = query.where(col(Outbox.id).in_(ids))
        rows = list(session.exec(query.order_by(col(Outbox.id))).all())
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            session.add(row)
    for row in rows:
        log.info("outbox.requeued", outbox_id=row.id, message_id=row.message_id, task_id=row.task_id,
                 last_error=row.last_error[:200])
    return rows


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

