"""A client's pages as values: their requests (newest first) and one request as they may see it.

Everything here is for one client, named by a link that ``flows/portal.open_link`` accepted: a
task of another client is "not found" (the same answer as a task that does not exist, so a
link cannot probe task numbers). The words are the emails': status and priority labels, the
assignee's first name, the team's client-facing name, the due time in the mails' wording.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.config import Client
from dispatchd.domain.client_view import EventRow, TimelineEntry, client_timeline
from dispatchd.domain.models import Status
from dispatchd.domain.replytext import latest_reply
from dispatchd.flows.calls import proposed_call_times
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.labels import PRIORITY_LABELS, STATUS_LABELS, assignee_label, due_label, queue_label
from dispatchd.mail.parse import parse_mail
from dispatchd.store import portal as store
from dispatchd.store.tables import Attachment, InboundMessage, Task

PAGE_SIZE = 50
_OPEN = frozenset(s.value for s in Status) - {Status.CLOSED.value, Status.CANCELLED.value}


@dataclass(frozen=True)
class RequestRow:
    id: int
    description: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    due: str
    updated_at: datetime
    assignee: str  # a first name, or ''
    team: str


@dataclass(frozen=True)
class MailView:
    at: datetime
    incoming: bool  # from the client (True) or from us
    who: str  # the client's address, or the addresses we wrote to
    subject: str
    text: str


@dataclass(frozen=True)
class FileView:
    id: int
    filename: str
    size: int


@dataclass(frozen=True)
class RequestPage:
    request: RequestRow
    timeline: list[TimelineEntry]
    mails: list[MailView]
    files: list[FileView]  # what the client's own messages brought (internal files stay inside)
    can_confirm: bool  # delivered: accept it or ask for a revision
    can_comment: bool
    call_times: tuple[str, ...] = ()  # times proposed for a call, as the email lists them
    call_zone: str = ""


def _row(task: Task, deps: IntakeDeps) -> RequestRow:
    return RequestRow(
        id=task.id or 0, description=task.description, status=task.status,
        status_label=STATUS_LABELS.get(task.status, task.status), priority=task.priority,
        priority_label=PRIORITY_LABELS.get(task.priority, task.priority), due=due_label(task, deps.calendar),
        updated_at=as_utc(task.updated_at) or task.updated_at, assignee=assignee_label(task.assignee, deps.config),
        team=queue_label(task.queue, deps.config, deps.rulebook))


def client_requests(deps: IntakeDeps, client: Client, before: int | None = None,
                    limit: int = PAGE_SIZE) -> tuple[list[RequestRow], int | None, int]:
    """A page of ``client``'s requests, newest first; the id to continue from (None on the last
    page) and how many requests they have in all."""
    with Session(deps.engine) as session:
        tasks = store.client_tasks(session, client.name, limit + 1, before)
        total = store.count_client_tasks(session, client.name)
    rows = [_row(t, deps) for t in tasks[:limit]]
    return rows, (rows[-1].id if len(tasks) > limit else None), total


def client_request(deps: IntakeDeps, client: Client, task_id: int) -> RequestPage | None:
    """Request ``task_id`` as ``client`` may see it; None when it is not theirs (or not there)."""
    with Session(deps.engine) as session:
        task = session.get(Task, task_id)
        if task is None or task.client != client.name:
            return None
        events = store.task_events(session, task_id)
        inbound = store.inbound_of_task(session, task_id)
        outbox = store.outbox_of_task(session, task_id)
        files = [FileView(a.id or 0, a.filename, a.size) for a, sender in store.files_of_task(session, task_id)
                 if client.may_receive(sender)]
        row = _row(task, deps)
        call_times, call_zone = proposed_call_times(session, task_id)
    timeline = client_timeline(
        [EventRow(as_utc(e.at) or e.at, e.actor, e.kind, e.detail, e.from_status, e.to_status) for e in events],
        client.may_receive)
    mails = [*(_incoming(m.received_at, m.sender, m.subject, m.raw_sha256, deps) for m in inbound
               if client.may_receive(m.sender) and m.disposition in ("task", "triage", "reply")),
             *(_outgoing(o.created_at, o.recipients, o.subject, o.raw) for o in outbox
               if o.recipients and all(client.may_receive(r) for r in o.recipients.split(",")))]
    mails.sort(key=lambda m: m.at)
    return RequestPage(row, timeline, mails, files, can_confirm=task.status == Status.DELIVERED.value,
                       can_comment=task.status in _OPEN, call_times=call_times, call_zone=call_zone)


def client_file(deps: IntakeDeps, client: Client, attachment_id: int) -> tuple[str, bytes] | None:
    """The name and bytes of a file ``client`` sent us (on one of their tasks); None otherwise."""
    with Session(deps.engine) as session:
        attachment = session.get(Attachment, attachment_id)
        task = session.get(Task, attachment.task_id) if attachment is not None else None
        if attachment is None or task is None or task.client != client.name:
            return None
        inbound = session.get(InboundMessage, attachment.inbound_id)
        if inbound is None or not client.may_receive(inbound.sender):
            return None
    try:
        return attachment.filename, deps.blobs.get(attachment.sha256)
    except OSError:
        return None  # pruned by [retention]


def _incoming(at: datetime, sender: str, subject: str, digest: str, deps: IntakeDeps) -> MailView:
    try:
        body = latest_reply(parse_mail(deps.blobs.get(digest)).text)
    except OSError:
        body = ""  # the raw bytes were pruned: the subject and date still say it came
    return MailView(as_utc(at) or at, True, sender, subject, body)


def _outgoing(at: datetime, recipients: str, subject: str, raw: bytes) -> MailView:
    return MailView(as_utc(at) or at, False, recipients.replace(",", ", "), subject, _text(raw))


def _text(raw: bytes) -> str:
    """The plain-text part of a message we stored (ours are multipart/alternative)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    if part is None:
        return ""
    try:
        return str(part.get_content()).strip()
    except (LookupError, ValueError):
        return ""
