"""fetch → parse → route → store → notify, for a run of messages, in one transaction.

The messages' rows, their tasks, the audit events, the outbox mail and the mailbox cursor
are committed together; only after that commit are the messages moved on the server. A crash
before the commit leaves them unread by us; a crash after it leaves a cursor that says so. A
message that breaks processing is quarantined (raw bytes kept), never dropped: its run is
rolled back and taken again one message per transaction, so the others go through.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from dispatchd.clock import Clock
from dispatchd.config import Config, MailboxConfig
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.loops import automation_reason
from dispatchd.domain.loops_budget import body_fingerprint, breaker_reason
from dispatchd.domain.models import Disposition, InboundMail, RawMail, RouteDecision, Status
from dispatchd.domain.routing import Rulebook, route, with_queue_prefix
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla
from dispatchd.domain.tokens import bounce_address
from dispatchd.domain.delivery import deliverable_files
from dispatchd.flows.assignment import pick_assignee
from dispatchd.flows.bounces import handle_bounce
from dispatchd.flows.notices import (
    NoticeContext,
    capacity_notices,
    loop_notices,
    may_answer,
    new_task_notices,
    too_large_reply,
)
from dispatchd.flows.followers import follow_from_request
from dispatchd.flows.triage import ModelSlot, classify, remember_text, with_verdict
from dispatchd.flows.replies import command_context, handle_reply, handle_staff_email, match_task, staff_commands
from dispatchd.mail.compose import OutboundMail, bare_address, compose, new_message_id
from dispatchd.mail.parse import parse_mail
from dispatchd.render import Renderer
from dispatchd.store import queries
from dispatchd.store.blobs import BlobStore
from dispatchd.store.coordination import Coordinator
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Attachment, InboundMessage, JobRun, Outbox, Task

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
    coordinator: Coordinator
    quiet: bool = False  # dispatchd import --quiet: tasks and records as usual, no mail to anyone
    triage: ModelSlot = field(default_factory=ModelSlot)  # the triage model in use (none by default)

    @property
    def notices(self) -> NoticeContext:
        return NoticeContext(self.config, self.rulebook, self.renderer, self.secret, self.calendar)

    @property
    def directory(self) -> Directory:
        return Directory(self.config.clients, self.config.staff)


@dataclass
class MessageRecord:
    """A message's row in ``inbound_message`` as intake decides it. Written with plain statements,
    never through the session: building the mapped class cost 0.15 ms a message."""

    account: str
    folder: str
    uidvalidity: int
    uid: int
    mailbox_address: str
    message_id: str
    dedup_key: str | None
    sender: str
    subject: str
    received_at: datetime
    raw_sha256: str
    size: int
    body_hash: str | None
    disposition: str = ""
    reason: str = ""
    task_id: int | None = None
    acknowledged: bool = False
    unmovable: str | None = None  # set later, if the server refuses to move it (flows/mailbox.py)
    id: int | None = None


@dataclass(frozen=True)
class Outcome:
    uid: int
    disposition: Disposition
    message_id: str
    task_id: int | None = None
    reason: str = ""


def ingest_run(raws: list[RawMail], deps: IntakeDeps, mailbox: MailboxConfig) -> list[Outcome]:
    """Process messages fetched together from one folder of ``mailbox``, in UID order, exactly
    once: one transaction and one cursor update for the run (a commit per message cost more
    than the message on PostgreSQL). Raises only for infrastructure faults."""
    if len(raws) > 1:
        digests = [_keep_raw(raw, deps) for raw in raws]
        first = raws[0]
        try:
            with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
                known = queries.recorded_uids(session, mailbox.account, first.folder, first.uidvalidity,
                                              [raw.uid for raw in raws])
                outcomes = [_already(known[raw.uid]) if raw.uid in known
                            else _ingest(session, raw, digest, deps, mailbox) for raw, digest in zip(raws, digests)]
                queries.advance_cursor(session, mailbox.account, first.folder, first.uidvalidity, raws[-1].uid)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # one of them is broken (or was taken meanwhile): one by one
            log.warning("mail.run_retried_singly", count=len(raws), error=f"{type(exc).__name__}: {exc}")
        else:
            for outcome in outcomes:
                _log_ingested(outcome)
            return outcomes
    return [ingest(raw, deps, mailbox) for raw in raws]


def ingest(raw: RawMail, deps: IntakeDeps, mailbox: MailboxConfig | None = None) -> Outcome:
    """Process one message fetched from ``mailbox`` (default: the first) exactly once;
    raises only for infrastructure faults."""
    mailbox = mailbox or deps.config.mailbox
    digest = _keep_raw(raw, deps)
    try:
        with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
            already = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
            outcome = _already(already) if already else _ingest(session, raw, digest, deps, mailbox)
            queries.advance_cursor(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    except INFRASTRUCTURE_ERRORS:
        raise
    except IntegrityError as exc:
        recorded = _recorded_meanwhile(raw, deps, mailbox)
        if recorded is not None:  # another instance took this message first: it is theirs
            return recorded
        log.exception("mail.quarantined", uid=raw.uid, error=f"{type(exc).__name__}: {exc}")
        return quarantine(raw, digest, f"{type(exc).__name__}: {exc}", deps, mailbox)
    except Exception as exc:  # the per-message boundary: quarantine, never lose
        log.exception("mail.quarantined", uid=raw.uid, error=f"{type(exc).__name__}: {exc}")
        return quarantine(raw, digest, f"{type(exc).__name__}: {exc}", deps, mailbox)
    _log_ingested(outcome)
    return outcome


def _keep_raw(raw: RawMail, deps: IntakeDeps) -> str:
    """Store the raw bytes; of mail over the size limit (answered, recorded) only the header."""
    return deps.blobs.put(_header_section(raw.data) if _oversize(raw, deps) else raw.data)


def _already(row: InboundMessage) -> Outcome:
    return Outcome(row.uid, Disposition(row.disposition), row.message_id, row.task_id, "already processed")


def _log_ingested(outcome: Outcome) -> None:
    log.info("mail.ingested", uid=outcome.uid, message_id=outcome.message_id, task_id=outcome.task_id,
             disposition=outcome.disposition.value, reason=outcome.reason or None)


def _recorded_meanwhile(raw: RawMail, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome | None:
    with Session(deps.engine) as session:
        row = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    if row is None:
        return None
    log.warning("mail.taken_by_another_instance", uid=raw.uid, message_id=row.message_id, task_id=row.task_id)
    return _already(row)


def quarantine(raw: RawMail, digest: str, reason: str, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome:
    """Record a message that could not be processed; it stays retryable from its raw bytes."""
    now = deps.clock.now()
    with Session(deps.engine) as session, session.begin():
        existing = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
        message_id = _safe_message_id(raw.data)
        if existing is None:
            session.add(InboundMessage(
                account=mailbox.account, folder=raw.folder, uidvalidity=raw.uidvalidity, uid=raw.uid,
                mailbox_address=mailbox.address, message_id=message_id, received_at=now,
                disposition=Disposition.QUARANTINED, reason=reason[:2000], raw_sha256=digest,
                size=len(raw.data)))
        queries.advance_cursor(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
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
        mailbox = deps.config.mailbox_reading(row.account, row.folder)
        previous = row.reason
        try:
            with session.begin_nested():
                session.delete(row)
                session.flush()
                outcome = _ingest(session, raw, row.raw_sha256, deps, mailbox, trusted=True)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # still broken: keep it quarantined, with the new reason
            log.exception("quarantine.retry_failed", row_id=row_id)
            row = session.get(InboundMessage, row_id) or row
            row.reason = f"{type(exc).__name__}: {exc} (before: {previous})"[:2000]
            return Outcome(raw.uid, Disposition.QUARANTINED, row.message_id, reason=row.reason)
    log.info("quarantine.retried", row_id=row_id, task_id=outcome.task_id, disposition=outcome.disposition.value)
    return outcome


def take_in_before_go_live(raws: list[RawMail], deps: IntakeDeps, mailbox: MailboxConfig) -> list[Outcome | None]:
    """Ingest messages recorded as before go-live (``dispatchd import``), in one transaction: each
    record is replaced by the normal one. None for a message no longer waiting (taken meanwhile).
    Raises if any of them breaks, leaving all of them as they were."""
    digests = [_keep_raw(raw, deps) for raw in raws]
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        outcomes = [_take_in(session, raw, digest, deps, mailbox) for raw, digest in zip(raws, digests)]
    for outcome in outcomes:
        if outcome is not None:
            _log_ingested(outcome)
    return outcomes


def _take_in(session: Session, raw: RawMail, digest: str, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome | None:
    row = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    if row is None or row.disposition != Disposition.BEFORE_GO_LIVE:
        return None
    arrived = row.received_at
    session.delete(row)
    session.flush()
    outcome = _ingest(session, raw, digest, deps, mailbox, trusted=True)  # the owner asked for it
    if outcome.task_id is not None and outcome.disposition in (Disposition.TASK, Disposition.TRIAGE):
        told = "nobody was mailed (--quiet)" if deps.quiet else "mail sent as intake would"
        task = session.get(Task, outcome.task_id)
        assert task is not None
        queries.add_event(session, task, deps.clock.now(), "dispatchd", "imported",
                          f"arrived {arrived:%Y-%m-%d %H:%M}, before go-live; {told}", outcome.message_id)
    return outcome


def _ingest(session: Session, raw: RawMail, digest: str, deps: IntakeDeps, mailbox: MailboxConfig,
            trusted: bool = False) -> Outcome:
    """A message not recorded yet. ``trusted``: an operator asked for this (a quarantine retry),
    so the loop breaker stands aside."""
    mail = parse_mail(raw.data)
    now = deps.clock.now()
    address = mailbox.address
    row = MessageRecord(
        account=mailbox.account, folder=raw.folder, uidvalidity=raw.uidvalidity, uid=raw.uid,
        mailbox_address=address, message_id=mail.message_id, dedup_key=f"{address}|{mail.message_id}",
        sender=mail.sender, subject=mail.subject[:1000], received_at=now,
        raw_sha256=digest, size=len(raw.data), body_hash=body_fingerprint(mail.text))
    original = queries.first_copy(session, row.dedup_key or "")
    if original is not None:
        original_id, row.dedup_key, row.task_id = original[0], None, original[1]
        return _record(session, row, Disposition.DUPLICATE, f"same Message-ID as message {original_id}")
    if _oversize(raw, deps):
        return _reject_oversize(session, row, raw, mail, deps)
    bounce = handle_bounce(session, mail, deps.notices, now)
    if bounce is not None:
        row.task_id = bounce.outbox.task_id if bounce.outbox else None
        return _finish(session, row, Disposition.BOUNCE, bounce.reason, list(bounce.notices), deps)
    our_domain = address.rpartition("@")[2]
    robot = automation_reason(mail, _our_addresses(deps.config), our_domain)
    match = match_task(session, mail, deps.config.intake_addresses)
    if robot is not None:
        row.task_id = match.task.id if match else None
        outcome = _record(session, row, Disposition.AUTOMATED, robot)
        if match is not None:
            queries.add_event(session, match.task, now, mail.sender or "unknown", "automated_mail",
                              robot, mail.message_id)
        return outcome
    if not trusted and not deps.config.staff_by_email(mail.sender):
        tripped = _loop_breaker(session, mail, row, match.task.id if match else None, deps, now)
        if tripped is not None:
            return tripped
    if match is not None:
        row.task_id = match.task.id
        _record(session, row, Disposition.REPLY, "")  # flushed: attachments need its id
        names = _store_attachments(session, row, mail, match.task, deps)
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        ctx.files, ctx.files_too_large = deliverable_files(mail.attachments, deps.config.intake.max_attachment_bytes)
        reason = handle_reply(session, mail, match, ctx)
        if names:
            ctx.event(match.task, "attachments", ", ".join(names))
        return _finish(session, row, Disposition.REPLY, f"{match.method}: {reason}", ctx.notices, deps)
    commands = staff_commands(mail, deps.config)
    if commands is not None:
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        reason = handle_staff_email(session, mail, commands, ctx)
        return _finish(session, row, Disposition.COMMAND, reason, ctx.notices, deps)
    return _new_task(session, row, mail, deps, mailbox)


def _assignee(session: Session, decision: RouteDecision, deps: IntakeDeps, now: datetime) -> tuple[str | None, str]:
    if decision.assignee:
        person = deps.config.staff_by_name(decision.assignee)
        return (person.email if person else None), f"assigned by rule to {decision.assignee}"
    if decision.triage:
        return None, "waits for a person to route it"
    return pick_assignee(session, decision.queue, deps.rulebook.queue_policy(decision.queue), deps.config, now)


def _loop_breaker(session: Session, mail: InboundMail, row: MessageRecord, task_id: int | None,
                  deps: IntakeDeps, now: datetime) -> Outcome | None:
    """Quarantine instead of answering when replying could feed a mail loop; tell the managers."""
    # Known clients are people: the same-text check is for unknown responders changing address.
    known = bool(deps.directory.clients_of_sender(mail.sender))
    activity = queries.recent_activity(session, mail.sender, task_id, None if known else row.body_hash,
                                       now - timedelta(hours=1))
    reason = breaker_reason(activity, deps.config.intake.reply_limits)
    if reason is None:
        return None
    log.error("loop.breaker_tripped", message_id=mail.message_id, sender=mail.sender, task_id=task_id, reason=reason)
    notices = []
    hour = now.strftime("%Y-%m-%dT%H")
    try:
        with session.begin_nested():
            session.add(JobRun(job="loop-breaker", period=hour, recipient=mail.sender, ran_at=now))
        notices = loop_notices(mail, reason, deps.notices)
    except IntegrityError:
        pass  # the owners already heard about this sender this hour
    row.task_id = task_id
    row.dedup_key = None  # a retry from quarantine must not count as a duplicate
    return _finish(session, row, Disposition.QUARANTINED, f"loop breaker: {reason}", notices, deps)


def _oversize(raw: RawMail, deps: IntakeDeps) -> bool:
    return max(raw.size, len(raw.data)) > deps.config.intake.max_message_bytes


def _header_section(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    end = data.find(b"\n\n") if end < 0 else end
    return data[:end] + b"\r\n\r\n" if end >= 0 else data[:65536]


def _reject_oversize(session: Session, row: MessageRecord, raw: RawMail, mail: InboundMail,
                     deps: IntakeDeps) -> Outcome:
    size_mb = max(raw.size, len(raw.data)) / 1024 / 1024
    limit_mb = deps.config.intake.max_message_bytes / 1024 / 1024
    reason = f"message is {size_mb:.1f} MB; the limit is {limit_mb:.0f} MB"
    row.size = max(raw.size, len(raw.data))
    notices = []
    robot = automation_reason(mail, _our_addresses(deps.config), row.mailbox_address.rpartition("@")[2])
    if robot is None and may_answer(mail, deps.config):
        notices.append(too_large_reply(mail, size_mb, limit_mb, deps.notices))
    return _finish(session, row, Disposition.REJECTED, reason, notices, deps)


def _finish(session: Session, row: MessageRecord, disposition: Disposition, reason: str,
            notices: list[OutboundMail], deps: IntakeDeps) -> Outcome:
    outcome = _record(session, row, disposition, reason)
    enqueue(session, [] if deps.quiet else notices, deps.notices, deps.clock.now())
    return outcome


def _new_task(session: Session, row: MessageRecord, mail: InboundMail, deps: IntakeDeps,
              mailbox: MailboxConfig) -> Outcome:
    now = deps.clock.now()
    request = read_request(mail, deps.directory, deps.rulebook, mailbox.name, mailbox.default_client)
    classified = classify(request, deps.triage.current(), deps.rulebook, deps.config)
    request = classified.request if classified else request
    decision = with_queue_prefix(with_verdict(route(request, deps.rulebook), classified), mailbox.queue_prefix)
    due = due_at(now, parse_sla(decision.sla), deps.calendar)
    assignee_email, assign_reason = _assignee(session, decision, deps, now)
    status = Status.RECEIVED if decision.triage else Status.QUEUED
    task = Task(
        client=request.client, type=request.type, queue=decision.queue, priority=decision.priority.value,
        status=status.value, description=request.description[:500], subject=mail.subject[:1000],
        sender=mail.sender, sender_name=mail.sender_name[:200],
        assignee=assignee_email, sla=decision.sla, due_at=due.at,
        due_explanation=due.explanation, message_id=mail.message_id, tags=" ".join(request.tags),
        created_at=now, updated_at=now, mailbox=mailbox.name, claimed_client=request.claimed_client)
    # A plain INSERT, like the message's record: nothing in this transaction changes the task.
    task.id = row.task_id = queries.insert_row(session, Task, task)
    disposition = Disposition.TRIAGE if decision.triage else Disposition.TASK
    outcome = _record(session, row, disposition, "; ".join(request.problems))
    queries.add_event(session, task, now, mail.sender or "unknown", "received",
                      f"subject: {mail.subject}", mail.message_id, to_status=Status.RECEIVED.value)
    notes = [*decision.reasons, assign_reason, due.explanation, *(f"parse: {p}" for p in mail.parse_problems)]
    queries.add_event(session, task, now, "dispatchd", "triaged" if decision.triage else "routed",
                      "\n".join(notes), mail.message_id, Status.RECEIVED.value, status.value)
    remember_text(session, task.id, request, classified, now)
    names = _store_attachments(session, row, mail, task, deps)
    followers = follow_from_request(session, task, mail, deps.directory, _our_addresses(deps.config), now)
    notices = [n for n in new_task_notices(task, mail, request, decision, names, deps.notices,
                                            classified.verdict if classified else None, followers)
               if n.kind != "client-format-help" or queries.take_daily_quota(
                   session, "format-help", n.to[0], now, deps.config.intake.format_help_per_day)]
    if "at capacity" in assign_reason:
        notices.extend(capacity_notices(task, assign_reason, deps.notices))
    enqueue(session, [] if deps.quiet else notices, deps.notices, now)
    log.info("route.decided", task_id=task.id, message_id=mail.message_id, queue=task.queue,
             priority=task.priority, triage=decision.triage, reasons=list(decision.reasons))
    return outcome


def enqueue(session: Session, notices: list[OutboundMail], ctx: NoticeContext, now: datetime) -> None:
    """Compose ``notices`` and put them in the outbox, inside the caller's transaction.

    The envelope sender is a signed VERP address (requests+m<task>.<Message-ID part>.<sig>@…),
    so a bounce names the exact email that failed even when it quotes nothing of it.
    """
    if not notices:
        return
    config = ctx.config
    rows = []
    for notice in notices:
        message_id = new_message_id(config.smtp.from_address, notice.task_id)
        raw = compose(notice, config.smtp.from_address, notice.reply_to or config.mailbox.address, message_id, now)
        envelope_from = (bounce_address(config.mailbox.address, message_id, ctx.secret) if config.smtp.verp
                         else bare_address(config.smtp.from_address))
        rows.append(dict(
            message_id=message_id, task_id=notice.task_id, kind=notice.kind, envelope_from=envelope_from,
            recipients=",".join(notice.to), subject=notice.subject[:500], raw=raw, status="pending", attempts=0,
            next_attempt_at=now, last_error="", created_at=now))
    # Plain INSERTs, one statement for all: nothing reads the rows back in this transaction
    # through the ORM, and building the mapped objects cost as much as composing the emails.
    session.connection().execute(_INSERT_OUTBOX, rows)
    for notice in notices:
        if notice.kind in queries.AUTO_REPLY_KINDS:
            queries.count_auto_reply(session, notice.to, notice.task_id, now)


_INSERT_OUTBOX = insert(Outbox.__table__)  # type: ignore[attr-defined]


def _record(session: Session, row: MessageRecord, disposition: Disposition, reason: str) -> Outcome:
    """Write the message's record with plain statements (``row`` stays outside the session: a
    unit-of-work flush per message cost more than the INSERT). A reply is recorded twice: first
    so that its attachments can name it, then with its outcome."""
    row.disposition = disposition.value
    row.reason = reason[:2000]
    if row.id is None:
        row.id = queries.insert_row(session, InboundMessage, row)
    else:
        queries.set_inbound_outcome(session, row.id, row.disposition, row.reason, row.task_id)
    return Outcome(row.uid, disposition, row.message_id, row.task_id, reason)


def _store_attachments(session: Session, row: MessageRecord, mail: InboundMail, task: Task,
                       deps: IntakeDeps) -> list[str]:
    """Store attachments up to the size limit; larger ones are named but not kept."""
    names = []
    limit = deps.config.intake.max_attachment_bytes
    for attachment in mail.attachments:
        if len(attachment.payload) > limit:
            names.append(f"{attachment.filename} (not stored: {len(attachment.payload) / 1024 / 1024:.1f} MB "
                         f"is over the {limit / 1024 / 1024:.0f} MB limit)")
            continue
        digest = deps.blobs.put(attachment.payload)
        session.add(Attachment(task_id=task.id, inbound_id=row.id, filename=attachment.filename,  # type: ignore[arg-type]
                               content_type=attachment.content_type[:200], size=len(attachment.payload),
                               sha256=digest))
        names.append(attachment.filename)
    return names


def _our_addresses(config: Config) -> frozenset[str]:
    return frozenset({*config.intake_addresses, bare_address(config.smtp.from_address).lower()} - {""})


def _safe_message_id(data: bytes) -> str:
    try:
        return parse_mail(data).message_id
    except Exception:  # the message that broke processing may break this too
        return f"<sha256.{hashlib.sha256(data).hexdigest()[:40]}@dispatchd.invalid>"
