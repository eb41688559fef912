"""What the staff pages read besides the dashboard: a page of the task list, one task with its whole
record, the triage queue with the model's suggestions. Reads only; one session each."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from dispatchd.domain.permissions import Actor, TaskScope, refusal
from dispatchd.domain.models import Status
from dispatchd.domain.states import allowed_actions
from dispatchd.flows.assignment import explain_assignment
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.staff_actions import WEB_COMMANDS
from dispatchd.store.queries import TaskFilter, count_tasks, list_tasks
from dispatchd.store.tables import Attachment, InboundMessage, Outbox, RequestText, Task, TaskEvent

# Work that is done or delivered is nobody's to take: no "who could take it" for it.
FINISHED = (Status.DELIVERED.value, Status.CLOSED.value, Status.CANCELLED.value)
MOVES = ("start", "review", "approve", "revise", "deliver", "close", "cancel")


@dataclass(frozen=True)
class TaskPage:
    """A page of the list: the tasks shown, how many match, and the cursor of the next page."""

    tasks: list[Task]
    total: int
    next_before: int | None


@dataclass(frozen=True)
class TaskRecord:
    task: Task
    events: list[TaskEvent]
    inbound: list[InboundMessage]
    outbound: list[Outbox]
    attachments: list[Attachment]
    request: RequestText | None
    assignment: dict[str, object] | None = None  # who could take it now (explain_assignment), open tasks


@dataclass(frozen=True)
class TriageItem:
    task: Task
    request: RequestText | None


def task_page(deps: IntakeDeps, wanted: TaskFilter, limit: int = 50) -> TaskPage:
    with Session(deps.engine) as session:
        tasks = list_tasks(session, wanted, limit + 1)
        total = count_tasks(session, wanted) if len(tasks) > limit or wanted.before else len(tasks)
    more = len(tasks) > limit
    tasks = tasks[:limit]
    return TaskPage(tasks, total, tasks[-1].id if more and tasks else None)


def task_record(deps: IntakeDeps, task_id: int) -> TaskRecord | None:
    with Session(deps.engine) as session:
        task = session.get(Task, task_id)
        if task is None:
            return None
        return TaskRecord(
            task,
            list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(col(TaskEvent.id)))),
            list(session.exec(select(InboundMessage).where(InboundMessage.task_id == task_id)
                              .order_by(col(InboundMessage.id)))),
            list(session.exec(select(Outbox).where(Outbox.task_id == task_id).order_by(col(Outbox.id)))),
            list(session.exec(select(Attachment).where(Attachment.task_id == task_id).order_by(col(Attachment.id)))),
            session.get(RequestText, task_id),
            None if task.status in FINISHED else explain_assignment(
                session, task, deps.config, deps.rulebook.queues, deps.clock.now(), deps.calendar))


def triage_queue(deps: IntakeDeps, limit: int = 100) -> tuple[list[TriageItem], int]:
    """The tasks waiting for a person to route them, oldest first, with what the model guessed at
    intake; and how many wait in all."""
    wanted = TaskFilter(queue=deps.rulebook.triage_queue, status=Status.RECEIVED.value)
    with Session(deps.engine) as session:
        tasks = list(session.exec(select(Task).where(Task.queue == wanted.queue, Task.status == wanted.status)
                                  .order_by(col(Task.id)).limit(limit)))
        texts = {row.task_id: row for row in session.exec(select(RequestText).where(
            col(RequestText.task_id).in_([t.id for t in tasks])))}
        total = count_tasks(session, wanted)
    return [TriageItem(task, texts.get(task.id)) for task in tasks], total  # type: ignore[arg-type]


def offered(actor: Actor, task: Task) -> set[str]:
    """The actions the pages offer ``actor`` on ``task``: those they may run (the same check the
    command makes) and, for status moves, those the ladder allows from the task's status."""
    scope = TaskScope(task.queue, task.assignee, task.client)
    moves = set(allowed_actions(Status(task.status)))
    return {name for name in WEB_COMMANDS if refusal(actor, name, scope) is None
            and (name not in MOVES or name in moves)}
