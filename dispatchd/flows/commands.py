"""What each email command does to a task. One handler per command, looked up in COMMANDS.

Handlers change the task inside the caller's transaction, append audit events and queue the
emails the change causes on ``ctx.notices``; the caller commits all of a message's commands
together or none of them. A refused command is a value (``Result(ok=False)``), not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.config import Config
from dispatchd.domain.commands import Command, parse_due
from dispatchd.domain.intake import Directory
from dispatchd.domain.models import Priority, Request, Status
from dispatchd.domain.permissions import Actor
from dispatchd.domain.routing import route
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla
from dispatchd.domain.states import Refusal, apply
from dispatchd.flows.assignment import wip_refusal
from dispatchd.flows.notices import NoticeContext, status_notices
from dispatchd.mail.compose import OutboundMail
from dispatchd.store import queries
from dispatchd.store.tables import Task

@dataclass(frozen=True)
class Result:
    ok: bool
    text: str = ""


@dataclass
class CommandContext:
    session: Session
    notices_ctx: NoticeContext
    calendar: BusinessCalendar
    actor: Actor
    now: datetime
    message_id: str
    notices: list[OutboundMail] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.notices_ctx.config

    def event(self, task: Task, kind: str, detail: str = "", source: str | None = None,
              target: str | None = None) -> None:
        queries.add_event(self.session, task, self.now, self.actor.email, kind, detail, self.message_id, source, target)
        task.updated_at = self.now
        self.session.add(task)


Handler = Callable[[CommandContext, Task, Command], Result]


def _move(ctx: CommandContext, task: Task, command: Command, action: str | None = None) -> Result:
    action = action or command.name
    source = Status(task.status)
    outcome = apply(source, action)
    if isinstance(outcome, Refusal):
        return Result(False, str(outcome))
    if action == "start" and not task.assignee and ctx.actor.role != "client":
        task.assignee = ctx.actor.email
    if action == "review":
        task.producer = task.assignee or ctx.actor.email
    if action == "revise":
        task.assignee = task.producer or task.assignee
        if ctx.actor.role == "client":
            # Revisions of delivered work go ahead of new work (seed 000).
            task.priority = min(Priority(task.priority), Priority.P1).value
    task.status = outcome.target.value
    ctx.event(task, "status", command.argument, source.value, task.status)
    ctx.notices.extend(status_notices(task, source.value, ctx.actor.email, command.argument, ctx.notices_ctx))
    return Result(True, f"{source.value} -> {task.status}")


def _assign(ctx: CommandContext, task: Task, command: Command) -> Result:
    person = ctx.config.staff_by_name(command.argument)
    if person is None:
        return Result(False, f"no staff member called {command.argument!r}")
    return _give(ctx, task, person.email, f"assigned to {person.name}")


def _take(ctx: CommandContext, task: Task, command: Command) -> Result:
    if task.assignee == ctx.actor.email:
        return Result(True, "already yours")
    full = wip_refusal(ctx.session, ctx.actor.email, ctx.config)
    return Result(False, full) if full else _give(ctx, task, ctx.actor.email, "taken")


def _give(ctx: CommandContext, task: Task, email: str, text: str) -> Result:
    previous = task.assignee
    task.assignee = email
    ctx.event(task, "assigned", f"{previous or 'nobody'} -> {email}")
    ctx.notices.extend(n for n in status_notices(task, task.status, ctx.actor.email, text, ctx.notices_ctx)
                       if n.to == (email,))
    return Result(True, text)


def _priority(ctx: CommandContext, task: Task, command: Command) -> Result:
    previous, task.priority = task.priority, command.argument
    sla = ctx.notices_ctx.rulebook.priority_sla.get(Priority(task.priority))
    if sla:
        _reschedule(ctx, task, sla)
    ctx.event(task, "priority", f"{previous} -> {task.priority}" + (f", SLA {sla}" if sla else ""))
    return Result(True, f"priority {task.priority}, due {task.due_explanation}")


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
    return Result(True, task.due_explanation)


def _note(ctx: CommandContext, task: Task, command: Command) -> Result:
    ctx.event(task, "comment", command.argument)
    return Result(True, "noted")


def _status(ctx: CommandContext, task: Task, command: Command) -> Result:
    ctx.event(task, "status_requested")
    return Result(True, "the task's card is below")


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
    source = task.status
    if command.name == "queue":
        task.queue = command.argument.strip().lower()
        reasons = [f"queue {task.queue} set by {ctx.actor.email}"]
    else:
        request = Request(sender=task.sender, client=client, type=type_name, priority=None,
                          description=task.description, body="", subject=task.subject)
        decision = route(request, book)
        task.client, task.type = client, type_name
        if not decision.triage:
            task.queue, task.priority = decision.queue, decision.priority.value
            _reschedule(ctx, task, decision.sla)
            if decision.assignee:
                person = ctx.config.staff_by_name(decision.assignee)
                task.assignee = person.email if person else task.assignee
        reasons = [f"routed by {ctx.actor.email}", *decision.reasons]
    if task.status == Status.RECEIVED.value and task.queue != book.triage_queue and task.client and task.type:
        task.status = Status.QUEUED.value
    ctx.event(task, "rerouted", "\n".join(reasons), source, task.status)
    if task.status != source:
        # Leaving triage: the client was told a person would look; now they hear where it went.
        ctx.notices.extend(status_notices(task, source, ctx.actor.email, f"routed to {task.queue}", ctx.notices_ctx,
                                          tell_client=True))
    return Result(True, f"{task.client or '-'} / {task.type or '-'} -> queue {task.queue}, {task.priority}")


def _reschedule(ctx: CommandContext, task: Task, sla: str) -> None:
    task.sla = sla
    due = due_at(as_utc(task.created_at) or ctx.now, parse_sla(sla), ctx.calendar)  # type: ignore[arg-type]
    task.due_at, task.due_explanation = due.at, due.explanation


COMMANDS: dict[str, Handler] = {
    "start": _move, "review": _move, "revise": _move, "deliver": _move, "close": _move, "confirm": _move,
    "cancel": _move, "approve": _move, "assign": _assign, "take": _take, "priority": _priority, "due": _due,
    "note": _note, "status": _status, "type": _reroute, "client": _reroute, "queue": _reroute,
}

