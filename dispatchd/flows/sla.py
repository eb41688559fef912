"""Job ``sla``: read both SLA clocks of every open task and announce each threshold once.

Yellow (``warn_at``, 80 %): the assignee and the queue owners are told. Red (100 %): the
managers too, and the escalation rules run. Optionally the client hears when an open task
is close to its due time. Non-urgent notices wait for business hours; red and P0 go at once.
Each (task, clock, level) is recorded in ``sla_notice`` in the same transaction as its mail,
so a restart never repeats one.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatchd.clock import as_utc
from dispatchd.domain.clocks import first_response_intervals, resolution_intervals
from dispatchd.domain.models import Priority, Request, RouteDecision, Status
from dispatchd.domain.routing import escalate
from dispatchd.domain.sla import ClockReading, counted_seconds, is_open, parse_sla, read_clock, target_seconds
from dispatchd.flows.history import events_of, first_staff_action, status_history
from dispatchd.flows.ingest import IntakeDeps, enqueue
from dispatchd.flows.notices import sla_notices
from dispatchd.store import queries
from dispatchd.store.tables import SlaNotice, Task

log = structlog.get_logger("dispatchd.sla")
LEVELS = ("warning", "breach")


def check_slas(deps: IntakeDeps) -> Counter[str]:
    """Run the job once; returns how many notices of each kind went into the outbox."""
    now = deps.clock.now()
    sent: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        tasks = session.exec(select(Task).where(
            col(Task.status).not_in((Status.CLOSED.value, Status.CANCELLED.value)))).all()
        history = events_of(session, [t.id for t in tasks])  # type: ignore[misc]
        already = {(n.task_id, n.clock, n.level) for n in session.exec(select(SlaNotice))}
        open_now = is_open(now, deps.calendar)
        for task in tasks:
            # Non-urgent notices wait for business hours; red and P0 go out at once.
            urgent_now = open_now or task.priority == Priority.P0.value
            for clock, reading in _readings(task, history[task.id], deps, now):  # type: ignore[index]
                if clock == "resolution" and reading.running and reading.due is not None:
                    task.due_at = reading.due
                pending = [lv for lv in _levels(reading.used, deps.rulebook.sla.warn_at)
                           if (task.id, clock, lv) not in already]
                # Only the highest new level is announced: a breach makes its warning moot.
                if pending and (pending[-1] == "breach" or urgent_now):
                    _announce(session, task, clock, pending, reading, deps, now)
                    sent[f"{clock}.{pending[-1]}"] += 1
            if urgent_now and _client_should_hear(task, deps, now, already):
                _announce(session, task, "resolution", ["client_late"], None, deps, now)
                sent["resolution.client_late"] += 1
    log.info("job.sla_done", tasks=len(tasks), **sent)
    return sent


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


def _client_should_hear(task: Task, deps: IntakeDeps, now: datetime, already: set) -> bool:
    before = deps.rulebook.sla.notify_client_before
    if before is None or (task.id, "resolution", "client_late") in already or not task.sender or task.client is None:
        return False
    if task.status in (Status.READY_FOR_DELIVERY.value, Status.DELIVERED.value, Status.RECEIVED.value):
        return False
    due = as_utc(task.due_at)
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
        task.assignee = person.email if person else task.assignee
    session.add(task)
    queries.add_event(session, task, now, "dispatchd", "escalated", "\n".join(after.reasons))
    return after.notify
