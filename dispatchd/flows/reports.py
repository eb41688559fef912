"""Queue health: depth, waiting time, SLA breaches, triage share, missing categories, forecast.

The same figures go into the daily health email and ``dispatchd report``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, func, select

from dispatchd.clock import as_utc
from dispatchd.domain.forecast import QueuedWork, forecast_breaches
from dispatchd.domain.health import colour, worst
from dispatchd.domain.models import ParsedSubject, Status
from dispatchd.domain.routing import normalise_label
from dispatchd.domain.second_opinion import is_second_opinion
from dispatchd.domain.sla import business_seconds
from dispatchd.domain.subject import parse_subject
from dispatchd.flows.assignment import away_among
from dispatchd.flows.history import events_of
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.retention import freed_since
from dispatchd.flows.staffing import over_capacity, skill_gaps
from dispatchd.store.tables import InboundMessage, Outbox, Task, TaskEvent

CLOSED = (Status.CLOSED.value, Status.CANCELLED.value)
DEFAULT_SERVICE_HOURS = 8.0


@dataclass
class QueueHealth:
    queue: str
    depth: int
    avg_wait_days: float
    breach_rate: float
    colours: dict[str, str]
    colour: str
    forecast: list[dict[str, object]] = field(default_factory=list)


@dataclass
class HealthReport:
    generated_at: str
    period_days: int
    queues: list[QueueHealth]
    requests: int
    triaged: int
    triage_share: float
    triage_colour: str
    suggestions: list[str]
    parked_mail: int = 0
    bounced_mail: int = 0
    quarantined: int = 0
    pruned_bytes: int = 0   # freed by [retention] pruning in the period
    prune_runs: int = 0
    skill_gaps: list[str] = field(default_factory=list)  # flows/staffing.py
    over_capacity: list[str] = field(default_factory=list)


def health_report(deps: IntakeDeps, period_days: int = 30) -> HealthReport:
    now = deps.clock.now()
    since = now - timedelta(days=period_days)
    with Session(deps.engine) as session:
        tasks = list(session.exec(select(Task)).all())
        recent = [t for t in tasks if as_utc(t.created_at) >= since]  # type: ignore[operator]
        history = events_of(session, [t.id for t in recent])  # type: ignore[misc]
        queues = sorted({t.queue for t in tasks if t.status not in CLOSED} | {p for p in deps.rulebook.queues})
        health = [_queue(session, q, tasks, history, deps, now) for q in queues]
        parked = session.exec(select(func.count()).select_from(Outbox).where(Outbox.status == "parked")).one()
        bounced = session.exec(select(func.count()).select_from(Outbox).where(
            Outbox.status == "bounced", Outbox.created_at >= since)).one()
        quarantined = session.exec(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.disposition == "quarantined")).one()
        gaps, over = skill_gaps(session, deps.config, now), over_capacity(session, deps.config, now, deps.calendar)
    pruned_bytes, prune_runs = freed_since(deps.engine, since)
    triaged = [t for t in recent if any(e.kind == "triaged" for e in history[t.id])]  # type: ignore[index]
    share = len(triaged) / len(recent) if recent else 0.0
    return HealthReport(
        generated_at=now.isoformat(), period_days=period_days, queues=health, requests=len(recent),
        triaged=len(triaged), triage_share=share, triage_colour="green" if share < 0.10 else "red",
        suggestions=missing_categories(triaged, history, deps), parked_mail=parked, bounced_mail=bounced,
        quarantined=quarantined, pruned_bytes=pruned_bytes, prune_runs=prune_runs, skill_gaps=gaps,
        over_capacity=over)


def _queue(session: Session, queue: str, tasks: list[Task], history: dict[int, list[TaskEvent]],
           deps: IntakeDeps, now: datetime) -> QueueHealth:
    open_tasks = [t for t in tasks if t.queue == queue and t.status not in CLOSED]
    waits = [business_seconds(as_utc(t.created_at), now, deps.calendar) / _day(deps)  # type: ignore[arg-type]
             for t in open_tasks if t.status in (Status.RECEIVED.value, Status.QUEUED.value)]
    finished = [t for t in tasks if t.queue == queue and t.id in history and t.status in
                (Status.DELIVERED.value, Status.CLOSED.value)]
    late = [t for t in finished if _delivered_late(t, history[t.id])]  # type: ignore[index]
    values = {"depth": float(len(open_tasks)), "avg_wait_days": sum(waits) / len(waits) if waits else 0.0,
              "breach_rate": len(late) / len(finished) if finished else 0.0}
    colours = {metric: colour(metric, value) for metric, value in values.items()}
    return QueueHealth(queue, len(open_tasks), round(values["avg_wait_days"], 2), round(values["breach_rate"], 3),
                       colours, worst(tuple(colours.values())), queue_forecast(session, queue, open_tasks, deps, now))


def _delivered_late(task: Task, events: list[TaskEvent]) -> bool:
    delivered = next((as_utc(e.at) for e in events if e.to_status == Status.DELIVERED.value), None)
    due = as_utc(task.due_at)
    return delivered is not None and due is not None and delivered > due


def queue_forecast(session: Session, queue: str, open_tasks: list[Task], deps: IntakeDeps,
                   now: datetime) -> list[dict[str, object]]:
    """Open tasks of ``queue`` forecast to finish after their due time (the queue simulation of
    ``domain.forecast`` over its members who are in)."""
    in_queue = [s for s in deps.config.staff if queue in s.queues]
    away = away_among(session, in_queue, now)
    members = [s for s in in_queue if s.email not in away]
    capacity = sum(s.wip_limit for s in members) or 1
    lifo = deps.rulebook.queue_policy(queue).order == "lifo"
    waiting = sorted((t for t in open_tasks if t.status in (Status.QUEUED.value, Status.REVISIONS_NEEDED.value)
                      and t.assignee is None), key=lambda t: (t.priority, as_utc(t.due_at), -(t.id or 0) if lifo
                                                             else (t.id or 0)))
    started = [t for t in open_tasks if t.assignee is not None and t.status != Status.DELIVERED.value]
    work = [QueuedWork(t.id, True, as_utc(t.due_at)) for t in started]  # type: ignore[arg-type]
    work += [QueuedWork(t.id, False, as_utc(t.due_at)) for t in waiting]  # type: ignore[arg-type]
    late = forecast_breaches(work, capacity, DEFAULT_SERVICE_HOURS, now, deps.calendar)
    return [{"task_id": f.task_id, "finish": f.finish.isoformat(), "due": f.due.isoformat(),
             "late_by_hours": round(f.late_by_hours, 1)} for f in late]


def missing_categories(triaged: list[Task], history: dict[int, list[TaskEvent]], deps: IntakeDeps) -> list[str]:
    """When 3+ triaged requests were routed by hand the same way, propose the alias or sender rule."""
    aliases: Counter[tuple[str, str]] = Counter()
    domains: Counter[tuple[str, str]] = Counter()
    for task in triaged:
        # By hand: what a chat model routed (the second opinion) says nothing about the rules.
        by_hand = any(e.kind == "rerouted" and not is_second_opinion(e.actor)
                      for e in history[task.id])  # type: ignore[index]
        if not by_hand:
            continue
        parsed = parse_subject(task.subject)
        if isinstance(parsed, ParsedSubject) and task.type and deps.rulebook.find_type(parsed.type_label) is None:
            aliases[(normalise_label(parsed.type_label), task.type)] += 1
        if task.client and not any(c.owns_sender(task.sender) for c in deps.config.clients):
            domains[(task.sender.rpartition("@")[2], task.client)] += 1
    suggestions = [f'add alias "{label}" to type {kind} ({n} requests were routed by hand)'
                   for (label, kind), n in aliases.items() if n >= 3]
    suggestions += [f'add "*@{domain}" to the senders of client {client} ({n} requests were routed by hand)'
                    for (domain, client), n in domains.items() if n >= 3]
    return suggestions


def _day(deps: IntakeDeps) -> float:
    cal = deps.config.calendar
    return (cal.day_end.hour * 60 + cal.day_end.minute - cal.day_start.hour * 60 - cal.day_start.minute) * 60


def report_dict(report: HealthReport) -> dict[str, object]:
    return asdict(report)


