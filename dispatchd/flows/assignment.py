"""Who gets work: WIP limits, absences and each queue's strategy (manual, round robin,
least loaded, pull), and the order work is taken in (priority, due date, then FIFO or LIFO)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import bindparam
from sqlmodel import Session, col, func, select

from dispatchd.clock import as_utc
from dispatchd.config import Config, Staff
from dispatchd.domain.models import Status
from dispatchd.domain.routing import QueuePolicy
from dispatchd.store.tables import StaffAway, Task

ACTIVE = (Status.QUEUED.value, Status.IN_PROGRESS.value, Status.IN_REVIEW.value, Status.REVISIONS_NEEDED.value)


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


def wip_refusal(session: Session, email: str, config: Config) -> str | None:
    """Why ``email`` may not take more work now, or None."""
    person = config.staff_by_email(email)
    if person is None:
        return "only staff take tasks"
    active = active_count(session, email)
    if active >= person.wip_limit:
        return f"you are at your WIP limit ({active} of {person.wip_limit} active tasks)"
    return None


def pick_assignee(session: Session, queue: str, policy: QueuePolicy, config: Config, now: datetime,
                  exclude: tuple[str, ...] = ()) -> tuple[str | None, str]:
    """The member the queue's strategy gives new work to, and why (or why nobody)."""
    if policy.strategy in ("manual", "pull"):
        return None, f"queue {queue} is {policy.strategy}"
    members = [s for s in config.staff if queue in s.queues and s.email not in exclude]
    loads = active_counts(session, [s.email for s in members])
    away = away_among(session, members, now)
    available = [s for s in members if s.email not in away and loads[s.email] < s.wip_limit]
    if not available:
        return None, f"queue {queue} at capacity: all {len(members)} members are busy or away"
    if policy.strategy == "least_loaded":
        chosen = min(available, key=lambda s: (loads[s.email], members.index(s)))
        return chosen.email, f"least loaded in {queue}"
    last = session.execute(_LAST_ASSIGNEE, {"queue": queue}).scalar()
    order = [s.email for s in members]
    start = order.index(last) + 1 if last in order else 0
    rotation = order[start:] + order[:start]
    chosen_email = next(e for e in rotation if any(s.email == e for s in available))
    return chosen_email, f"round robin in {queue}"


_LAST_ASSIGNEE = select(Task.assignee).where(Task.queue == bindparam("queue"), col(Task.assignee).is_not(None)) \
    .order_by(col(Task.id).desc()).limit(1)


def next_task(session: Session, queues: tuple[str, ...], policies: dict[str, QueuePolicy]) -> Task | None:
    """The highest-ranked unassigned task in ``queues``: priority, due date, then FIFO (or LIFO)."""
    candidates = session.exec(select(Task).where(
        col(Task.queue).in_(queues), col(Task.assignee).is_(None),
        col(Task.status).in_((Status.QUEUED.value, Status.REVISIONS_NEEDED.value)))).all()

    def rank(task: Task) -> tuple[str, datetime, int]:
        lifo = policies.get(task.queue, QueuePolicy(task.queue)).order == "lifo"
        due = as_utc(task.due_at) or datetime.max.replace(tzinfo=timezone.utc)
        return task.priority, due, -(task.id or 0) if lifo else (task.id or 0)
    return min(candidates, key=rank, default=None)
