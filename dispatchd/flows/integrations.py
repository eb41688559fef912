"""Delivering integration events: fan out, claim, post, record; in the sender process.

Events are rows written with the audit entries that caused them (``queries.add_integration_events``).
The sender gives each the deliveries its destinations want (``fan_out``, one transaction) and runs
one worker per destination: it claims due deliveries (each the oldest open one of its task there,
so a task's events arrive in order), posts them at most ``concurrency`` at a time, and records the
answers in one transaction. A claim is committed before posting and the result after: a sender
killed in between leaves 'sending' rows whose claimer is gone, returned to the queue at the next
start and posted again with the same event id and ``Idempotency-Key``. Workers share nothing but
the database, so a destination that hangs delays only its own deliveries, never another's or the mail.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatchd.clock import Clock, as_utc
from dispatchd.config import Config, Destination
from dispatchd.domain.events import Audience
from dispatchd.flows.intake_deps import INFRASTRUCTURE_ERRORS
from dispatchd.flows.integration_notices import tell_owners
from dispatchd.store import integrations as store
from dispatchd.store.coordination import Coordinator
from dispatchd.store.db import write_turn
from dispatchd.webhooks.http import HttpPoster
from dispatchd.webhooks.outcomes import Answer, Backoff, Outcome, next_attempt, outcome_of
from dispatchd.webhooks.requests import request_for

log = structlog.get_logger("dispatchd.integrations")
FAN_OUT_BATCH = 500
CLAIM_BATCH = 50  # deliveries claimed (and recorded) per transaction, posted `concurrency` at a time
ORPHAN_CHECK_SECONDS = 5.0


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    parked: int = 0


class IntegrationSender:
    def __init__(self, config: Config, engine: Engine, clock: Clock, coordinator: Coordinator,
                 backoff: Backoff | None = None, jitter: Callable[[], float] = random.random):
        self.config = config
        self.engine = engine
        self.clock = clock
        self.coordinator = coordinator
        self.backoff = backoff or Backoff()
        self.jitter = jitter
        self.destinations = {d.name: d for d in config.destinations}
        self.posters = {d.name: HttpPoster(d.concurrency, d.timeout) for d in config.destinations}
        self.report = DeliveryReport()
        self._woken = asyncio.Event()
        self._due = {name: asyncio.Event() for name in self.destinations}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._orphans_checked_at = 0.0
        self._releasing: asyncio.Future[int] | None = None  # the check every destination's worker waits for
        self._held_until: dict[str, float] = {}  # monotonic time a failing destination rests until
        self._failed_rounds: dict[str, int] = {}

    # -- the loop ---------------------------------------------------------------------------
    def wake(self) -> None:
        """Events were committed; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._woken.set)

    async def serve(self, stop: asyncio.Event) -> None:
        """Fan out and deliver until ``stop``."""
        self._loop = asyncio.get_running_loop()
        workers = [asyncio.ensure_future(self._worker(d, stop)) for d in self.destinations.values()]
        try:
            while not stop.is_set():
                self._woken.clear()
                try:
                    if await asyncio.to_thread(self.fan_out):
                        for due in self._due.values():
                            due.set()
                except INFRASTRUCTURE_ERRORS as exc:  # the database is away: try again shortly
                    log.error("integration.unavailable", reason=str(exc))
                await _first_of(self._woken, stop, timeout=30.0)
        finally:
            await asyncio.gather(*workers, return_exceptions=True)
            await self.close()

    async def until_idle(self, intake: asyncio.Future[object], stop: asyncio.Event | None = None) -> None:
        """`run --once`: deliver while intake runs, then everything due now."""
        self._loop = asyncio.get_running_loop()
        try:
            while stop is None or not stop.is_set():
                self._woken.clear()
                intake_ended = intake.done()
                await asyncio.to_thread(self.fan_out)
                before = self.report.sent + self.report.parked
                await asyncio.gather(*(self.deliver_due(d, stop) for d in self.destinations.values()))
                if intake_ended and self.report.sent + self.report.parked == before:
                    break
                if not intake.done():
                    await _first_of(intake, self._woken, timeout=0.25)
        finally:
            await self.close()

    async def _worker(self, destination: Destination, stop: asyncio.Event) -> None:
        due = self._due[destination.name]
        while not stop.is_set():
            due.clear()
            try:
                await self.deliver_due(destination, stop)
                wait = await asyncio.to_thread(self.seconds_until_due, destination.name)
            except INFRASTRUCTURE_ERRORS as exc:
                log.error("integration.unavailable", destination=destination.name, reason=str(exc))
                wait = 5.0
            wait = max(wait or 0.0, self.held_for(destination.name)) if wait is not None else None
            await _first_of(due, stop, timeout=30.0 if wait is None else min(30.0, max(0.2, wait)))

    async def close(self) -> None:
        for poster in self.posters.values():
            await poster.close()

    # -- one destination ----------------------------------------------------------------------
    async def deliver_due(self, destination: Destination, stop: asyncio.Event | None = None) -> None:
        """Post everything due to ``destination`` now, in batches of claimed deliveries (each the
        oldest open one of its task), ``concurrency`` requests at a time. Once a request finds the
        receiver failing (no answer, 5xx, 429), the rest of the batch is handed back untried and the
        destination is held (doubling, or its Retry-After): a dead receiver costs one timeout per
        wait, not one per event."""
        await self._release_orphans()
        if self.held_for(destination.name):
            return
        claimed = await asyncio.to_thread(self._settle, destination, [], True)
        while claimed:
            results = await self._post_batch(destination, claimed)
            answers = [answer for _, answer in results if answer is not None]
            self._hold_after(destination.name, answers)
            more = (stop is None or not stop.is_set()) and not self.held_for(destination.name)
            claimed = await asyncio.to_thread(self._settle, destination, results, more)

    async def _post_batch(self, destination: Destination,
                          claimed: list[store.Claimed]) -> list[tuple[store.Claimed, Answer | None]]:
        """Each claimed delivery's answer, or None where it was not tried (the receiver was failing)."""
        url = destination.target()
        gate = asyncio.Semaphore(destination.concurrency)
        failing = False

        async def post(row: store.Claimed) -> Answer | None:
            nonlocal failing
            async with gate:
                if failing:
                    return None
                answer = await self._post(destination, url, row)
                failing = failing or _receiver_failing(answer)
                return answer
        answers = await asyncio.gather(*(post(row) for row in claimed))
        return list(zip(claimed, answers))

    def held_for(self, name: str) -> float:
        """Seconds the destination is still held after a round that found it failing."""
        return max(0.0, self._held_until.get(name, 0.0) - time.monotonic())

    def _hold_after(self, name: str, answers: list[Answer]) -> None:
        if not any(_receiver_failing(a) for a in answers):
            if self._failed_rounds.pop(name, 0):
                log.info("integration.recovered", destination=name)
            self._held_until.pop(name, None)
            return
        rounds = self._failed_rounds[name] = self._failed_rounds.get(name, 0) + 1
        retry_after = max((a.retry_after or 0.0 for a in answers), default=0.0) or None
        self._held_until[name] = time.monotonic() + self.backoff.delay(rounds, retry_after, self.jitter())
        if rounds == 1:  # an outage is logged once, not once per retry
            log.warning("integration.failing", destination=name, reason=answers[-1].detail)

    async def _post(self, destination: Destination, url: str | None, row: store.Claimed) -> Answer:
        if not url:
            return Answer(None, "no URL: its environment variable or file is empty")
        event = json.loads(row.body)
        if "id" not in event:  # `dispatchd forget` erased it before it went out: nothing left to send
            return Answer(0, "erased (dispatchd forget): not sent")
        body, headers = request_for(destination, event, web_base_url(self.config, destination),
                                    int(self.clock.now().timestamp()))
        return await self.posters[destination.name].post(url, body, headers, self.clock.now())

    def _settle(self, destination: Destination, results: list[tuple[store.Claimed, Answer | None]],
                claim: bool) -> list[store.Claimed]:
        """Record the answers, hand back the untried, and claim the next batch (unless ``claim``
        is false or the destination is gone): one write transaction per batch."""
        now = self.clock.now()
        with write_turn(self.engine), Session(self.engine) as session, session.begin():
            gone = self._record(session, destination, results, now)
            if not claim or gone:
                return []
            state = store.destination_state(session, destination.name)
            if state is not None and state.disabled:
                return []
            return store.claim_deliveries(session, destination.name, now, CLAIM_BATCH,
                                          self.coordinator.instance_id())

    def _record(self, session: Session, destination: Destination,
                results: list[tuple[store.Claimed, Answer | None]], now: datetime) -> bool:
        """The answers in the caller's transaction; True if the destination said it is gone."""
        gone = False
        parked: list[str] = []
        for claimed, answer in results:
            if answer is None:
                store.unclaim(session, claimed)
                continue
            outcome = outcome_of(answer)
            attempts = claimed.attempts + 1
            status, next_at, sent_at = "pending", now, None
            if outcome is Outcome.SENT:
                status, sent_at = "sent", now
            elif outcome is Outcome.RETRY and attempts < destination.max_attempts:
                next_at = next_attempt(now, self.backoff.delay(attempts, answer.retry_after, self.jitter()))
            else:
                status = "parked"
            error = "" if status == "sent" else answer.detail
            if not store.record_delivery(session, claimed, status, attempts, next_at, sent_at, answer.status, error):
                log.warning("integration.claim_lost", destination=destination.name, event_id=claimed.event_id)
                continue
            self._log(destination, claimed, status, attempts, answer, next_at)
            if status == "parked":
                parked.append(answer.detail)
            gone = gone or outcome is Outcome.GONE
        if gone:
            reason = f"410 Gone at {now:%Y-%m-%d %H:%M} UTC"
            store.set_destination(session, destination.name, disabled=reason, disabled_at=now)
            left = store.park_open(session, destination.name, f"destination disabled: {reason}")
            log.error("integration.disabled", destination=destination.name, reason=reason, parked=left)
            self._tell_once(session, destination, f"answered 410 Gone: it is disabled, {left + len(parked)} "
                                                  "event(s) parked", now)
        elif parked:
            self._tell_once(session, destination, f"{len(parked)} event(s) parked; the last: {parked[-1]}", now)
        return gone

    def _tell_once(self, session: Session, destination: Destination, what: str, now: datetime) -> None:
        """Owners hear of a destination's trouble once, until `integrations retry` clears it."""
        state = store.destination_state(session, destination.name)
        if state is not None and state.owners_told_at is not None:
            return
        store.set_destination(session, destination.name, owners_told_at=now)
        tell_owners(session, self.config, destination, what, now)

    def _log(self, destination: Destination, claimed: store.Claimed, status: str, attempts: int, answer: Answer,
             next_at: datetime) -> None:
        fields = dict(destination=destination.name, event_id=claimed.event_id, task_id=claimed.task_id,
                      attempt=attempts, status_code=answer.status)
        if status == "sent":
            self.report.sent += 1
            log.info("integration.sent", **fields)
        elif status == "parked":
            self.report.parked += 1
            log.error("integration.parked", reason=answer.detail, **fields)
        else:
            self.report.retried += 1
            # The first failure says so; the retries of one outage are debug noise.
            log.log(30 if attempts == 1 else 10, "integration.deferred", reason=answer.detail,
                    retry_at=next_at.isoformat(), **fields)

    # -- bookkeeping ------------------------------------------------------------------------------
    def fan_out(self) -> int:
        """Give new events their deliveries; the number of events handled."""
        handled = 0
        while True:
            with write_turn(self.engine), Session(self.engine) as session, session.begin():
                events = store.unfanned_events(session, FAN_OUT_BATCH)
                if not events:
                    return handled
                disabled = {name for name in self.destinations
                            if (state := store.destination_state(session, name)) is not None and state.disabled}
                now = self.clock.now()
                deliveries, fanned, unwanted = [], [], []
                for event in events:
                    wanted = [d for d in self.destinations.values()
                              if d.filter.wants(event.type, event.internal, event.client, event.queue)]
                    (fanned if wanted else unwanted).append(event.row)
                    deliveries.extend(dict(
                        event_row=event.row, destination=d.name, task_id=event.task_id, attempts=0,
                        status="parked" if d.name in disabled else "pending", next_attempt_at=now,
                        last_error="destination disabled" if d.name in disabled else "") for d in wanted)
                store.record_fan_out(session, deliveries, fanned, unwanted)
                handled += len(events)

    async def _release_orphans(self) -> None:
        """Every ORPHAN_CHECK_SECONDS, claims of instances that died (this one before a restart)
        go back to pending. The destinations' workers run at once and all wait for the same check:
        one that went on while another released would find nothing to claim and sleep 30 s on
        its dead claims (after a SIGKILL, a Slack post then waited half a minute)."""
        if time.monotonic() - self._orphans_checked_at > ORPHAN_CHECK_SECONDS:
            self._orphans_checked_at = time.monotonic()
            self._releasing = asyncio.ensure_future(asyncio.to_thread(self.release_claims))
        if self._releasing is not None and not self._releasing.done():
            await asyncio.shield(self._releasing)

    def release_claims(self) -> int:
        with write_turn(self.engine), Session(self.engine) as session, session.begin():
            released = store.release_orphaned(session, self.coordinator.live_instances(session.connection()))
        if released:
            log.warning("integration.claims_released", count=released)
        return released

    def seconds_until_due(self, destination: str) -> float | None:
        with Session(self.engine) as session:
            due = as_utc(store.next_due(session, destination))
        return None if due is None else max(0.0, (due - self.clock.now()).total_seconds())


def _receiver_failing(answer: Answer) -> bool:
    """No answer, or one that says "not now" (5xx, 429, 408): the receiver, not the event."""
    return outcome_of(answer) is Outcome.RETRY


def web_base_url(config: Config, destination: Destination) -> str | None:
    """``[web] base_url`` for the task's link, for the team's destinations (None: no link)."""
    return config.web.base_url if destination.filter.audience is Audience.TEAM else None


async def _first_of(*awaited: asyncio.Event | asyncio.Future[object], timeout: float | None = None) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in awaited if isinstance(e, asyncio.Event)]
    futures = [f for f in awaited if not isinstance(f, asyncio.Event)]
    try:
        await asyncio.wait([*waiters, *futures], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
