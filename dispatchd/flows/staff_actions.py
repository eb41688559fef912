"""A staff member's action from the web pages (a triage button, a status move): the same command,
permission check, handler, audit events and emails as the same words in a reply
(``flows/replies.apply_command``), in a transaction of its own. The audit log names the person;
the events' ``message_id`` is ``web`` (no email carried the command)."""

from __future__ import annotations

import structlog
from sqlmodel import Session

from dispatchd.domain.commands import Command, parse_reply
from dispatchd.domain.permissions import Actor
from dispatchd.flows.commands import Result
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.replies import apply_command, command_context, known_names
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.staff_actions")

# What the pages offer; anything else (follow, reply with files …) stays an email command.
WEB_COMMANDS = ("type", "queue", "client", "assign", "take", "priority", "due", "note", "start", "review",
                "approve", "revise", "deliver", "close", "cancel")
WEB_ORIGIN = "web"
FREE_TEXT = ("note", "cancel", "revise", "deliver")


def staff_actor(deps: IntakeDeps, email: str) -> Actor | None:
    """The staff member signed in as ``email``, with their role and queues; None if not staff."""
    person = deps.config.staff_by_email(email)
    return None if person is None else Actor(person.email, person.role, person.queues)


def act(deps: IntakeDeps, email: str, task_id: int, name: str, argument: str = "") -> Result:
    """Run ``name argument`` on task ``task_id`` as staff member ``email``; a refusal is a value."""
    actor = staff_actor(deps, email)
    if actor is None:
        return Result(False, "only staff act on tasks")
    if name not in WEB_COMMANDS:
        return Result(False, f"{name!r} is not an action of these pages")
    parsed = parse_reply(_line(name, argument), names=known_names(deps.config, deps.rulebook))
    if parsed.problems or [c.name for c in parsed.commands] != [name]:
        return Result(False, parsed.problems[0] if parsed.problems else f"{_line(name, argument)!r} is not understood")
    command = Command(name, parsed.commands[0].argument, task_id, parsed.commands[0].line)
    now = deps.clock.now()
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        ctx = command_context(session, deps.notices, deps.calendar, now, WEB_ORIGIN)
        ctx.actor = actor
        savepoint = session.begin_nested()
        result = apply_command(ctx, session.get(Task, task_id), command)
        if result.ok:
            savepoint.commit()
            ctx.announce_changes()
            enqueue(session, ctx.notices, deps.notices, now)
        else:
            savepoint.rollback()
            ctx.forget_changes()
    log.info("command.applied" if result.ok else "command.refused", task_id=task_id, message_id=WEB_ORIGIN,
             command=name, actor=email, reason=result.text)
    return result


def _line(name: str, argument: str) -> str:
    """The words a reply would carry: 'note: …' for free text, 'assign Ben' for a name."""
    argument = " ".join(argument.split())
    if not argument:
        return name
    return f"{name}: {argument}" if name in FREE_TEXT else f"{name} {argument}"
