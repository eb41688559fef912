"""What a client's pages read: their tasks newest first, one task's events and the mail about it."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from dispatchd.store.tables import Attachment, InboundMessage, Outbox, Task, TaskEvent


def client_tasks(session: Session, client: str, limit: int, before: int | None = None) -> list[Task]:
    """``client``'s tasks, newest first (by id: ids grow with arrival), ``limit`` of them,
    those older than task ``before`` when given (the next page)."""
    query = select(Task).where(Task.client == client)
    if before is not None:
        query = query.where(col(Task.id) < before)
    return list(session.exec(query.order_by(col(Task.id).desc()).limit(limit)).all())


def count_client_tasks(session: Session, client: str) -> int:
    return session.exec(select(func.count()).select_from(Task).where(Task.client == client)).one()


def task_events(session: Session, task_id: int) -> list[TaskEvent]:
    return list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id)
                             .order_by(col(TaskEvent.at), col(TaskEvent.id))).all())


def inbound_of_task(session: Session, task_id: int) -> list[InboundMessage]:
    return list(session.exec(select(InboundMessage).where(InboundMessage.task_id == task_id)
                             .order_by(col(InboundMessage.received_at), col(InboundMessage.id))).all())


def outbox_of_task(session: Session, task_id: int) -> list[Outbox]:
    return list(session.exec(select(Outbox).where(Outbox.task_id == task_id)
                             .order_by(col(Outbox.created_at), col(Outbox.id))).all())


def event_with_message_id(session: Session, task_id: int, message_id: str) -> bool:
    """Whether ``task_id`` has an event caused by ``message_id`` (a web action already done)."""
    return session.exec(select(TaskEvent.id).where(TaskEvent.task_id == task_id,
                                                   TaskEvent.message_id == message_id).limit(1)).first() is not None


def next_uid(session: Session, account: str, folder: str, uidvalidity: int) -> int:
    """The next free UID in a folder that no server numbers (the request form's)."""
    last = session.connection().execute(
        text("SELECT MAX(uid) FROM inbound_message WHERE account = :a AND folder = :f AND uidvalidity = :v"),
        {"a": account, "f": folder, "v": uidvalidity}).scalar()
    return int(last or 0) + 1


def files_of_task(session: Session, task_id: int) -> list[tuple[Attachment, str]]:
    """The task's stored attachments, each with the sender of the message that brought it."""
    rows = session.exec(select(Attachment, InboundMessage.sender)
                        .join(InboundMessage, col(InboundMessage.id) == col(Attachment.inbound_id))
                        .where(Attachment.task_id == task_id).order_by(col(Attachment.id))).all()
    return [(attachment, sender) for attachment, sender in rows]
