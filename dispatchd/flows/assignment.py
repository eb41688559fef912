"""Who gets work: the facts eligibility needs (loads, absences, who works when) looked up in one
go, handed to ``domain/eligibility.choose``; what ``next`` offers; the order work is taken in
(priority, due date, then FIFO or LIFO)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, time, timezone
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, func, select

from dispatchd.clock import as_utc
from dispatchd.config import Client, Config, Staff
from dispatchd.domain.eligibility import AUTOMATIC, Assignment, Candidate, Needs, choose, gaps
from dispatchd.domain.models import RouteDecision, Status
from dispatchd.domain.routing import QueuePolicy
from dispatchd.domain.sla import BusinessCalendar, next_opening
from dispatchd.store.tables import StaffAway, Task, TaskEvent

ACTIVE = (Status.QUEUED.value, Status.IN_PROGRESS.value, Status.IN_REVIEW.value, Status.REVISIONS_NEEDED.value)
_PREFER = " | prefer: "


def active_count(session: Session, email: str) -> int:
    return active_counts(session, [email])[email]


def active_counts(session: Session, emails: list[str]) -> dict[str, int]:
    """Active tasks held by each of ``emails``, in one query (an index on assignee and status)."""
    counts = dict.fromkeys(emails, 0)
    counts.update(session.execute(_ACTIVE_COUNTS, {"emails": emails}).all())
    return counts


_ACTIVE_COUNTS = select(Task.assignee, func.count()).where(
    col(Task.assignee).in_(bindparam("emails", expanding=True)), col(Task.status).in_(ACTIVE)).group_by(Task.assignee)


def is_away(session: Session, person: Staff, now: datetime) -> bool:
    return person.email in away_among(session, [person], now)


def away_among(session: Session, people: list[Staff], now: datetime) -> set[str]:
    """Who of ``people`` is away now: by config, or by an 'away until' they sent."""
    away = {p.email for p in people if p.away_until is not None and now.date() <= p.away_until}
    said = session.execute(_AWAY_UNTIL, {"emails": [p.email for p in people]}).all()
    return away | {email for email, until in said if as_utc(until) > now}


_AWAY_UNTIL = select(StaffAway.email, StaffAway.until).where(
    col(StaffAway.email).in_(bindparam("emails", expanding=True)))

_GIVEN_SINCE = select(Task.assignee, func.count()).where(
    col(Task.assignee).in_(bindparam("emails", expanding=True)), col(Task.assigned_at) >= bindparam("since")) \
    .group_by(Task.assignee)


def needs_text(decision: RouteDecision) -> str:
    """What the rules asked of the assignee, as stored on the task ("shopify | prefer: Ben")."""
    text = " ".join(decision.require)
    return text + (_PREFER + ", ".join(decision.prefer) if decision.prefer else "")


def task_needs(needs: str, client_name: str | None, config: Config) -> Needs:
    """The stored needs of a task plus what its client asks (language, region, owner, preferred)."""
    return _needs(needs, next((c for c in config.clients if c.name == client_name), None) if client_name else None)


def _needs(needs: str, client: Client | None) -> Needs:
    skills, _, prefer = needs.partition(_PREFER)
    wanted = {s for s in skills.split() if s}
    preferred = [p.strip() for p in prefer.split(",") if p.strip()]
    if client is not None:
        if client.language:
            wanted.add(client.language)
        preferred.extend((*client.preferred, *((client.owner,) if client.owner else ())))
    return Needs(frozenset(wanted), client.region if client else None, tuple(dict.fromkeys(preferred)))


def candidates(session: Session, config: Config, queue: str, now: datetime, calendar: BusinessCalendar,
               exclude: tuple[str, ...] = ()) -> dict[str, Candidate]:
    """The queue's members, the backups they lean on and the queue's leads, as assignment sees
    them now, by lower-case name; ``exclude``: people the work is moving from (their backups may
    take it). Three small queries over an index, for these people only, whatever the number of
    open tasks."""
    people = _concerned(config, queue)
    emails = [p.email for p in people]
    loads = active_counts(session, emails)
    away = away_among(session, people, now)
    capped = [p.email for p in people if p.max_per_day is not None]
    local = now.astimezone(calendar.zone)
    today: dict[str, int] = {}
    if capped:
        midnight = datetime.combine(local.date(), time(0), tzinfo=calendar.zone).astimezone(timezone.utc)
        today = dict(session.execute(_GIVEN_SINCE, {"emails": capped, "since": midnight}).all())
    opening = next_opening(now, calendar)
    return {p.name.lower(): Candidate(
        name=p.name, email=p.email, skills=p.skills, regions=p.regions, load=loads[p.email],
        wip_limit=p.wip_limit, given_today=today.get(p.email, 0), max_per_day=p.max_per_day,
        away=p.email in away, working=p.shift is None or p.shift.on_duty(local, opening), backup=p.backup,
        in_queue=queue in p.queues, moving_from=p.email in exclude) for p in people}


def _concerned(config: Config, queue: str) -> list[Staff]:
    """Who may be asked for work in ``queue``: its members, down their chains of backups, and
    its leads (config order)."""
    by_name = {p.name.lower(): p for p in config.staff}
    wanted = {p.name.lower() for p in config.staff if queue in p.queues}
    wanted |= {o.name.lower() for o in config.queue_owners(queue)}
    frontier = list(wanted)
    while frontier:
        person = by_name.get(frontier.pop())
        if person is not None and person.backup and person.backup.lower() not in wanted:
            wanted.add(person.backup.lower())
            frontier.append(person.backup.lower())
    return [p for p in config.staff if p.name.lower() in wanted]


def assign(session: Session, queue: str, policy: QueuePolicy, needs: Needs, config: Config, now: datetime,
           calendar: BusinessCalendar, exclude: tuple[str, ...] = (), explain: bool = False) -> Assignment:
    """Who the queue gives new work to, why, and who else was considered (``domain/eligibility``).
    A manual or pull queue gives nobody work: nobody is looked up unless ``explain`` asks."""
    if policy.strategy not in AUTOMATIC and not explain:
        return Assignment(None, f"queue {queue} is {policy.strategy}", "manual")
    staff = candidates(session, config, queue, now, calendar, exclude)
    members = [c for c in staff.values() if c.in_queue]
    owners = [o for o in config.queue_owners(queue) if o.role in ("lead", "manager")]
    lead = staff.get(owners[0].name.lower()) if owners else None
    last = _last_assignee(session, queue) if policy.strategy == "round_robin" else None
    return choose(queue, policy.strategy, members, needs, last, staff, lead)


def _last_assignee(session: Session, queue: str) -> str | None:
    """Who in ``queue`` was given work last: by the time it was given (an index on queue and
    assigned_at), or, for work assigned before that was recorded, by the newest task."""
    last = session.execute(_LAST_GIVEN, {"queue": queue}).scalar()
    return last if last is not None else session.execute(_LAST_ASSIGNEE, {"queue": queue}).scalar()


_LAST_GIVEN = select(Task.assignee).where(Task.queue == bindparam("queue"), col(Task.assigned_at).is_not(None),
                                          col(Task.assignee).is_not(None)) \
    .order_by(col(Task.assigned_at).desc(), col(Task.id).desc()).limit(1)


_LAST_ASSIGNEE = select(Task.assignee).where(Task.queue == bindparam("queue"), col(Task.assignee).is_not(None)) \
    .order_by(col(Task.id).desc()).limit(1)


def wip_refusal(session: Session, email: str, config: Config) -> str | None:
    """Why ``email`` may not take more work now, or None."""
    person = config.staff_by_email(email)
    if person is None:
        return "only staff take tasks"
    active = active_count(session, email)
    if active >= person.wip_limit:
        return f"you are at your WIP limit ({active} of {person.wip_limit} active tasks)"
    return None


def next_task(session: Session, queues: tuple[str, ...], policies: dict[str, QueuePolicy],
              person: Staff | None = None, config: Config | None = None) -> Task | None:
    """The highest-ranked unassigned task in ``queues`` (priority, due date, then FIFO or LIFO)
    that ``person`` has the skills, language and region for. The database ranks by priority and
    due date; rows are read in that order only until one fits (the order within equal ones
    depends on each queue's FIFO or LIFO)."""
    able = Candidate(person.name, person.email, person.skills, person.regions) if person else None
    clients = {c.name: c for c in config.clients} if config else {}
    # Core, not ORM, execution: the ORM would buffer every waiting row before the first is read.
    result = session.connection().execute(_WAITING, {"queues": list(queues)})
    group: list = []  # type: ignore[type-arg]
    for row in _then_none(result):
        if group and (row is None or (row.priority, row.due_at) != (group[0].priority, group[0].due_at)):
            for waiting in sorted(group, key=lambda r: -r.id if _lifo(policies, r.queue) else r.id):
                if able is None or not gaps(able, _needs(waiting.needs, clients.get(waiting.client or ""))):
                    result.close()
                    return session.get(Task, waiting.id)
            group = []
        if row is not None:
            group.append(row)
    return None


_WAITING = select(Task.id, Task.queue, Task.priority, Task.due_at, Task.needs, Task.client).where(
    col(Task.queue).in_(bindparam("queues", expanding=True)), col(Task.assignee).is_(None),
    col(Task.status).in_((Status.QUEUED.value, Status.REVISIONS_NEEDED.value))) \
    .order_by(col(Task.priority), col(Task.due_at))  # ix_task_waiting: read in order, no sort


def _then_none(rows: Iterable[Any]) -> Iterator[Any]:
    yield from rows
    yield None


def _lifo(policies: dict[str, QueuePolicy], queue: str) -> bool:
    return policies.get(queue, QueuePolicy(queue)).order == "lifo"


def explain_assignment(session: Session, task: Task, config: Config, policies: dict[str, QueuePolicy],
                       now: datetime, calendar: BusinessCalendar) -> dict[str, object]:
    """For ``dispatchd explain-assign``: what the task needs, who was considered just now and
    why each could or could not take it, who the queue would give it to, and what the audit
    log says happened when it was assigned."""
    needs = task_needs(task.needs, task.client, config)
    policy = policies.get(task.queue, QueuePolicy(task.queue))
    chosen = assign(session, task.queue, policy, needs, config, now, calendar, explain=True)
    history = session.exec(select(TaskEvent).where(
        TaskEvent.task_id == task.id, col(TaskEvent.kind).in_(("routed", "redispatched", "assigned", "rerouted")))
        .order_by(col(TaskEvent.id))).all()
    return {
        "task": task.id, "queue": task.queue, "strategy": policy.strategy, "assignee": task.assignee,
        "needs": {"skills": sorted(needs.skills), "region": needs.region, "prefer": list(needs.prefer)},
        "considered": [{"name": v.name, "email": v.email, "eligible": v.eligible, "why": v.why}
                       for v in chosen.considered],
        "now": {"assignee": chosen.assignee, "step": chosen.step, "reason": chosen.reason},
        "history": [{"at": as_utc(e.at).isoformat(), "kind": e.kind, "actor": e.actor,  # type: ignore[union-attr]
                     "detail": e.detail} for e in history],
    }
