"""fetch → parse → route → store → notify, for one message, in one transaction.

The message's row, its task, the audit events, the outbox mail and the mailbox cursor are
committed together; only after that commit is the message moved on the server. A crash
before the commit leaves the message unread by us; a crash after it leaves a cursor that
says so. A message that breaks processing is quarantined (raw bytes kept), never dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

import structlog
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from dispatchd.clock import Clock
from dispatchd.config import Config
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.loops import automation_reason
from dispatchd.domain.models import Disposition, InboundMail, RawMail, RouteDecision, Status
from dispatchd.domain.routing import Rulebook, route
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla
from dispatchd.flows.assignment import pick_assignee
from dispatchd.flows.notices import NoticeContext, capacity_notices, new_task_notices
from dispatchd.flows.replies import command_context, handle_reply, handle_staff_email, match_task, staff_commands
from dispatchd.mail.compose import OutboundMail, compose, new_message_id
from dispatchd.mail.parse import parse_mail
from dispatchd.render import Renderer
from dispatchd.store import queries
from dispatchd.store.blobs import BlobStore
from dispatchd.store.tables import Attachment, InboundMessage, Outbox, Task

log = structlog.get_logger("dispatchd.ingest")

# Faults of the machine, not of the message: leave the message on the server and retry.
INFRASTRUCTURE_ERRORS = (OperationalError, OSError)


@dataclass(frozen=True)
class IntakeDeps:
    """What ingesting a message needs; built once by the daemon, shared with the CLI and tests."""

    config: Config
    rulebook: Rulebook
    renderer: Renderer
    calendar: BusinessCalendar
    clock: Clock
    blobs: BlobStore
    engine: Engine
    secret: bytes

    @property
    def notices(self) -> NoticeContext:
        return NoticeContext(self.config, self.rulebook, self.renderer, self.secret)

    @property
    def directory(self) -> Directory:
        return Directory(self.config.clients, self.config.staff)

    @property
    def account(self) -> str:
        mailbox = self.config.mailbox
        return f"{mailbox.username}@{mailbox.host}:{mailbox.port}"


@dataclass(frozen=True)
class Outcome:
    uid: int
    disposition: Disposition
    message_id: str
    task_id: int | None = None
    reason: str = ""


def ingest(raw: RawMail, deps: IntakeDeps) -> Outcome:
    """Process one fetched message exactly once; raises only for infrastructure faults."""
    digest = deps.blobs.put(raw.data)
    try:
        with Session(deps.engine) as session, session.begin():
            outcome = _ingest(session, raw, digest, deps)
            queries.advance_cursor(session, deps.account, raw.folder, raw.uidvalidity, raw.uid)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:  # the per-message boundary: quarantine, never lose
        log.exception("mail.quarantined", uid=raw.uid, error=f"{type(exc).__name__}: {exc}")
        return quarantine(raw, digest, f"{type(exc).__name__}: {exc}", deps)
    log.info("mail.ingested", uid=raw.uid, message_id=outcome.message_id, task_id=outcome.task_id,
             disposition=outcome.disposition.value, reason=outcome.reason or None)
    return outcome


def quarantine(raw: RawMail, digest: str, reason: str, deps: IntakeDeps) -> Outcome:
    """Record a message that could not be processed; it stays retryable from its raw bytes."""
    now = deps.clock.now()
    with Session(deps.engine) as session, session.begin():
        existing = queries.inbound_at(session, deps.account, raw.folder, raw.uidvalidity, raw.uid)
        message_id = _safe_message_id(raw.data)
        if existing is None:
            session.add(InboundMessage(
                account=deps.account, folder=raw.folder, uidvalidity=raw.uidvalidity, uid=raw.uid,
                mailbox_address=deps.config.mailbox.address, message_id=message_id, received_at=now,
                disposition=Disposition.QUARANTINED, reason=reason[:2000], raw_sha256=digest,
                size=len(raw.data)))
        queries.advance_cursor(session, deps.account, raw.folder, raw.uidvalidity, raw.uid)
    return Outcome(raw.uid, Disposition.QUARANTINED, message_id, reason=reason)


def retry_quarantined(row_id: int, deps: IntakeDeps) -> Outcome | None:
    """Process a quarantined message again from its stored bytes (after a fix or a rule change).

    On success its quarantine row is replaced by the normal record; on failure it stays.
    """
    with Session(deps.engine) as session, session.begin():
        row = session.get(InboundMessage, row_id)
        if row is None or row.disposition != Disposition.QUARANTINED:
            return None
        raw = RawMail(row.folder, row.uidvalidity, row.uid, deps.blobs.get(row.raw_sha256))
        previous = row.reason
        try:
            with session.begin_nested():
                session.delete(row)
                session.flush()
                outcome = _ingest(session, raw, row.raw_sha256, deps)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # still broken: keep it quarantined, with the new reason
            log.exception("quarantine.retry_failed", row_id=row_id)
            row = session.get(InboundMessage, row_id) or row
            row.reason = f"{type(exc).__name__}: {exc} (before: {previous})"[:2000]
            return Outcome(raw.uid, Disposition.QUARANTINED, row.message_id, reason=row.reason)
    log.info("quarantine.retried", row_id=row_id, task_id=outcome.task_id, disposition=outcome.disposition.value)
    return outcome


def _ingest(session: Session, raw: RawMail, digest: str, deps: IntakeDeps) -> Outcome:
    already = queries.inbound_at(session, deps.account, raw.folder, raw.uidvalidity, raw.uid)
    if already is not None:
        return Outcome(raw.uid, Disposition(already.disposition), already.message_id, already.task_id,
                       "already processed")
    mail = parse_mail(raw.data)
    now = deps.clock.now()
    address = deps.config.mailbox.address
    row = InboundMessage(
        account=deps.account, folder=raw.folder, uidvalidity=raw.uidvalidity, uid=raw.uid,
        mailbox_address=address, message_id=mail.message_id, dedup_key=f"{address}|{mail.message_id}",
        sender=mail.sender, subject=mail.subject[:1000], received_at=now, disposition="",
        raw_sha256=digest, size=len(raw.data))
    original = queries.inbound_by_dedup_key(session, row.dedup_key or "")
    if original is not None:
        row.dedup_key, row.task_id = None, original.task_id
        return _record(session, row, Disposition.DUPLICATE, f"same Message-ID as message {original.id}")
    our_domain = address.rpartition("@")[2]
    robot = automation_reason(mail, _our_addresses(deps.config), our_domain)
    match = match_task(session, mail, address)
    if robot is not None:
        row.task_id = match.task.id if match else None
        outcome = _record(session, row, Disposition.AUTOMATED, robot)
        if match is not None:
            queries.add_event(session, match.task, now, mail.sender or "unknown", "automated_mail",
                              robot, mail.message_id)
        return outcome
    if match is not None:
        row.task_id = match.task.id
        _record(session, row, Disposition.REPLY, "")  # flushed: attachments need its id
        names = _store_attachments(session, row, mail, match.task, deps.blobs)
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        reason = handle_reply(session, mail, match, ctx)
        if names:
            ctx.event(match.task, "attachments", ", ".join(names))
        return _finish(session, row, Disposition.REPLY, f"{match.method}: {reason}", ctx.notices, deps)
    commands = staff_commands(mail, deps.config)
    if commands is not None:
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        reason = handle_staff_email(session, mail, commands, ctx)
        return _finish(session, row, Disposition.COMMAND, reason, ctx.notices, deps)
    return _new_task(session, row, mail, deps)


def _assignee(session: Session, decision: RouteDecision, deps: IntakeDeps, now: datetime) -> tuple[str | None, str]:
    if decision.assignee:
        person = deps.config.staff_by_name(decision.assignee)
        return (person.email if person else None), f"assigned by rule to {decision.assignee}"
    if decision.triage:
        return None, "waits for a person to route it"
    return pick_assignee(session, decision.queue, deps.rulebook.queue_policy(decision.queue), deps.config, now)


def _finish(session: Session, row: InboundMessage, disposition: Disposition, reason: str,
            notices: list[OutboundMail], deps: IntakeDeps) -> Outcome:
    outcome = _record(session, row, disposition, reason)
    for notice in notices:
        enqueue(session, notice, deps.config, deps.clock.now())
    return outcome


def _new_task(session: Session, row: InboundMessage, mail: InboundMail, deps: IntakeDeps) -> Outcome:
    now = deps.clock.now()
    request = read_request(mail, deps.directory, deps.rulebook)
    decision = route(request, deps.rulebook)
    due = due_at(now, parse_sla(decision.sla), deps.calendar)
    assignee_email, assign_reason = _assignee(session, decision, deps, now)
    status = Status.RECEIVED if decision.triage else Status.QUEUED
    task = Task(
        client=request.client, type=request.type, queue=decision.queue, priority=decision.priority.value,
        status=status.value, description=request.description[:500], subject=mail.subject[:1000],
        sender=mail.sender, sender_name=mail.sender_name[:200],
        assignee=assignee_email, sla=decision.sla, due_at=due.at,
        due_explanation=due.explanation, message_id=mail.message_id, tags=" ".join(request.tags),
        created_at=now, updated_at=now)
    session.add(task)
    session.flush()
    row.task_id = task.id
    disposition = Disposition.TRIAGE if decision.triage else Disposition.TASK
    outcome = _record(session, row, disposition, "; ".join(request.problems))
    queries.add_event(session, task, now, mail.sender or "unknown", "received",
                      f"subject: {mail.subject}", mail.message_id, to_status=Status.RECEIVED.value)
    notes = [*decision.reasons, assign_reason, due.explanation, *(f"parse: {p}" for p in mail.parse_problems)]
    queries.add_event(session, task, now, "dispatchd", "triaged" if decision.triage else "routed",
                      "\n".join(notes), mail.message_id, Status.RECEIVED.value, status.value)
    names = _store_attachments(session, row, mail, task, deps.blobs)
    notices = new_task_notices(task, mail, request, decision, names, deps.notices)
    if "at capacity" in assign_reason:
        notices.extend(capacity_notices(task, assign_reason, deps.notices))
    for notice in notices:
        enqueue(session, notice, deps.config, now)
    log.info("route.decided", task_id=task.id, message_id=mail.message_id, queue=task.queue,
             priority=task.priority, triage=decision.triage, reasons=list(decision.reasons))
    return outcome


def enqueue(session: Session, notice: OutboundMail, config: Config, now: datetime) -> Outbox:
    """Compose ``notice`` and put it in the outbox, inside the caller's transaction."""
    message_id = new_message_id(config.smtp.from_address, notice.task_id)
    raw = compose(notice, config.smtp.from_address, notice.reply_to or config.mailbox.address, message_id, now)
    row = Outbox(message_id=message_id, task_id=notice.task_id, kind=notice.kind,
                 envelope_from=parseaddr(config.smtp.from_address)[1], recipients=",".join(notice.to),
                 subject=notice.subject[:500], raw=raw, next_attempt_at=now, created_at=now)
    session.add(row)
    return row


def _record(session: Session, row: InboundMessage, disposition: Disposition, reason: str) -> Outcome:
    row.disposition = disposition.value
    row.reason = reason[:2000]
    session.add(row)
    session.flush()
    return Outcome(row.uid, disposition, row.message_id, row.task_id, reason)


def _store_attachments(session: Session, row: InboundMessage, mail: InboundMail, task: Task,
                       blobs: BlobStore) -> list[str]:
    names = []
    for attachment in mail.attachments:
        digest = blobs.put(attachment.payload)
        session.add(Attachment(task_id=task.id, inbound_id=row.id, filename=attachment.filename,  # type: ignore[arg-type]
                               content_type=attachment.content_type[:200], size=len(attachment.payload),
                               sha256=digest))
        names.append(attachment.filename)
    return names


def _our_addresses(config: Config) -> frozenset[str]:
    return frozenset({config.mailbox.address, parseaddr(config.smtp.from_address)[1].lower()} - {""})


def _safe_message_id(data: bytes) -> str:
    try:
        return parse_mail(data).message_id
    except Exception:  # the message that broke processing may break this too
        return f"<sha256.{hashlib.sha256(data).hexdigest()[:40]}@dispatchd.invalid>"
