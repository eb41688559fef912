"""A client's reply to their task, read for what they mean.

Clients write plain words (``domain/intents``) or the few commands their emails mention
(``confirm``, ``revise: …``, ``status``). What each means depends on where the work is:

- approval of a delivered task closes it (and the client is told so);
- approval or a revision while the work is in progress is feedback for the producer;
- a revision of a delivered task sends it back to the producer;
- a cancellation is a request to the queue's lead, who confirms it by replying ``cancel``.

Whatever the client wrote is kept on the task and passed on; a refusal never names staff
commands, and a reply that probably means something but not certainly is asked back.
"""

from __future__ import annotations

import structlog
from sqlmodel import Session

from dispatchd.domain.commands import Command, ParsedReply
from dispatchd.domain.intents import read_intent
from dispatchd.domain.models import InboundMail, Status
from dispatchd.domain.permissions import Actor
from dispatchd.domain.trust import Verdict
from dispatchd.flows.calls import answer_about_call
from dispatchd.flows.commands import COMMANDS, CommandContext, Result
from dispatchd.flows.labels import STATUS_LABELS
from dispatchd.flows.notices import cancel_request_notices, refused_reply, results_reply
from dispatchd.flows.reply_notes import EMPTY_REPLY, answer_question, ask_back, is_yes, keep_note, pending_question
from dispatchd.store import queries
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.replies")

# What a client's words mean, by name: staff commands are not among them.
CLIENT_MEANINGS = {"approve": "confirm", "confirm": "confirm", "revise": "revise", "cancel": "cancel",
                   "status": "status", "note": "note", "follow": "follow", "unfollow": "unfollow",
                   "reply": "note"}  # a client's "Reply: …" is their words for the team
_QUESTION_MEANINGS = {"confirm": "accept the delivery and close the request",
                      "revise": "send it back to the team with your changes",
                      "cancel": "ask the team to cancel the request"}


def handle_client_reply(session: Session, mail: InboundMail, task: Task, actor: Actor, text: str,
                        parsed: ParsedReply, ctx: CommandContext, verified: bool, verdict: Verdict) -> str:
    """A reply from a contact of the task's client. Returns a short outcome for the log.
    ``verified``: commands may change the task; ``verdict``: how the words are kept."""
    ctx.actor = actor
    if verified:
        about_call = answer_about_call(session, mail, task, text, parsed, ctx.notices_ctx, ctx.notices, ctx.now)
        if about_call is not None:
            return about_call
    commands = [c for c in parsed.commands]
    note = parsed.note
    pending = pending_question(ctx, task, mail) if is_yes(text) else None
    if pending is not None:
        answer_question(ctx, task, pending)
        commands, note = [pending], ""
    elif not commands and not parsed.problems:
        intent = read_intent(text)
        if intent is not None and intent.certain:
            # The words travel with the command (the status event, the team's notice).
            commands, note = [Command(intent.kind, text, task.id, text)], ""
        elif intent is not None or parsed.questions:
            meant = CLIENT_MEANINGS.get(intent.kind if intent else parsed.questions[0].name)
            # Before delivery an approval or a change is feedback whatever the answer would be:
            # asking "did you mean: accept the delivery?" about work not delivered makes no sense.
            if meant in _QUESTION_MEANINGS and (meant == "cancel" or task.status == Status.DELIVERED):
                argument = text if meant == "revise" else ""
                keep_note(ctx, task, mail.sender, "client", text, f"probably '{meant}'; asked the client", verdict)
                ask_back(ctx, mail, task, Command(meant, argument, task.id, text), _QUESTION_MEANINGS[meant])
                return f"question on task {task.id}: {meant}?"
    if not commands and not parsed.problems:
        if not verdict.stored:
            return f"not stored on task {task.id}: {verdict.reason}"
        keep_note(ctx, task, mail.sender, "client", note or EMPTY_REPLY, verdict=verdict)
        return f"{'comment' if verdict.verified else 'unverified comment'} on task {task.id}"
    needs_trust = any(CLIENT_MEANINGS.get(c.name) in ("confirm", "revise") and task.status == Status.DELIVERED
                      or c.name in ("follow", "unfollow") for c in commands)  # who hears of the task
    if needs_trust and not verified:
        keep_note(ctx, task, mail.sender, "client", text, "a reply we could not verify; nothing was changed", verdict)
        log.warning("command.unauthorised", message_id=mail.message_id, sender=mail.sender, task_id=task.id,
                    reason="sender not verified")
        queries.add_event(session, task, ctx.now, mail.sender, "refused", "sender not verified", mail.message_id)
        ctx.notices.append(refused_reply(mail, ctx.notices_ctx))
        return "refused: sender not verified"
    results: list[tuple[str, bool, str]] = [(p, False, "not understood") for p in parsed.problems]
    understood: list[str] = []
    headlines: list[str] = []
    passed_on = False
    for command in commands:
        result, forwarded = _one(ctx, task, command, note or text, verdict)
        log.info("command.applied" if result.ok else "command.refused", task_id=task.id, message_id=mail.message_id,
                 command=command.name, actor=actor.email, reason=result.text)
        results.append((command.line.split("\n")[0][:200], result.ok, result.text))
        understood.append(result.text)
        headlines.append(result.headline)
        passed_on = passed_on or forwarded
    ctx.announce_changes()  # each command stands alone: a client's feedback is never rolled back
    kept = bool(note) or passed_on
    if note and not passed_on:
        keep_note(ctx, task, mail.sender, "client", note, "; ".join(understood), verdict)
    ok = all(ok for _, ok, _ in results)
    ctx.notices.append(results_reply(mail, task, results, ok, ctx.notices_ctx, extra={"kept": kept},
                                     headlines=headlines if ok else []))
    return f"client reply on task {task.id}: {'; '.join(understood)}"


def _one(ctx: CommandContext, task: Task, command: Command, words: str, verdict: Verdict) -> tuple[Result, bool]:
    """What one of the client's commands did, and whether their words were passed on with it."""
    meant = CLIENT_MEANINGS.get(command.name)
    status = Status(task.status)
    label = STATUS_LABELS.get(task.status, task.status)
    if meant is None:
        return Result(False, f"a client may not {command.name}; reply in your own words and the team will read it"), False
    if meant in ("status", "note", "follow", "unfollow"):
        return COMMANDS[meant](ctx, task, command), False
    if status in (Status.CLOSED, Status.CANCELLED):
        text = f"request #{task.id} is already {label}; your message was passed to the team"
        keep_note(ctx, task, ctx.actor.email, "client", words, f"a {meant} of a {label} request", verdict)
        return Result(True, text, "Passed to the team"), True
    if meant == "cancel" and not verdict.verified:
        # A forged "please cancel" must not reach the lead as the client's request.
        keep_note(ctx, task, ctx.actor.email, "client", words, "asks to cancel the request", verdict)
        return Result(True, "your message was passed to the team", "Passed to the team"), True
    if meant == "cancel":
        reason = command.argument or words
        ctx.event(task, "cancel_requested", reason)
        ctx.notices.extend(cancel_request_notices(task, ctx.actor.email, reason, ctx.notices_ctx))
        return Result(True, f"we asked the team to cancel request #{task.id}; you will hear when they confirm",
                      "Cancellation requested"), True
    if status == Status.DELIVERED:
        result = COMMANDS[meant](ctx, task, Command(meant, command.argument, task.id, command.line))
        if result.ok and meant == "confirm":
            return Result(True, f"thank you: request #{task.id} is accepted and now closed", result.headline), False
        if result.ok:
            return Result(True, f"revision requested: request #{task.id} went back to the team", result.headline), False
        return result, False
    # Work in progress: the client's approval or changes are feedback for whoever does the work.
    what = "approval" if meant == "confirm" else "changes"
    text = f"your {what} went to the team as feedback; request #{task.id} is {label}"
    keep_note(ctx, task, ctx.actor.email, "client", command.argument or words,
              f"the client's {what} while the request is {label} (feedback, nothing changed)", verdict)
    return Result(True, text, "Feedback passed to the team"), True
