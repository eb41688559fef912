"""Query functions over the tables. Callers own the session and the transaction."""

from __future__ import annotations

import json
import os
import socket
import uuid
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Table, bindparam, delete, func, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from dispatchd.domain.events import AuditEntry, envelope, events_of, task_snapshot
from dispatchd.domain.loops_budget import RecentActivity
from dispatchd.domain.tokens import BouncedEmail
from dispatchd.store.db import writes_integration_events
from dispatchd.store.tables import (InboundMessage, IntegrationEvent, JobRun, MailboxCursor, Outbox, ReplyTally,
                                    Task, TaskEvent)


def cursor_for(session: Session, account: str, folder: str) -> MailboxCursor | None:
    return session.exec(select(MailboxCursor).where(
        MailboxCursor.account == account, MailboxCursor.folder == folder)).first()


def advance_cursor(session: Session, account: str, folder: str, uidvalidity: int, uid: int) -> None:
    cursor = cursor_for(session, account, folder)
    if cursor is None:
        session.add(MailboxCursor(account=account, folder=folder, uidvalidity=uidvalidity, last_uid=uid))
    elif cursor.uidvalidity != uidvalidity:
        cursor.uidvalidity, cursor.last_uid = uidvalidity, uid
    elif uid > cursor.last_uid:
        cursor.last_uid = uid


def inbound_at(session: Session, account: str, folder: str, uidvalidity: int, uid: int) -> InboundMessage | None:
    return session.exec(select(InboundMessage).where(
        InboundMessage.account == account, InboundMessage.folder == folder,
        InboundMessage.uidvalidity == uidvalidity, InboundMessage.uid == uid)).first()


def first_copy(session: Session, dedup_key: str) -> tuple[int, int | None] | None:
    """(row id, task id) of the message already recorded under ``dedup_key``, if any."""
    row = session.connection().execute(_BY_DEDUP_KEY, dict(key=dedup_key)).first()
    return None if row is None else (row.id, row.task_id)


def _recorded(session: Session, what: Any, account: str, folder: str, uidvalidity: int,
              uids: Iterable[int]) -> Iterator[Any]:
    """``what`` (a table or columns) of the recorded messages among ``uids``, 500 UIDs a query."""
    wanted = list(uids)
    for start in range(0, len(wanted), 500):
        yield from session.exec(select(*what).where(
            InboundMessage.account == account, InboundMessage.folder == folder,
            InboundMessage.uidvalidity == uidvalidity,
            col(InboundMessage.uid).in_(wanted[start:start + 500]))).all()


def recorded_uids(session: Session, account: str, folder: str, uidvalidity: int,
                  uids: Iterable[int]) -> dict[int, InboundMessage]:
    return {row.uid: row for row in _recorded(session, (InboundMessage,), account, folder, uidvalidity, uids)}


def outbox_named(session: Session, named: BouncedEmail) -> Outbox | None:
    """The email a VERP address names: by task and Message-ID prefix (earlier releases: row id)."""
    if named.outbox_id is not None:
        return session.get(Outbox, named.outbox_id)
    prefix = f"<dispatchd.{named.task_id or 0}.{named.message_token}"
    task = Outbox.task_id == named.task_id if named.task_id else col(Outbox.task_id).is_(None)
    return session.exec(select(Outbox).where(task, col(Outbox.message_id).startswith(prefix))).first()


def recorded_dispositions(session: Session, account: str, folder: str, uidvalidity: int,
                          uids: Iterable[int]) -> dict[int, str]:
    """UID -> disposition of those recorded: two columns, not objects (a first sync has 50,000)."""
    return dict(_recorded(session, (InboundMessage.uid, InboundMessage.disposition), account, folder,
                          uidvalidity, uids))


def unmovable_uids(session: Session, account: str, folder: str, uidvalidity: int, uids: Iterable[int]) -> set[int]:
    """Those of ``uids`` the server refused to move before: left alone until `quarantine retry`."""
    return {uid for uid, reason in _recorded(session, (InboundMessage.uid, InboundMessage.unmovable), account,
                                              folder, uidvalidity, uids) if reason}


def mark_unmovable(session: Session, account: str, folder: str, uidvalidity: int, refused: dict[int, str]) -> None:
    for row in _recorded(session, (InboundMessage,), account, folder, uidvalidity, refused):
        row.unmovable = refused[row.uid][:500]
        session.add(row)


def task_of_thread(session: Session, message_ids: Iterable[str]) -> int | None:
    """The task a reply belongs to, from the Message-IDs it names (ours or the client's)."""
    ids = [m for m in message_ids if m]
    if not ids:
        return None
    sent = session.exec(select(Outbox.task_id).where(
        col(Outbox.message_id).in_(ids), col(Outbox.task_id).is_not(None))).first()
    if sent:
        return sent
    return session.exec(select(InboundMessage.task_id).where(
        col(InboundMessage.message_id).in_(ids), col(InboundMessage.task_id).is_not(None))).first()


def sent_in_thread_to(session: Session, message_ids: Iterable[str], address: str) -> bool:
    """Whether one of ``message_ids`` is an email of ours that went to ``address``."""
    ids = [m for m in message_ids if m]
    if not ids or not address:
        return False
    rows = session.exec(select(Outbox.recipients).where(col(Outbox.message_id).in_(ids))).all()
    return any(address.lower() in recipients.lower().split(",") for recipients in rows)


def question_in_thread(session: Session, message_ids: Iterable[str], task_id: int, address: str) -> bool:
    """Whether one of ``message_ids`` is a question of ours about the task that went to ``address``."""
    ids = [m for m in message_ids if m]
    if not ids or not address:
        return False
    rows = session.exec(select(Outbox.recipients).where(
        col(Outbox.message_id).in_(ids), Outbox.kind == "reply-question", Outbox.task_id == task_id)).all()
    return any(address.lower() in recipients.lower().split(",") for recipients in rows)


def take_daily_quota(session: Session, job: str, recipient: str, now: datetime, limit: int) -> bool:
    """One of ``limit`` uses a day of ``job`` for ``recipient`` (a format-help reply), recorded in
    ``job_run`` inside the caller's transaction; False when the day's uses are spent."""
    day = now.date().isoformat()
    used = session.exec(select(func.count()).select_from(JobRun).where(
        JobRun.job == job, JobRun.recipient == recipient, col(JobRun.period).startswith(f"{day}#"))).one()
    if used >= limit:
        return False
    try:
        with session.begin_nested():
            session.add(JobRun(job=job, period=f"{day}#{used + 1}", recipient=recipient, ran_at=now))
    except IntegrityError:  # another instance answered the same address meanwhile
        return False
    return True


def add_event(session: Session, task: Task, at: datetime, actor: str, kind: str, detail: str = "",
              message_id: str | None = None, from_status: str | None = None,
              to_status: str | None = None) -> None:
    """Append to the task's history. A plain INSERT: events are never read back in the
    transaction that writes them, and a mapped object per event doubled the cost of a flush."""
    connection = session.connection()
    connection.execute(_INSERT_EVENT, dict(
        task_id=task.id, at=at, actor=actor, kind=kind, detail=detail, message_id=message_id,
        from_status=from_status, to_status=to_status))
    if writes_integration_events(connection):
        add_integration_events(session, task, at, AuditEntry(kind, actor, detail, from_status, to_status))


def add_integration_events(session: Session, task: Task, at: datetime, entry: AuditEntry) -> None:
    """The public events (webhooks, Slack, Teams) an audit entry stands for, written in its
    transaction: every flow that records what happened to a task gets them, and a rollback
    takes them back with it. The sender process fans them out to the destinations."""
    drafts = events_of(entry, task.assignee)
    if not drafts:
        return
    snapshot = task_snapshot(task)
    rows = []
    for draft in drafts:
        event_id = f"evt_{uuid.uuid4().hex}"
        rows.append(dict(event_id=event_id, task_id=task.id, type=draft.type, internal=draft.internal,
                         client=task.client, queue=task.queue, at=at, fanned_out=False,
                         body=json.dumps(envelope(event_id, draft, at, snapshot), separators=(",", ":"))))
    session.connection().execute(_INSERT_INTEGRATION_EVENT, rows)


_INSERT_EVENT = insert(TaskEvent.__table__)  # type: ignore[attr-defined]
_INSERT_INTEGRATION_EVENT = insert(IntegrationEvent.__table__)  # type: ignore[attr-defined]


def open_question(session: Session, task_id: int, asked: str, since: datetime) -> str | None:
    """The command of the last question asked of ``asked`` about the task since ``since``, if
    they have not answered it yet (a later ``question_answered`` event by them closes it)."""
    row = session.exec(select(TaskEvent.kind, TaskEvent.detail).where(
        TaskEvent.task_id == task_id, TaskEvent.actor == asked, TaskEvent.at >= since,
        col(TaskEvent.kind).in_(("question", "question_answered"))).order_by(col(TaskEvent.id).desc())).first()
    return row[1] if row is not None and row[0] == "question" else None


def insert_row(session: Session, model: type[SQLModel], row: object) -> int:
    """INSERT ``row``'s value of every column of ``model``'s table but the id (``row`` may be any
    object with those attributes) with a plain statement; returns the new id. For rows the
    transaction never reads back through the ORM: building a mapped object and flushing it
    cost more than the INSERT."""
    statement, columns = _plain_insert(model.__table__)  # type: ignore[attr-defined]
    return session.connection().execute(statement, {name: getattr(row, name) for name in columns}) \
        .inserted_primary_key[0]


@lru_cache(maxsize=None)
def _plain_insert(table: Table) -> tuple[Insert, tuple[str, ...]]:
    return insert(table), tuple(column.name for column in table.columns if column.name != "id")


def set_inbound_outcome(session: Session, inbound_id: int, disposition: str, reason: str,
                        task_id: int | None) -> None:
    """The outcome of a message recorded earlier in this transaction (a reply's record comes
    first, so that its attachments can name it)."""
    session.connection().execute(_SET_INBOUND_OUTCOME, dict(
        b_id=inbound_id, b_disposition=disposition, b_reason=reason, b_task_id=task_id))


@dataclass(frozen=True)
class TaskFilter:
    """What ``dispatchd tasks`` asks for; None = any. ``assignee`` "" = nobody. ``before`` is the
    paging cursor: only tasks with a smaller id (the list is newest first)."""

    queue: str | None = None
    status: str | None = None
    client: str | None = None
    assignee: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None


def list_tasks(session: Session, wanted: TaskFilter = TaskFilter(), limit: int | None = 500) -> list[Task]:
    """Tasks matching ``wanted``, newest first; all of them when ``limit`` is None."""
    query = _filtered(select(Task), wanted).order_by(col(Task.id).desc())
    return list(session.exec(query if limit is None else query.limit(limit)).all())


def count_tasks(session: Session, wanted: TaskFilter = TaskFilter()) -> int:
    """How many tasks match ``wanted`` (the cursor included): what a page of them is out of."""
    return session.exec(_filtered(select(func.count()).select_from(Task), wanted)).one()


def _filtered(query: Any, wanted: TaskFilter) -> Any:
    if wanted.queue:
        query = query.where(Task.queue == wanted.queue)
    if wanted.status:
        query = query.where(Task.status == wanted.status)
    if wanted.client:
        query = query.where(Task.client == wanted.client)
    if wanted.assignee == "":
        query = query.where(col(Task.assignee).is_(None))
    elif wanted.assignee:
        query = query.where(Task.assignee == wanted.assignee)
    if wanted.text:
        query = query.where(or_(col(Task.subject).icontains(wanted.text, autoescape=True),
                                col(Task.description).icontains(wanted.text, autoescape=True)))
    if wanted.since:
        query = query.where(Task.created_at >= wanted.since)
    if wanted.until:
        query = query.where(Task.created_at < wanted.until)
    if wanted.before is not None:
        query = query.where(col(Task.id) < wanted.before)
    return query


def known_queues(session: Session) -> set[str]:
    """Every queue a task has been in."""
    return set(session.exec(select(Task.queue).distinct()).all())


def queue_depths(session: Session) -> list[tuple[str, str, int]]:
    rows = session.exec(select(Task.queue, Task.status, func.count()).group_by(Task.queue, Task.status))
    return [(queue, status, count) for queue, status, count in rows]


def claim_outbox(session: Session, due_by: datetime, now: datetime, limit: int, claimer: str) -> list[Outbox]:
    """Mark up to ``limit`` rows due by ``due_by`` as being sent by ``claimer``; the caller commits.
    Rows another instance is claiming at this moment are skipped, not waited for (PostgreSQL)."""
    ids = session.exec(select(Outbox.id).where(
        Outbox.status == "pending", Outbox.next_attempt_at <= due_by)
        .order_by(col(Outbox.next_attempt_at), col(Outbox.id)).limit(limit)
        .with_for_update(skip_locked=True)).all()
    if not ids:
        return []
    session.exec(update(Outbox).where(col(Outbox.id).in_(ids))  # type: ignore[call-overload]
                 .values(status="sending", claimed_at=now, claimed_by=claimer))
    return list(session.exec(select(Outbox).where(col(Outbox.id).in_(ids))).all())


def release_orphaned_claims(session: Session, live_instances: set[str]) -> int:
    """Claims of instances that are gone go back to pending; a resend reuses the same Message-ID."""
    result = session.exec(update(Outbox).where(  # type: ignore[call-overload]
        Outbox.status == "sending",
        or_(col(Outbox.claimed_by).is_(None), col(Outbox.claimed_by).not_in(live_instances)))
        .values(status="pending", claimed_at=None, claimed_by=None))
    return result.rowcount or 0


def outbox_claimed(session: Session) -> bool:
    """Is any row being sent (claimed, result not yet recorded)?"""
    return session.exec(select(Outbox.id).where(Outbox.status == "sending").limit(1)).first() is not None


def next_outbox_due(session: Session) -> datetime | None:
    return session.exec(select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "pending")).first()


AUTO_REPLY_KINDS = ("client-received", "client-format-help", "reply-refused", "reply-results", "client-too-large")


def recent_activity(session: Session, sender: str, task_id: int | None, body_hash: str | None,
                    since: datetime) -> RecentActivity:
    """What the loop breaker looks at: our automatic replies since ``since`` (whole minutes:
    the tallies' grain), and how many senders sent the same text."""
    connection = session.connection()
    to_sender, in_thread = f"to:{sender}", f"task:{task_id}"
    scopes = [to_sender, "all", *([in_thread] if task_id is not None else [])]
    tallies = dict(connection.execute(_TALLIES, dict(scopes=scopes, since=_minute(since))).all())
    senders = set()
    if body_hash:
        senders = set(connection.execute(_SENDERS_OF_BODY, dict(body_hash=body_hash, since=since)).scalars())
    return RecentActivity(tallies.get(to_sender, 0), tallies.get(in_thread, 0), tallies.get("all", 0),
                          len(senders | {sender}))


def count_auto_reply(session: Session, recipients: Iterable[str], task_id: int | None, at: datetime) -> None:
    """Add an automatic reply to the tallies (in the transaction that queues it)."""
    connection = session.connection()
    minute = _minute(at)
    scopes = dict.fromkeys(["all", *(f"to:{address}" for address in recipients),
                            *([f"task:{task_id}"] if task_id else [])])
    writer = _writer()
    connection.execute(_ADD_TO_TALLY[connection.dialect.name],
                       [dict(scope=scope, minute=minute, writer=writer) for scope in scopes])
    global _pruned_until
    if _pruned_until != minute:  # at most once a minute per process: drop tallies nobody reads
        _pruned_until = minute
        connection.execute(_PRUNE_TALLIES, dict(before=minute - timedelta(hours=2)))


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _writer() -> str:
    return f"{_HOST}:{os.getpid()}:{threading.get_ident()}"


_HOST = socket.gethostname()
_pruned_until: datetime | None = None
_REPLY_TALLY = ReplyTally.__table__  # type: ignore[attr-defined]
_TALLIES = select(_REPLY_TALLY.c.scope, func.sum(_REPLY_TALLY.c.count)).where(
    _REPLY_TALLY.c.scope.in_(bindparam("scopes", expanding=True)), _REPLY_TALLY.c.minute >= bindparam("since")) \
    .group_by(_REPLY_TALLY.c.scope)
_ADD_TO_TALLY = {
    name: dialect_insert(_REPLY_TALLY).values(scope=bindparam("scope"), minute=bindparam("minute"),
                                              writer=bindparam("writer"), count=1)
    .on_conflict_do_update(index_elements=["scope", "minute", "writer"], set_={"count": _REPLY_TALLY.c.count + 1})
    for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))}
_PRUNE_TALLIES = delete(_REPLY_TALLY).where(_REPLY_TALLY.c.minute < bindparam("before"))
_INBOUND = InboundMessage.__table__  # type: ignore[attr-defined]
_SET_INBOUND_OUTCOME = update(_INBOUND).where(_INBOUND.c.id == bindparam("b_id")).values(
    disposition=bindparam("b_disposition"), reason=bindparam("b_reason"), task_id=bindparam("b_task_id"))
_BY_DEDUP_KEY = select(_INBOUND.c.id, _INBOUND.c.task_id).where(_INBOUND.c.dedup_key == bindparam("key")).limit(1)
_SENDERS_OF_BODY = select(_INBOUND.c.sender).where(_INBOUND.c.body_hash == bindparam("body_hash"),
                                                   _INBOUND.c.received_at >= bindparam("since"))


def before_go_live_since(session: Session, account: str, folder: str, since: datetime) -> list[tuple[int, int]]:
    """(UIDVALIDITY, UID) of the messages recorded before go-live that arrived at or after ``since``,
    oldest first."""
    return [(row.uidvalidity, row.uid) for row in session.exec(select(
        InboundMessage.uidvalidity, InboundMessage.uid).where(
        InboundMessage.account == account, InboundMessage.folder == folder,
        InboundMessage.disposition == "before_go_live", InboundMessage.received_at >= since)
        .order_by(col(InboundMessage.received_at), col(InboundMessage.uid)))]


def before_go_live_through(session: Session, account: str, folder: str, uidvalidity: int) -> int:
    """The highest UID of the folder still recorded as before go-live (0: none)."""
    return session.exec(select(func.max(InboundMessage.uid)).where(
        InboundMessage.account == account, InboundMessage.folder == folder,
        InboundMessage.uidvalidity == uidvalidity, InboundMessage.disposition == "before_go_live")).one() or 0
