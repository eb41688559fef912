"""Who gets work: WIP limits, absences and each queue's strategy (manual, round robin,
least loaded, pull), and the order work is taken in (priority, due date, then FIFO or LIFO)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import Session, col, func, select

from dispatchd.clock import as_utc
from dispatchd.config import Config, Staff
from dispatchd.domain.models import Status
from dispatchd.domain.routing import QueuePolicy
from dispatchd.store.tables import StaffAway, Task

ACTIVE = (Status.QUEUED.value, Status.IN_PROGRESS.value, Status.IN_REVIEW.value, Status.REVISIONS_NEEDED.value)


def active_count(session: Session, email: str) -> int:
    return session.exec(select(func.count()).select_from(Task).where(
        Task.assignee == email, col(Task.status).in_(ACTIVE))).one()


def is_away(session: Session, person: Staff, now: datetime) -> bool:
    if person.away_until is not None and now.date() <= person.away_until:
        return True
    row = session.get(StaffAway, person.email)
    return row is not None and as_utc(row.until) > now  # type: ignore[operator]


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
    available = [s for s in members if not is_away(session, s, now)
                 and active_count(session, s.email) < s.wip_limit]
    if not available:
        return None, f"queue {queue} at capacity: all {len(members)} members are busy or away"
    if policy.strategy == "least_loaded":
        chosen = min(available, key=lambda s: (active_count(session, s.email), members.index(s)))
        return chosen.email, f"least loaded in {queue}"
    last = session.exec(select(Task.assignee).where(Task.queue == queue, col(Task.assignee).is_not(None))
                        .order_by(col(Task.id).desc())).first()
    order = [s.email for s in members]
    start = order.index(last) + 1 if last in order else 0
    rotation = order[start:] + order[:start]
    chosen_email = next(e for e in rotation if any(s.email == e for s in available))
    return chosen_email, f"round robin in {queue}"


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
