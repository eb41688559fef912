"""What each email command does to a task. One handler per command, looked up in COMMANDS.

Handlers change the task inside the caller's transaction, append audit events and note what
changed on ``ctx``; the caller commits all of a message's commands together or none of them,
and only then turns the changes into emails (``announce_changes``): one per person per task,
however many commands of the email touched it. A refused command is a value
(``Result(ok=False)``), not an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.config import Config
from dispatchd.domain.commands import Command, parse_due
from dispatchd.domain.delivery import files_refusal
from dispatchd.domain.duewords import due_words
from dispatchd.domain.followers import follow_refusal
from dispatchd.domain.intake import Directory
from dispatchd.domain.models import MailAttachment, Priority, Request, Status
from dispatchd.domain.permissions import Actor
from dispatchd.domain.routing import route
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla
from dispatchd.domain.slots import parse_duration
from dispatchd.domain.states import Refusal, apply
from dispatchd.flows.assignment import needs_text, wip_refusal
from dispatchd.flows.calls import drop_call, want_call
from dispatchd.flows.followers import add_followers, followers_of, remove_follower
from dispatchd.flows.notices import NoticeContext, TaskChange, change_notices
from dispatchd.flows.recipients import client_recipients
from dispatchd.mail.compose import OutboundMail, bare_address
from dispatchd.store import queries
from dispatchd.store.triage import mark_corrected
from dispatchd.store.tables import Task

@dataclass(frozen=True)
class Result:
    ok: bool
    text: str = ""
    headline: str = ""  # what happened, for the subject of the sender's reply: "Assigned to Ben"


@dataclass
class CommandContext:
    session: Session
    notices_ctx: NoticeContext
    calendar: BusinessCalendar
    actor: Actor
    now: datetime
    message_id: str
    notices: list[OutboundMail] = field(default_factory=list)
    changes: dict[int, TaskChange] = field(default_factory=dict)
    # The attachments of the email being handled that were kept, and the names of those too large
    # to keep: what 'reply:' and 'deliver' send the client (``domain/delivery``).
    files: tuple[MailAttachment, ...] = ()
    files_too_large: tuple[str, ...] = ()

    @property
    def config(self) -> Config:
        return self.notices_ctx.config

    def change_of(self, task: Task) -> TaskChange:
        """This email's change to ``task``, begun at the status the task had before it."""
        change = self.changes.get(task.id)  # type: ignore[arg-type]
        if change is None:
            change = self.changes[task.id] = TaskChange(task, task.status, self.actor.email)  # type: ignore[index]
        return change

    def announce_changes(self) -> None:
        """The emails the applied changes cause, one per person per task."""
        for change in self.changes.values():
            followers = followers_of(self.session, change.task.id)
            self.notices.extend(change_notices(change, self.notices_ctx, followers))
        self.changes.clear()

    def forget_changes(self) -> None:
        """The commands were rolled back: nothing happened, so nobody hears of it."""
        self.changes.clear()

    def event(self, task: Task, kind: str, detail: str = "", source: str | None = None,
              target: str | None = None) -> None:
        queries.add_event(self.session, task, self.now, self.actor.email, kind, detail, self.message_id, source, target)
        task.updated_at = self.now
        self.session.add(task)


Handler = Callable[[CommandContext, Task, Command], Result]


def _move(ctx: CommandContext, task: Task, command: Command, action: str | None = None) -> Result:
    action = action or command.name
    source = Status(task.status)
    change = ctx.change_of(task)
    outcome = apply(source, action)
    if isinstance(outcome, Refusal):
        return Result(False, str(outcome))
    if action == "start" and not task.assignee and ctx.actor.role != "client":
        task.assignee, task.assigned_at = ctx.actor.email, ctx.now
    if action == "review":
        task.producer = task.assignee or ctx.actor.email
    if action == "revise":
        task.assignee = task.producer or task.assignee
        if ctx.actor.role == "client":
            # Revisions of delivered work go ahead of new work (seed 000).
            task.priority = min(Priority(task.priority), Priority.P1).value
    task.status = outcome.target.value
    if outcome.target == Status.CANCELLED:
        drop_call(ctx.session, task, ctx.now, ctx.actor.email, ctx.message_id)  # a call for nothing
    ctx.event(task, "status", command.argument, source.value, task.status)
    if command.argument:
        change.details.append(command.argument)
    return Result(True, f"{source.value} -> {task.status}", _HEADLINES.get(action, action.capitalize()))


# What a move is called in the subject of the reply to whoever made it.
_HEADLINES = {"start": "Started", "review": "Sent for review", "approve": "Approved", "revise": "Revision requested",
              "deliver": "Delivered", "close": "Closed", "confirm": "Delivery confirmed, request closed",
              "cancel": "Cancelled"}


def _assign(ctx: CommandContext, task: Task, command: Command) -> Result:
    person = ctx.config.staff_by_name(command.argument)
    if person is None:
        return Result(False, f"no staff member called {command.argument!r}")
    return _give(ctx, task, person.email, f"assigned to {person.name}", f"Assigned to {person.name}")


def _take(ctx: CommandContext, task: Task, command: Command) -> Result:
    if task.assignee == ctx.actor.email:
        return Result(True, "already yours", "Already yours")
    full = wip_refusal(ctx.session, ctx.actor.email, ctx.config)
    return Result(False, full) if full else _give(ctx, task, ctx.actor.email, "taken", "Taken")


def _give(ctx: CommandContext, task: Task, email: str, text: str, headline: str) -> Result:
    previous = task.assignee
    ctx.change_of(task).assigned(email, text)
    task.assignee, task.assigned_at = email, ctx.now
    ctx.event(task, "assigned", f"{previous or 'nobody'} -> {email}")
    return Result(True, text, headline)


def _priority(ctx: CommandContext, task: Task, command: Command) -> Result:
    previous, task.priority = task.priority, command.argument
    sla = ctx.notices_ctx.rulebook.priority_sla.get(Priority(task.priority))
    if sla:
        _reschedule(ctx, task, sla)
    ctx.event(task, "priority", f"{previous} -> {task.priority}" + (f", SLA {sla}" if sla else ""))
    ctx.change_of(task).what.append(f"priority {task.priority}")
    return Result(True, f"priority {task.priority}, due {_due_words(ctx, task)}", f"Priority {task.priority}")


def _due(ctx: CommandContext, task: Task, command: Command) -> Result:
    parsed = parse_due(command.argument)
    zone = ZoneInfo(ctx.config.calendar.timezone)
    if isinstance(parsed, datetime):
        moment = parsed.replace(tzinfo=zone)
    elif isinstance(parsed, date):
        moment = datetime.combine(parsed, ctx.config.calendar.day_end, tzinfo=zone)
    else:
        return Result(False, "unreadable date")
    task.due_at = moment
    task.due_explanation = f"due {moment:%a %d %b %H:%M}: set by {ctx.actor.email}"
    ctx.event(task, "due", task.due_explanation)
    words = _due_words(ctx, task)
    ctx.change_of(task).what.append(f"due {words}")
    return Result(True, f"due {words}", f"Due {words}")


def _due_words(ctx: CommandContext, task: Task) -> str:
    return due_words(as_utc(task.due_at), ctx.calendar)


def _note(ctx: CommandContext, task: Task, command: Command) -> Result:
    ctx.event(task, "comment", command.argument)
    return Result(True, "noted", "Note added")


def _status(ctx: CommandContext, task: Task, command: Command) -> Result:
    ctx.event(task, "status_requested")
    return Result(True, "the task's card is below",
                  "Status of your request" if ctx.actor.role == "client" else "Status")


def _reroute(ctx: CommandContext, task: Task, command: Command) -> Result:
    """Manual triage: a person sets type, client or queue; the rules run again."""
    book = ctx.notices_ctx.rulebook
    client, type_name = task.client, task.type
    if command.name == "client":
        found = Directory(ctx.config.clients, ctx.config.staff).client_named(command.argument)
        if found is None:
            return Result(False, f"no client called {command.argument!r}")
        client = found.name
    elif command.name == "type":
        found_type = book.find_type(command.argument)
        if found_type is None:
            return Result(False, f"no request type {command.argument!r} ({', '.join(t.name for t in book.types)})")
        type_name = found_type.name
    if command.name in ("type", "queue"):
        mark_corrected(ctx.session, task.id)  # type: ignore[arg-type]  # a label the triage model learns from
    what = f"{command.name} {command.argument}"
    if command.name != "queue":
        return reroute_as(ctx, task, client, type_name, f"routed by {ctx.actor.email}", what)
    source = task.status
    ctx.change_of(task)  # begun at the status before the change
    task.queue = command.argument.strip().lower()
    return _rerouted(ctx, task, source, [f"queue {task.queue} set by {ctx.actor.email}"], what)


def reroute_as(ctx: CommandContext, task: Task, client: str | None, type_name: str | None, why: str,
               what: str) -> Result:
    """Set the client and type and run the rules again, as a reviewer's ``type X`` does: queue,
    priority, SLA, assignee, and out of triage with the client told where it went. ``why`` heads
    the audit entry ("routed by morgan@…"); ``what`` is what the team's email says changed.
    Whether it is a label the triage model learns from is the caller's business (a person's
    ``type`` is; the second opinion's guess is not)."""
    book = ctx.notices_ctx.rulebook
    source = task.status
    change = ctx.change_of(task)
    request = Request(sender=task.sender, client=client, type=type_name, priority=None,
                      description=task.description, body="", subject=task.subject)
    decision = route(request, book)
    task.client, task.type = client, type_name
    task.needs = needs_text(decision)
    if not decision.triage:
        task.queue, task.priority = decision.queue, decision.priority.value
        _reschedule(ctx, task, decision.sla)
        person = ctx.config.staff_by_name(decision.assignee) if decision.assignee else None
        if person is not None and person.email != task.assignee:
            change.assigned(person.email, f"assigned to {person.name} by the rules")
            task.assignee, task.assigned_at = person.email, ctx.now
    return _rerouted(ctx, task, source, [why, *decision.reasons], what)


def _rerouted(ctx: CommandContext, task: Task, source: str, reasons: list[str], what: str) -> Result:
    book = ctx.notices_ctx.rulebook
    change = ctx.change_of(task)
    if task.status == Status.RECEIVED.value and task.queue != book.triage_queue and task.client and task.type:
        task.status = Status.QUEUED.value
    ctx.event(task, "rerouted", "\n".join(reasons), source, task.status)
    change.what.append(what)
    if task.status != source:
        # Leaving triage: the client was told a person would look; now they hear where it went.
        change.tell_client = True
    return Result(True, f"{task.client or '-'} / {task.type or '-'} -> queue {task.queue}, {task.priority}",
                  f"Routed to {task.queue}")


def _reschedule(ctx: CommandContext, task: Task, sla: str) -> None:
    task.sla = sla
    due = due_at(as_utc(task.created_at) or ctx.now, parse_sla(sla), ctx.calendar)  # type: ignore[arg-type]
    task.due_at, task.due_explanation = due.at, due.explanation


def _follow(ctx: CommandContext, task: Task, command: Command) -> Result:
    """'add follower carol@acme.test': a colleague of the client hears of the task from now on.
    Only the task's client's own addresses may follow (``domain/followers``), whoever asks."""
    directory = Directory(ctx.config.clients, ctx.config.staff)
    ours = {*ctx.config.intake_addresses, bare_address(ctx.config.smtp.from_address).lower()}
    addresses = _addresses(command.argument)
    for address in addresses:
        why = follow_refusal(address, task.client, directory, ours)
        if why is not None:
            return Result(False, why)
    added = add_followers(ctx.session, task, [a for a in addresses if a != task.sender], ctx.actor.email, ctx.now)
    if not added:
        return Result(True, "already following", "Already following")
    ctx.event(task, "follower_added", ", ".join(added))
    ctx.change_of(task).new_followers.extend(added)
    return Result(True, f"{', '.join(added)} will hear when it moves", f"Follower added: {', '.join(added)}")


def _unfollow(ctx: CommandContext, task: Task, command: Command) -> Result:
    """'remove follower carol@acme.test' (or a bare 'remove follower': oneself)."""
    addresses = _addresses(command.argument) if command.argument else [ctx.actor.email]
    if task.sender in addresses:
        return Result(False, f"{task.sender} made the request and always hears of it")
    removed = [a for a in addresses if remove_follower(ctx.session, task, a)]
    if not removed:
        return Result(True, "was not following", "Not following")
    ctx.event(task, "follower_removed", ", ".join(removed))
    return Result(True, f"{', '.join(removed)} will no longer hear of it", f"Follower removed: {', '.join(removed)}")


def _reply(ctx: CommandContext, task: Task, command: Command) -> Result:
    """'reply: Hi Bob, …': the words (and the files attached) go to the client in the task's thread,
    from the agency and signed with the staff member's first name; the audit log keeps them as
    ``to_client``, apart from the team's internal notes (``comment``)."""
    if not command.argument.strip():
        return Result(False, "write the message for the client after 'reply:'")
    return _to_client(ctx, task, command.argument.strip(), "Sent to the client")


def _deliver(ctx: CommandContext, task: Task, command: Command) -> Result:
    """'deliver' (or 'deliver: the final files, and the link https://…'): the Delivered email
    carries the message and the files attached to this reply; the client may confirm or revise."""
    refused = files_refusal(ctx.files, ctx.files_too_large, ctx.config.intake.max_attachment_bytes)
    if refused is not None:
        return Result(False, refused)
    result = _move(ctx, task, Command(command.name, "", command.task_id, command.line))
    if result.ok and (command.argument.strip() or ctx.files):
        sent = _to_client(ctx, task, command.argument.strip(), "")
        return Result(True, f"{result.text}; the message {sent.text}" if sent.ok else result.text, result.headline)
    return result


def _to_client(ctx: CommandContext, task: Task, message: str, headline: str) -> Result:
    recipients = client_recipients(task, ctx.config, followers_of(ctx.session, task.id))
    if not recipients:
        return Result(False, "this request has no client address we may write to")
    refused = files_refusal(ctx.files, ctx.files_too_large, ctx.config.intake.max_attachment_bytes)
    if refused is not None:
        return Result(False, refused)
    change = ctx.change_of(task)
    change.messages.append(message)
    change.files = ctx.files
    person = ctx.config.staff_by_email(ctx.actor.email)
    change.signed_by = person.client_name if person else ""
    files = [f"{a.filename} ({len(a.payload)} bytes, sha256 {hashlib.sha256(a.payload).hexdigest()[:16]})"
             for a in ctx.files]
    ctx.event(task, "to_client", "\n".join([message, *(f"file: {f}" for f in files)]).strip())
    sent = f"sent to {', '.join(recipients)}" + (f" with {len(files)} file(s)" if files else "")
    return Result(True, sent, headline)


def _addresses(text: str) -> list[str]:
    """'Carol <carol@acme.test>, dan@acme.test' -> ['carol@acme.test', 'dan@acme.test']."""
    words = [w.strip("<>()[]\"'") for w in re.split(r"[\s,;]+", text)]
    return list(dict.fromkeys(w.lower() for w in words if "@" in w)) or [text.strip().lower()]


def _schedule(ctx: CommandContext, task: Task, command: Command) -> Result:
    """'schedule' / 'schedule 30 minutes': the booking job proposes times to the client."""
    if ctx.config.booking is None:
        return Result(False, "calls are not set up: config.toml has no [booking]")
    kind = ctx.notices_ctx.rulebook.find_type(task.type)
    typed = kind.booking if kind is not None else None
    person = ctx.config.staff_by_email(ctx.actor.email)
    # The type's attendees; on other work, whoever asked for the call takes it.
    attend = typed.attend if typed else (person.name,) if person else ("assignee",)
    duration = typed.duration if typed else timedelta(minutes=30)
    if command.argument.strip():
        try:
            duration = parse_duration(command.argument)
        except ValueError as exc:
            return Result(False, str(exc))
    wanted = want_call(ctx.session, task, duration, attend, ctx.config, ctx.now, ctx.actor.email, ctx.message_id)
    if isinstance(wanted, str):
        return Result(False, wanted)
    minutes = int(duration.total_seconds() // 60)
    return Result(True, f"times for a {minutes}-minute call will be proposed to the client", "Call times on their way")


COMMANDS: dict[str, Handler] = {
    "start": _move, "review": _move, "revise": _move, "deliver": _deliver, "close": _move, "confirm": _move,
    "cancel": _move, "approve": _move, "assign": _assign, "take": _take, "priority": _priority, "due": _due,
    "note": _note, "status": _status, "type": _reroute, "client": _reroute, "queue": _reroute,
    "follow": _follow, "unfollow": _unfollow, "reply": _reply, "schedule": _schedule,
}

