"""What a client does on their pages, through the same flows as their email.

- ``client_act``: accept a delivery, ask for a revision, add a comment, pick a proposed call time
  (read by ``calls.answer_about_call`` as the same number in a reply would be). The first two are the
  client's reply commands run by ``client_replies.handle_client_reply`` (the same meaning by
  task status, the same handlers, audit events and emails, the same result email); a comment is
  kept like a reply's words (``reply_notes.keep_note``: on the task, passed to the team). The
  link stands for the signed reply address: it proves the person received our mail.
- ``submit_request``: the request form becomes an email from the contact to the intake
  address and goes through ``ingest_unrecorded`` like one fetched from IMAP (same rules, triage
  model, attachments into the blob store, confirmation email), recorded in a folder of its own.
- ``send_fresh_link``: an expired link renews by email to the address it was made for.

Each form carries an idempotency key; the Message-ID the action is recorded under is derived
from it (and the contact), so a form sent twice on a flaky connection acts once.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from dispatchd.config import Client
from dispatchd.domain.commands import Command, ParsedReply
from dispatchd.domain.models import InboundMail, MailAttachment, RawMail
from dispatchd.domain.permissions import TaskScope, refusal
from dispatchd.domain.tokens import reply_address
from dispatchd.domain.trust import Evidence, judge, party_of
from dispatchd.flows.calls import answer_about_call, proposed_call_times
from dispatchd.flows.client_replies import handle_client_reply
from dispatchd.flows.ingest import ingest_unrecorded
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.notices import digest_mail
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.oversize import keep_raw
from dispatchd.flows.replies import command_context, identify
from dispatchd.flows.reply_notes import keep_note
from dispatchd.store import portal as store
from dispatchd.store import queries
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.client_actions")

WEB_FOLDER = "dispatchd:web"  # the request form's messages: no IMAP folder has this name
WEB_UIDVALIDITY = 1
ACTIONS = ("confirm", "revise", "comment", "call")
FRESH_LINKS_PER_DAY = 3
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    text: str


@dataclass(frozen=True)
class RequestForm:
    type: str  # one of the rules' types, or '' (not sure: the triage model reads the words)
    description: str
    details: str
    urgent: bool
    files: tuple[MailAttachment, ...]
    key: str


@dataclass(frozen=True)
class Submitted:
    task_id: int | None
    again: bool = False  # the same form (idempotency key) was submitted before
    problems: tuple[str, ...] = ()


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key))


def _message_id(deps: IntakeDeps, contact: str, key: str, what: str) -> str:
    """A Message-ID for a form, the same for the same form and contact, no one else's."""
    digest = hmac.digest(deps.web_secret, f"{what}:{contact}:{key}".encode(), "sha256").hex()[:32]
    domain = deps.config.mailbox.address.rpartition("@")[2] or "dispatchd.invalid"
    return f"<web.{what}.{digest}@{domain}>"


def client_act(deps: IntakeDeps, client: Client, contact: str, task_id: int, action: str, words: str,
               key: str) -> ActionResult:
    """``action`` (confirm, revise, comment) on ``task_id`` by ``contact`` of ``client``."""
    if action not in ACTIONS or not valid_key(key):
        return ActionResult(False, "That is not something these pages can do.")
    words = words.strip()[:10000]
    if action == "call" and not words.isdigit():
        return ActionResult(False, "Please choose one of the times.")
    if action in ("revise", "comment") and not words:
        return ActionResult(False, "Please write what should change." if action == "revise"
                            else "Please write your comment.")
    message_id = _message_id(deps, contact, f"{key}:{action}", "act")  # one page's forms share a key
    now = deps.clock.now()
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        task = session.get(Task, task_id)
        if task is None or task.client != client.name:
            return ActionResult(False, "No such request.")
        if store.event_with_message_id(session, task_id, message_id):
            return ActionResult(True, "Done (this form was already sent).")
        actor = identify(contact, task, deps.config)
        command = {"comment": "note", "call": "note"}.get(action, action)  # a call's time: as a client may write
        why = "not one of the client's addresses" if actor is None else refusal(
            actor, command, TaskScope(task.queue, task.assignee, task.client))
        if actor is None or why is not None:
            log.warning("command.unauthorised", task_id=task_id, message_id=message_id, sender=contact, reason=why)
            return ActionResult(False, "You may not do that on this request.")
        ctx = command_context(session, deps.notices, deps.calendar, now, message_id)
        ctx.actor = actor
        verdict = judge(party_of(contact, is_staff=False, task_client=task.client, sender_clients=(client.name,),
                                 task_sender=task.sender), Evidence(signed_reply_address=True))
        if action == "comment":
            keep_note(ctx, task, contact, "client", words, verdict=verdict)
            outcome = "your comment was passed to the team"
        elif action == "call":
            # The time's number, read as the same answer to the proposals email would be.
            if not 1 <= int(words) <= len(proposed_call_times(session, task_id)[0]):
                return ActionResult(False, "That time is no longer on offer; the times below are.")
            mail = _as_reply(deps, task, contact, words, message_id, now)
            picked = answer_about_call(session, mail, task, words, ParsedReply((), words), deps.notices, [], now)
            if picked is None or "picked" not in picked:
                return ActionResult(False, "That time is no longer on offer; the times below are.")
            outcome = "thank you: we are booking that time, and the invitation follows by email"
        else:
            mail = _as_reply(deps, task, contact, words or action, message_id, now)
            line = f"revise: {words}" if action == "revise" else "confirm"
            parsed = ParsedReply((Command(action, words if action == "revise" else "", task_id, line),), "")
            outcome = handle_client_reply(session, mail, task, actor, line, parsed, ctx, True, verdict)
            outcome = outcome.partition(": ")[2] or outcome
        enqueue(session, ctx.notices, deps.notices, now)
    log.info("web.client_action", task_id=task_id, message_id=message_id, action=action, actor=contact)
    return ActionResult(True, outcome[:1].upper() + outcome[1:] + ".")


def _as_reply(deps: IntakeDeps, task: Task, contact: str, text: str, message_id: str, now: datetime) -> InboundMail:
    """The action as the reply it stands for (what the result email answers)."""
    intake = deps.config.mailbox_named(task.mailbox).address
    return InboundMail(message_id=message_id, sender=contact, sender_name="",
                       recipients=(reply_address(intake, task.id or 0, contact, deps.secret),),
                       subject=f"Re: [#{task.id}] {task.description}", date=now, text=text, in_reply_to=None,
                       references=(task.message_id,), headers={})


def form_problems(form: RequestForm, types: list[str], max_file_bytes: int, max_total_bytes: int) -> list[str]:
    """What keeps the form from becoming a request, in words for the person who filled it in."""
    problems = []
    if not form.description.strip():
        problems.append("Please say in a few words what you need.")
    if len(form.description) > 200:
        problems.append("Please keep the short description under 200 characters; put the rest in the details.")
    if form.type and form.type not in types:
        problems.append("Please choose a type from the list.")
    if any(len(f.payload) > max_file_bytes for f in form.files):
        problems.append(f"Each file may be at most {max_file_bytes // (1024 * 1024)} MB.")
    if sum(len(f.payload) for f in form.files) > max_total_bytes:
        problems.append(f"The files together may be at most {max_total_bytes // (1024 * 1024)} MB.")
    if not valid_key(form.key):
        problems.append("This form has expired; please reload the page.")
    return problems


def submit_request(deps: IntakeDeps, client: Client, contact: str, form: RequestForm) -> Submitted:
    """The form as an email from ``contact`` through intake; the task it became."""
    problems = form_problems(form, [t.name for t in deps.rulebook.types], deps.config.intake.max_attachment_bytes,
                             deps.config.web.max_upload_bytes)
    if problems:
        return Submitted(None, problems=tuple(problems))
    mailbox = deps.config.mailbox
    message_id = _message_id(deps, contact, form.key, "request")
    data = _as_email(client, contact, mailbox.address, form, message_id, deps)
    digest = keep_raw(RawMail(WEB_FOLDER, WEB_UIDVALIDITY, 0, data), deps)
    dedup_key = f"{mailbox.address}|{message_id}"
    for _attempt in range(3):  # PostgreSQL: another instance may take the same UID meanwhile
        try:
            with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
                known = queries.first_copy(session, dedup_key)
                if known is not None:
                    return Submitted(known[1], again=True)
                uid = store.next_uid(session, mailbox.account, WEB_FOLDER, WEB_UIDVALIDITY)
                outcome = ingest_unrecorded(session, RawMail(WEB_FOLDER, WEB_UIDVALIDITY, uid, data), digest, deps,
                                            mailbox)
        except IntegrityError:
            continue
        log.info("web.request_submitted", task_id=outcome.task_id, message_id=message_id, actor=contact,
                 disposition=outcome.disposition.value)
        return Submitted(outcome.task_id)
    raise RuntimeError(f"could not record the web request {message_id}")


def _as_email(client: Client, contact: str, intake: str, form: RequestForm, message_id: str,
              deps: IntakeDeps) -> bytes:
    """The form in the subject convention (``[Client] - Type - Description [P1]``), or, without
    a type, the description alone: a request in plain words for the triage model."""
    description = " ".join(form.description.split())
    urgent = " [P1]" if form.urgent else ""
    subject = (f"[{client.name}] - {form.type} - {description}{urgent}" if form.type
               else f"{description}{urgent}")
    message = EmailMessage()
    message["From"] = formataddr(("", contact))
    message["To"] = intake
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(deps.clock.now())
    message["X-Dispatchd-Origin"] = "web form"
    details = form.details.strip() or description
    message.set_content(details + ("\n\nThe client marked this as urgent." if form.urgent else "") + "\n")
    for file in form.files:
        maintype, _, subtype = file.content_type.partition("/")
        if not subtype or not maintype.isalpha():
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(file.payload, maintype=maintype, subtype=subtype, filename=file.filename)
    return message.as_bytes()


def send_fresh_link(deps: IntakeDeps, client: Client, contact: str) -> bool:
    """Email ``contact`` a new link to their requests (a few a day at most); False if the day's
    are spent."""
    now = deps.clock.now()
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        if not queries.take_daily_quota(session, "web-link", contact, now, FRESH_LINKS_PER_DAY):
            return False
        enqueue(session, [digest_mail("client-link", contact, {"client": client.name, "task": None}, deps.notices)],
                deps.notices, now)
    log.info("web.fresh_link", actor=contact)
    return True
