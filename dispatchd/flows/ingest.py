"""fetch → parse → route → store → notify, for a run of messages, in one transaction.

The messages' rows, their tasks, the audit events, the outbox mail and the mailbox cursor
are committed together; only after that commit are the messages moved on the server. A crash
before the commit leaves them unread by us; a crash after it leaves a cursor that says so. A
message that breaks processing is quarantined (raw bytes kept), never dropped: its run is
rolled back and taken again one message per transaction, so the others go through.

Here: the runs, the per-message boundary and the order a message is taken in
(``ingest_unrecorded``). Its parts live beside it: ``oversize``, ``loop_breaker``, ``attachments``,
``quarantine`` and ``reingest`` (retries, go-live imports); the record in ``intake_record``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from dispatchd.config import MailboxConfig
from dispatchd.domain.delivery import deliverable_files
from dispatchd.domain.intake import read_request
from dispatchd.domain.loops import automation_reason
from dispatchd.domain.loops_budget import body_fingerprint
from dispatchd.domain.eligibility import Assignment
from dispatchd.domain.models import Disposition, InboundMail, RawMail, Request, RouteDecision, Status
from dispatchd.domain.routing import route, with_queue_prefix
from dispatchd.domain.sla import due_at, parse_sla
from dispatchd.flows.assignment import assign, needs_text, task_needs
from dispatchd.flows.attachments import store_attachments
from dispatchd.flows.bounces import handle_bounce
from dispatchd.flows.calls import record_calendar_answer, want_call
from dispatchd.flows.followers import follow_from_request
from dispatchd.flows.intake_deps import INFRASTRUCTURE_ERRORS, IntakeDeps, our_addresses
from dispatchd.flows.intake_record import MessageRecord, Outcome, finish, log_ingested, record
from dispatchd.flows.loop_breaker import trip_loop_breaker
from dispatchd.flows.notices import capacity_notices, new_task_notices
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.oversize import is_oversize, keep_raw, reject_oversize
from dispatchd.flows.quarantine import quarantine
from dispatchd.flows.replies import command_context, handle_reply, handle_staff_email, match_task, staff_commands
from dispatchd.flows.triage import classify, remember_text, with_verdict
from dispatchd.mail.itip import calendar_answer
from dispatchd.mail.parse import parse_mail
from dispatchd.store import queries
from dispatchd.store.db import write_turn
from dispatchd.store.tables import InboundMessage, Task

log = structlog.get_logger("dispatchd.ingest")


def ingest_run(raws: list[RawMail], deps: IntakeDeps, mailbox: MailboxConfig) -> list[Outcome]:
    """Process messages fetched together from one folder of ``mailbox``, in UID order, exactly
    once: one transaction and one cursor update for the run (a commit per message cost more
    than the message on PostgreSQL). Raises only for infrastructure faults."""
    if len(raws) > 1:
        digests = [keep_raw(raw, deps) for raw in raws]
        first = raws[0]
        try:
            with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
                known = queries.recorded_uids(session, mailbox.account, first.folder, first.uidvalidity,
                                              [raw.uid for raw in raws])
                outcomes = [_already(known[raw.uid]) if raw.uid in known
                            else ingest_unrecorded(session, raw, digest, deps, mailbox)
                            for raw, digest in zip(raws, digests)]
                queries.advance_cursor(session, mailbox.account, first.folder, first.uidvalidity, raws[-1].uid)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:  # one of them is broken (or was taken meanwhile): one by one
            log.warning("mail.run_retried_singly", count=len(raws), error=f"{type(exc).__name__}: {exc}")
        else:
            for outcome in outcomes:
                log_ingested(outcome)
            return outcomes
    return [ingest(raw, deps, mailbox) for raw in raws]


def ingest(raw: RawMail, deps: IntakeDeps, mailbox: MailboxConfig | None = None) -> Outcome:
    """Process one message fetched from ``mailbox`` (default: the first) exactly once;
    raises only for infrastructure faults."""
    mailbox = mailbox or deps.config.mailbox
    digest = keep_raw(raw, deps)
    try:
        with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
            already = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
            outcome = _already(already) if already else ingest_unrecorded(session, raw, digest, deps, mailbox)
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
    log_ingested(outcome)
    return outcome


def _already(row: InboundMessage) -> Outcome:
    return Outcome(row.uid, Disposition(row.disposition), row.message_id, row.task_id, "already processed")


def _recorded_meanwhile(raw: RawMail, deps: IntakeDeps, mailbox: MailboxConfig) -> Outcome | None:
    with Session(deps.engine) as session:
        row = queries.inbound_at(session, mailbox.account, raw.folder, raw.uidvalidity, raw.uid)
    if row is None:
        return None
    log.warning("mail.taken_by_another_instance", uid=raw.uid, message_id=row.message_id, task_id=row.task_id)
    return _already(row)


def ingest_unrecorded(session: Session, raw: RawMail, digest: str, deps: IntakeDeps, mailbox: MailboxConfig,
                      trusted: bool = False) -> Outcome:
    """Record and process a message not recorded yet, inside the caller's transaction; returns its
    outcome. ``trusted``: an operator asked for this (a quarantine retry, an import), so the loop
    breaker stands aside."""
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
        return record(session, row, Disposition.DUPLICATE, f"same Message-ID as message {original_id}")
    if is_oversize(raw, deps):
        return reject_oversize(session, row, raw, mail, deps)
    bounce = handle_bounce(session, mail, deps.notices, now)
    if bounce is not None:
        row.task_id = bounce.outbox.task_id if bounce.outbox else None
        return finish(session, row, Disposition.BOUNCE, bounce.reason, list(bounce.notices), deps)
    answer = calendar_answer(raw.data)
    if answer is not None:  # Accept/Decline from a calendar: recorded, never answered
        row.task_id = record_calendar_answer(session, mail, answer, now)
        return record(session, row, Disposition.AUTOMATED, f"calendar answer: {answer.partstat.lower()}")
    our_domain = address.rpartition("@")[2]
    robot = automation_reason(mail, our_addresses(deps.config), our_domain)
    match = match_task(session, mail, deps.config.intake_addresses)
    if robot is not None:
        row.task_id = match.task.id if match else None
        outcome = record(session, row, Disposition.AUTOMATED, robot)
        if match is not None:
            queries.add_event(session, match.task, now, mail.sender or "unknown", "automated_mail",
                              robot, mail.message_id)
        return outcome
    if not trusted and not deps.config.staff_by_email(mail.sender):
        tripped = trip_loop_breaker(session, mail, row, match.task.id if match else None, deps, now)
        if tripped is not None:
            return tripped
    if match is not None:
        row.task_id = match.task.id
        record(session, row, Disposition.REPLY, "")  # flushed: attachments need its id
        names = store_attachments(session, row, mail, match.task, deps)
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        ctx.files, ctx.files_too_large = deliverable_files(mail.attachments, deps.config.intake.max_attachment_bytes)
        reason = handle_reply(session, mail, match, ctx)
        if names:
            ctx.event(match.task, "attachments", ", ".join(names))
        return finish(session, row, Disposition.REPLY, f"{match.method}: {reason}", ctx.notices, deps)
    commands = staff_commands(mail, deps.config)
    if commands is not None:
        ctx = command_context(session, deps.notices, deps.calendar, now, mail.message_id)
        reason = handle_staff_email(session, mail, commands, ctx)
        return finish(session, row, Disposition.COMMAND, reason, ctx.notices, deps)
    return _new_task(session, row, mail, deps, mailbox)


def _assignee(session: Session, decision: RouteDecision, request: Request, deps: IntakeDeps,
              now: datetime) -> Assignment:
    if decision.assignee:
        person = deps.config.staff_by_name(decision.assignee)
        return Assignment(person.email if person else None, f"assigned by rule to {decision.assignee}", "rule")
    if decision.triage:
        return Assignment(None, "waits for a person to route it", "manual")
    needs = task_needs(needs_text(decision), request.client, deps.config)
    return assign(session, decision.queue, deps.rulebook.queue_policy(decision.queue), needs, deps.config, now,
                  deps.calendar)


def _new_task(session: Session, row: MessageRecord, mail: InboundMail, deps: IntakeDeps,
              mailbox: MailboxConfig) -> Outcome:
    now = deps.clock.now()
    request = read_request(mail, deps.directory, deps.rulebook, mailbox.name, mailbox.default_client)
    classified = classify(request, deps.triage.current(), deps.rulebook, deps.config)
    request = classified.request if classified else request
    decision = with_queue_prefix(with_verdict(route(request, deps.rulebook), classified), mailbox.queue_prefix)
    due = due_at(now, parse_sla(decision.sla), deps.calendar)
    chosen = _assignee(session, decision, request, deps, now)
    assignee_email, assign_reason = chosen.assignee, chosen.reason
    meant_for = None
    if chosen.step == "triage":
        # Nobody in the queue can do it at all (the skill, region or language is missing, or
        # all who have it are away): a person decides, like for mail the rules cannot type.
        meant_for, decision = decision.queue, replace(decision, queue=mailbox.queue_prefix + deps.rulebook.triage_queue)
    status = Status.RECEIVED if decision.triage or meant_for else Status.QUEUED
    task = Task(
        client=request.client, type=request.type, queue=decision.queue, priority=decision.priority.value,
        status=status.value, description=request.description[:500], subject=mail.subject[:1000],
        sender=mail.sender, sender_name=mail.sender_name[:200],
        assignee=assignee_email, sla=decision.sla, due_at=due.at,
        due_explanation=due.explanation, message_id=mail.message_id, tags=" ".join(request.tags),
        needs=needs_text(decision), assigned_at=now if assignee_email else None,
        created_at=now, updated_at=now, mailbox=mailbox.name, claimed_client=request.claimed_client)
    # A plain INSERT, like the message's record: nothing in this transaction changes the task.
    task.id = row.task_id = queries.insert_row(session, Task, task)
    disposition = Disposition.TRIAGE if decision.triage else Disposition.TASK
    outcome = record(session, row, disposition, "; ".join(request.problems))
    queries.add_event(session, task, now, mail.sender or "unknown", "received",
                      f"subject: {mail.subject}", mail.message_id, to_status=Status.RECEIVED.value)
    notes = [*decision.reasons, assign_reason, due.explanation, *(f"parse: {p}" for p in mail.parse_problems)]
    queries.add_event(session, task, now, "dispatchd", "triaged" if decision.triage else "routed",
                      "\n".join(notes), mail.message_id, Status.RECEIVED.value, status.value)
    remember_text(session, task.id, request, classified, now)
    names = store_attachments(session, row, mail, task, deps)
    followers = follow_from_request(session, task, mail, deps.directory, our_addresses(deps.config), now)
    notices = [n for n in new_task_notices(task, mail, request, decision, names, deps.notices,
                                            classified.verdict if classified else None, followers)
               if n.kind != "client-format-help" or queries.take_daily_quota(
                   session, "format-help", n.to[0], now, deps.config.intake.format_help_per_day)]
    if chosen.step == "nobody":
        notices.extend(capacity_notices(task, assign_reason, deps.notices))
    elif meant_for:
        # The reviewers get one mail saying why it is theirs and what to do, not two.
        told = capacity_notices(task, assign_reason, deps.notices, meant_for)
        notices = [n for n in notices if n.kind != "staff-new-task" or n.to[0] not in {t.to[0] for t in told}] + told
    kind = None if decision.triage else deps.rulebook.find_type(task.type)
    call = kind.booking if kind is not None else None
    if call is not None and deps.config.booking is not None:
        want_call(session, task, call.duration, call.attend, deps.config, now, "dispatchd", mail.message_id)
    enqueue(session, [] if deps.quiet else notices, deps.notices, now)
    log.info("route.decided", task_id=task.id, message_id=mail.message_id, queue=task.queue,
             priority=task.priority, triage=decision.triage, reasons=list(decision.reasons))
    return outcome

