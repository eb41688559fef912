"""Which tasks wait for a second opinion, read from the tasks and their audit log.

A task is asked about when the rules and the triage model left it untyped in triage: still
received, in a triage queue, nobody's yet, not an emergency (P0), with a client the sender
files for (a claim, ``claimed_client``, is never guessed on), with the text intake kept of it
(``request_text``), not yet answered and with fewer than ``MAX_ATTEMPTS`` failed calls. The
audit log is the record of the asking (``ANSWERED_EVENT``, ``FAILED_EVENT``), so the count
survives restarts and needs no column of its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sqlalchemy import exists, func
from sqlmodel import Session, col, select

from dispatchd.domain.models import Priority, Status
from dispatchd.domain.second_opinion import ACTOR_PREFIX, ANSWERED_EVENT, FAILED_EVENT, MAX_ATTEMPTS
from dispatchd.store.tables import RequestText, Task, TaskEvent


@dataclass(frozen=True)
class Waiting:
    """A task to ask about, as it stood when it was picked."""

    task_id: int
    client: str
    sender: str
    subject: str
    body: str            # as intake kept it (the first 4,000 characters)
    failed_calls: int


def _failed_calls():  # type: ignore[no-untyped-def]
    # Correlated, so that each candidate is counted through the index on task_event.task_id:
    # the candidates are few (triage), the audit log is long.
    return (select(func.count()).select_from(TaskEvent)
            .where(col(TaskEvent.task_id) == col(Task.id), TaskEvent.kind == FAILED_EVENT)
            .correlate(Task).scalar_subquery())


def _answered():  # type: ignore[no-untyped-def]
    return exists().where(col(TaskEvent.task_id) == col(Task.id), TaskEvent.kind == ANSWERED_EVENT)


def waiting_for_opinion(session: Session, triage_queues: Collection[str]) -> Iterator[Waiting]:
    """The tasks that wait for a second opinion, oldest first (read as they are consumed)."""
    failed = _failed_calls()
    query = (select(Task, RequestText.body, failed)
             .join(RequestText, col(RequestText.task_id) == col(Task.id))
             .where(Task.status == Status.RECEIVED.value, col(Task.type).is_(None), col(Task.client).is_not(None),
                    col(Task.claimed_client).is_(None), col(Task.assignee).is_(None),
                    Task.priority != Priority.P0.value, col(Task.queue).in_(list(triage_queues)),
                    ~_answered(), failed < MAX_ATTEMPTS)
             .order_by(col(Task.created_at), col(Task.id)))
    for task, body, failed_calls in session.exec(query.execution_options(yield_per=100)):  # type: ignore[call-overload]
        yield Waiting(task.id, task.client, task.sender, task.subject, body or "", int(failed_calls))


def was_answered(session: Session, task_id: int) -> bool:
    return session.exec(select(func.count()).select_from(TaskEvent).where(
        TaskEvent.task_id == task_id, TaskEvent.kind == ANSWERED_EVENT)).one() > 0


@dataclass(frozen=True)
class OpinionRecord:
    """What the second opinion did, from the audit log: for ``dispatchd triage status``."""

    routed: int
    held: int                # answered, but left in triage (none, unsure, an emergency, overtaken)
    failed_calls: int
    corrected: list[tuple[int, str | None, str]]  # routed by it, re-typed by a person since: (task, type, queue)


def opinion_record(session: Session, limit: int = 200) -> OpinionRecord:
    routed_by_it = (select(TaskEvent.task_id)
                    .where(TaskEvent.kind == "rerouted", col(TaskEvent.actor).startswith(ACTOR_PREFIX)))
    counted = {kind: int(count) for kind, count in session.exec(
        select(TaskEvent.kind, func.count()).where(col(TaskEvent.kind).in_([ANSWERED_EVENT, FAILED_EVENT]))
        .group_by(TaskEvent.kind)).all()}
    routed = int(session.exec(select(func.count()).select_from(routed_by_it.distinct().subquery())).one())
    # Only a person's `type` or `queue` marks a request corrected, and the second opinion routes only
    # requests nobody touched: a corrected one was re-routed after it.
    corrected = session.exec(select(Task.id, Task.type, Task.queue)
                             .join(RequestText, col(RequestText.task_id) == col(Task.id))
                             .where(col(Task.id).in_(routed_by_it), col(RequestText.corrected))
                             .order_by(col(Task.id).desc()).limit(limit)).all()
    return OpinionRecord(routed, counted.get(ANSWERED_EVENT, 0), counted.get(FAILED_EVENT, 0),
                         [(int(task_id), kind, queue) for task_id, kind, queue in corrected])
