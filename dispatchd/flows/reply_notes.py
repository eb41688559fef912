"""What a reply says besides its commands: kept on the task and passed on, and the one-line
question dispatchd asks back when a reply looks like a command but is not certain.

A question is recorded as a ``question`` event (the command it would run, and who was asked);
it goes out in a mail whose Reply-To is signed for that person, so their ``yes`` is as trusted
as the command itself would have been. The ``yes`` must answer that mail (its thread); it runs the recorded command and records a
``question_answered`` event; a question older than ``QUESTION_DAYS`` is forgotten.
"""

from __future__ import annotations

import re
from datetime import timedelta

import structlog

from dispatchd.domain.commands import Command
from dispatchd.domain.models import InboundMail
from dispatchd.domain.phrases import normalise
from dispatchd.domain.trust import Verdict
from dispatchd.flows.commands import CommandContext
from dispatchd.flows.notices import comment_notices, question_reply
from dispatchd.store import queries
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.replies")

QUESTION_DAYS = 14
EMPTY_REPLY = "(empty reply)"  # a reply with no words of its own: an accidental send, a bare quote
_YES = re.compile(
    r"(?:yes|y|yep|yeah|yup|correct|exactly|right|sure|ja|jawohl|genau|richtig|oui|exactement|c'est [çc]a|"
    r"s[ií]|claro|exacto|correcto|ok(?:ay)?|do it|go ahead)"
    r"(?:[\s,.!]+(?:please|pls|bitte|merci|gracias|por favor|thanks|thank you|danke|do it|go ahead|that's it|"
    r"that is what i meant))*", re.IGNORECASE)


def is_yes(text: str) -> bool:
    """The whole reply is an affirmative ("Yes", "Ja, bitte", "Oui merci", "Sí")."""
    words = normalise(" ".join(text.split())).rstrip(" .!?👍").strip()
    return bool(words) and _YES.fullmatch(words) is not None


def pending_question(ctx: CommandContext, task: Task, mail: InboundMail) -> Command | None:
    """The command a still-open question to the sender of ``mail`` about ``task`` would run, if
    ``mail`` answers it: a reply in the question's thread (or, from a mail program that drops the
    thread headers, one whose subject still says "Did you mean")."""
    found = queries.open_question(ctx.session, task.id or 0, mail.sender, ctx.now - timedelta(days=QUESTION_DAYS))
    if found is None:
        return None
    thread = (mail.in_reply_to or "", *mail.references)
    if not queries.question_in_thread(ctx.session, thread, task.id or 0, mail.sender) \
            and "did you mean" not in mail.subject.lower():
        return None
    name, _, argument = found.partition(":")
    return Command(name.strip(), argument.strip(), task.id, found)


def answer_question(ctx: CommandContext, task: Task, command: Command) -> None:
    ctx.event(task, "question_answered", command.line)


def ask_back(ctx: CommandContext, mail: InboundMail, task: Task, command: Command, meaning: str) -> None:
    """Record the question and send its one line to the sender ("Did you mean `start`? Reply `yes`.")."""
    spelled = command.name + (f": {command.argument}" if command.argument else "")
    queries.add_event(ctx.session, task, ctx.now, mail.sender, "question", spelled, ctx.message_id)
    log.info("reply.question", task_id=task.id, message_id=mail.message_id, command=command.name)
    ctx.notices.append(question_reply(mail, task, command.name, meaning, ctx.notices_ctx))


def keep_note(ctx: CommandContext, task: Task, author: str, role: str, text: str, understood: str = "",
              verdict: Verdict | None = None, forward: bool = True) -> None:
    """Store what the sender wrote and pass it on: a client's words to whoever works on the task,
    a staff member's note to the assignee when it is someone else. ``understood``: what dispatchd
    made of the reply, shown with the words. ``verdict`` (``domain/trust``): words without
    evidence of their author are kept marked unverified, a stranger's not at all."""
    if not text.strip() or (verdict is not None and not verdict.stored):
        return
    unverified = verdict.reason if verdict is not None and not verdict.verified else None
    if unverified is None:
        ctx.event(task, "comment", text)
    else:
        ctx.event(task, "unverified_comment", f"UNVERIFIED ({unverified}):\n{text}")
    if text == EMPTY_REPLY or not forward:
        return  # kept for the record; nobody needs an email saying nothing
    if role == "client" or (role in ("producer", "lead", "manager") and task.assignee and task.assignee != author):
        ctx.notices.extend(comment_notices(task, author, text, ctx.notices_ctx, unverified, understood))
