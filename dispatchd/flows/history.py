"""Reading a task's audit log for the scheduled jobs: status history and activity."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from dispatchd.clock import as_utc
from dispatchd.config import Config
from dispatchd.domain.clocks import StatusChange
from dispatchd.domain.second_opinion import ANSWERED_EVENT, FAILED_EVENT
from dispatchd.store.tables import Task, TaskEvent

# Events that are not somebody working on the task (a chat model's note on a task in triage is not).
PASSIVE = ("sla", "escalated", "automated_mail", "status_requested", "refused", ANSWERED_EVENT, FAILED_EVENT)


def events_of(session: Session, task_ids: list[int]) -> dict[int, list[TaskEvent]]:
    found: dict[int, list[TaskEvent]] = {task_id: [] for task_id in task_ids}
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start:start + 500]
        for event in session.exec(select(TaskEvent).where(col(TaskEvent.task_id).in_(chunk))
                                  .order_by(col(TaskEvent.id))):
            found[event.task_id].append(event)
    return found


def status_history(events: list[TaskEvent]) -> list[StatusChange]:
    return [StatusChange(as_utc(e.at), e.to_status) for e in events  # type: ignore[arg-type]
            if e.to_status and e.kind != "received"]


def first_staff_action(events: list[TaskEvent], config: Config) -> datetime | None:
    staff = {s.email for s in config.staff}
    return next((as_utc(e.at) for e in events if e.actor in staff and e.kind not in PASSIVE), None)


def last_activity(task: Task, events: list[TaskEvent]) -> datetime:
    moments = [as_utc(e.at) for e in events if e.kind not in PASSIVE and e.kind != "received"]
    return max([m for m in moments if m] or [as_utc(task.created_at)])  # type: ignore[type-var,return-value]
