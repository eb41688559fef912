"""Job ``redispatch``: work nobody has touched for the queue's ``redispatch_after``, or held by
someone who is away, goes to the next person (round robin / least loaded) or back to the
queue. This is not escalation: nobody is late yet, the work is just stuck."""

from __future__ import annotations

from collections import Counter

import structlog
from sqlmodel import Session, col, select

from dispatchd.domain.models import Status
from dispatchd.domain.sla import counted_seconds, parse_sla, target_seconds
from dispatchd.flows.assignment import assign, is_away, task_needs
from dispatchd.flows.history import events_of, last_activity
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.notices import capacity_notices, redispatch_notices
from dispatchd.flows.outgoing import enqueue
from dispatchd.store import queries
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.redispatch")
HELD = (Status.QUEUED.value, Status.IN_PROGRESS.value, Status.REVISIONS_NEEDED.value)


def redispatch(deps: IntakeDeps) -> Counter[str]:
    now = deps.clock.now()
    moved: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        tasks = session.exec(select(Task).where(col(Task.assignee).is_not(None), col(Task.status).in_(HELD))).all()
        history = events_of(session, [t.id for t in tasks])  # type: ignore[misc]
        for task in tasks:
            reason = _why(session, task, history[task.id], deps, now)  # type: ignore[index]
            if reason is None:
                continue
            policy = deps.rulebook.queue_policy(task.queue)
            previous = task.assignee or ""
            # The same eligibility as new work: skills, region, language, hours, limits, backups.
            needs = task_needs(task.needs, task.client, deps.config)
            chosen = assign(session, task.queue, policy, needs, deps.config, now, deps.calendar, exclude=(previous,))
            successor, how = chosen.assignee, chosen.reason
            source, meant_for = task.status, task.queue
            task.assignee, task.assigned_at = successor, now if successor else None
            if chosen.step == "triage":
                # Nobody left in the queue can do it (the only one with the skill is away): a
                # person decides, as for new work (domain/eligibility.unmet).
                task.queue, task.status = _triage_queue(task.queue, deps), Status.RECEIVED.value
            elif successor is None and task.status == Status.IN_PROGRESS.value:
                task.status = Status.QUEUED.value
            task.updated_at = now
            session.add(task)
            target = successor or ("triage" if chosen.step == "triage" else "the queue")
            detail = f"{reason}; {previous} -> {target} ({how})"
            queries.add_event(session, task, now, "dispatchd", "redispatched", detail, None, source, task.status)
            notices = redispatch_notices(task, previous, successor, reason, deps.notices)
            if chosen.step == "triage":
                told = capacity_notices(task, how, deps.notices, meant_for)
                notices = [n for n in notices if n.to[0] == previous] + told
            enqueue(session, notices, deps.notices, now)
            moved["to_person" if successor else "to_triage" if chosen.step == "triage" else "to_queue"] += 1
            log.info("task.redispatched", task_id=task.id, detail=detail)
    return moved


def _triage_queue(queue: str, deps: IntakeDeps) -> str:
    """The triage queue of the mailbox whose prefix ``queue`` carries ("brand-b/triage")."""
    prefixes = [m.queue_prefix for m in deps.config.mailboxes if m.queue_prefix]
    prefix = next((p for p in prefixes if queue.startswith(p)), "")
    return prefix + deps.rulebook.triage_queue


def _why(session: Session, task: Task, events: list, deps: IntakeDeps, now) -> str | None:  # type: ignore[no-untyped-def]
    person = deps.config.staff_by_email(task.assignee or "")
    if person is not None and is_away(session, person, now):
        return f"{person.name} is away"
    after = deps.rulebook.queue_policy(task.queue).redispatch_after
    if after is None:
        return None
    target = parse_sla(after)
    idle = counted_seconds(last_activity(task, events), now, target, deps.calendar)
    if idle >= target_seconds(target, deps.calendar):
        return f"no activity for {after}"
    return None
