"""Job ``sla``: read both SLA clocks of every open task and announce each threshold once.

Yellow (``warn_at``, 80 %): the assignee and the queue owners are told. Red (100 %): the
managers too, and the escalation rules run. Optionally the client hears that an open task is
running late, only when it is at risk (``domain.clocks.client_should_hear``), never in the
first half of its SLA. Non-urgent notices wait for business hours; red and P0 go at once.
Each (task, clock, level) is recorded in ``sla_notice`` in the same transaction as its mail,
so a restart never repeats one.

The cost stays bounded at a large backlog: a task with nothing left to announce (its
resolution breach recorded, its first response breached or given) is left out by the query,
so neither it nor its history is loaded; business time is counted by weeks (``OpenDays``).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, exists, not_, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatchd.clock import as_utc
from dispatchd.domain.clocks import client_should_hear, first_response_intervals, resolution_intervals
from dispatchd.domain.models import Priority, Request, RouteDecision, Status
from dispatchd.domain.routing import escalate
from dispatchd.domain.sla import ClockReading, counted_seconds, is_open, parse_sla, read_clock, target_seconds
from dispatchd.flows.history import PASSIVE, events_of, first_staff_action, status_history
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.notices import sla_notices
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.reports import queue_forecast
from dispatchd.store import queries
from dispatchd.store.tables import SlaNotice, Task, TaskEvent

log = structlog.get_logger("dispatchd.sla")
LEVELS = ("warning", "breach")


def check_slas(deps: IntakeDeps) -> Counter[str]:
    """Run the job once; returns how many notices of each kind went into the outbox."""
    now = deps.clock.now()
    sent: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        tasks = session.exec(select(Task).where(
            col(Task.status).not_in((Status.CLOSED.value, Status.CANCELLED.value)), not_(_settled(deps)))).all()
        ids: list[int] = [t.id for t in tasks]  # type: ignore[misc]
        history = events_of(session, ids)
        already = _notices_of(session, ids)
        open_now = is_open(now, deps.calendar)
        forecasts = _Forecasts(session, deps, now)
        for task in tasks:
            # Non-urgent notices wait for business hours; red and P0 go out at once.
            urgent_now = open_now or task.priority == Priority.P0.value
            readings = _readings(task, history[task.id], deps, now)  # type: ignore[index]
            for clock, reading in readings:
                # An overdue clock reads "due now": keep the due time that passed instead.
                if clock == "resolution" and reading.running and reading.due is not None \
                        and (reading.used < 1 or task.due_at is None) and as_utc(task.due_at) != reading.due:
                    task.due_at = reading.due
                pending = [lv for lv in _levels(reading.used, deps.rulebook.sla.warn_at)
                           if (task.id, clock, lv) not in already]
                # Only the highest new level is announced: a breach makes its warning moot.
                if pending and (pending[-1] == "breach" or urgent_now):
                    _announce(session, task, clock, pending, reading, deps, now)
                    sent[f"{clock}.{pending[-1]}"] += 1
            if urgent_now and _client_may_hear(task, readings[0][1], deps, now, already) and \
                    client_should_hear(readings[0][1].used, deps.rulebook.sla.warn_at,
                                       lambda: forecasts.late(task)):  # noqa: B023 - called at once
                _announce(session, task, "resolution", ["client_late"], None, deps, now)
                sent["resolution.client_late"] += 1
    log.info("job.sla_done", tasks=len(tasks), **sent)
    return sent


def _settled(deps: IntakeDeps):  # type: ignore[no-untyped-def]
    """Tasks with nothing left to announce: the resolution breach is recorded (after it no
    threshold and no client notice remains), and the first response was breached, given by a
    person, or has no target for the task's priority. Evaluated by the database, per task."""
    def notice(clock: str, level: str):  # type: ignore[no-untyped-def]
        return exists().where(SlaNotice.task_id == Task.id, SlaNotice.clock == clock, SlaNotice.level == level)
    staff = [s.email for s in deps.config.staff]
    responded = exists().where(TaskEvent.task_id == Task.id, col(TaskEvent.actor).in_(staff),
                               col(TaskEvent.kind).not_in(PASSIVE))
    timed = [p.value for p in deps.rulebook.sla.first_response]
    return and_(notice("resolution", "breach"),
                or_(notice("first_response", "breach"), responded, col(Task.priority).not_in(timed)))


def _notices_of(session: Session, task_ids: list[int]) -> set[tuple[int, str, str]]:
    found: set[tuple[int, str, str]] = set()
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start:start + 500]
        found.update((n.task_id, n.clock, n.level)
                     for n in session.exec(select(SlaNotice).where(col(SlaNotice.task_id).in_(chunk))))
    return found


class _Forecasts:
    """The queue forecast (``flows.reports.queue_forecast``), made for a queue only when one of
    its tasks needs it, and once per run."""

    def __init__(self, session: Session, deps: IntakeDeps, now: datetime):
        self.session, self.deps, self.now = session, deps, now
        self.late_in: dict[str, set[int]] = {}

    def late(self, task: Task) -> bool:
        if task.queue not in self.late_in:
            open_tasks = list(self.session.exec(select(Task).where(
                Task.queue == task.queue, col(Task.status).not_in((Status.CLOSED.value, Status.CANCELLED.value)))))
            self.late_in[task.queue] = {int(f["task_id"]) for f in  # type: ignore[call-overload]
                                        queue_forecast(self.session, task.queue, open_tasks, self.deps, self.now)}
        return task.id in self.late_in[task.queue]


def _readings(task: Task, events: list, deps: IntakeDeps, now: datetime) -> list[tuple[str, ClockReading]]:
    created = as_utc(task.created_at)
    readings = []
    initial = Status.RECEIVED.value
    intervals = resolution_intervals(created, status_history(events), initial, deps.rulebook.sla.pause_in)  # type: ignore[arg-type]
    readings.append(("resolution", read_clock(intervals, parse_sla(task.sla), deps.calendar, now)))
    first = deps.rulebook.sla.first_response.get(Priority(task.priority))
    responded = first_staff_action(events, deps.config)
    if first and responded is None:
        spans = first_response_intervals(created, None)  # type: ignore[arg-type]
        readings.append(("first_response", read_clock(spans, parse_sla(first), deps.calendar, now)))
    return readings


def _levels(used: float, warn_at: float) -> list[str]:
    return [level for level, threshold in zip(LEVELS, (warn_at, 1.0)) if used >= threshold]


def _client_may_hear(task: Task, reading: ClockReading, deps: IntakeDeps, now: datetime, already: set) -> bool:
    """The owner asked for client notices, this client was not told yet, the work is with us
    (not delivered or being delivered), and its due time is within ``notify_client_before``.
    Whether it is really at risk is ``client_should_hear``'s question."""
    before = deps.rulebook.sla.notify_client_before
    if before is None or (task.id, "resolution", "client_late") in already or not task.sender or task.client is None:
        return False
    if task.status in (Status.READY_FOR_DELIVERY.value, Status.DELIVERED.value, Status.RECEIVED.value):
        return False
    due = reading.due if reading.running else None
    window = parse_sla(before)
    return due is not None and now < due and \
        counted_seconds(now, due, window, deps.calendar) <= target_seconds(window, deps.calendar)


def _announce(session: Session, task: Task, clock: str, levels: list[str], reading: ClockReading | None,
              deps: IntakeDeps, now: datetime) -> None:
    level = levels[-1]
    try:
        with session.begin_nested():
            for each in levels:
                session.add(SlaNotice(task_id=task.id, clock=clock, level=each, sent_at=now))  # type: ignore[arg-type]
    except IntegrityError:  # another instance announced it first
        return
    extra: tuple[str, ...] = ()
    if level == "breach" and clock == "resolution":
        extra = _escalate(session, task, deps, now)
    used = f"{reading.used:.0%}" if reading else ""
    queries.add_event(session, task, now, "dispatchd", "sla", f"{clock} {level} {used}".strip())
    zone = ZoneInfo(deps.config.calendar.timezone)
    enqueue(session, sla_notices(task, clock, level, used, extra, deps.notices, zone), deps.notices, now)
    log.warning("sla.threshold", task_id=task.id, clock=clock, level=level, used=used)


def _escalate(session: Session, task: Task, deps: IntakeDeps, now: datetime) -> tuple[str, ...]:
    request = Request(sender=task.sender, client=task.client, type=task.type, priority=Priority(task.priority),
                      description=task.description, body="", subject=task.subject)
    before = RouteDecision(queue=task.queue, priority=Priority(task.priority), sla=task.sla)
    after = escalate(request, before, deps.rulebook.escalations)
    if after == before:
        return ()
    task.priority = after.priority.value
    if after.assignee:
        person = deps.config.staff_by_name(after.assignee)
        if person is not None and person.email != task.assignee:
            task.assignee, task.assigned_at = person.email, now
    session.add(task)
    queries.add_event(session, task, now, "dispatchd", "escalated", "\n".join(after.reasons))
    return after.notify
