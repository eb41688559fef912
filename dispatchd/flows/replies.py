"""fetch → parse → match → command → transition → notify, for mail about existing tasks.

Matching is layered and each step is logged: the Message-IDs in In-Reply-To/References,
then the signed reply address, then the [#id] tag in the subject; any one is enough.
Commands run only for a verified sender (a valid signed reply address for that sender,
or a pass from the trusted Authentication-Results) who is allowed to run them; all of a
message's commands apply together or not at all, and the sender gets one reply. A comment
counts as the sender's only with evidence (``domain/trust.py``); without it, it is kept as
an unverified comment and staff are warned; a stranger's words are not kept on the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlmodel import Session

from dispatchd.config import Config
from dispatchd.domain.authres import sender_authenticated
from dispatchd.domain.commands import Command, ParsedReply, parse_reply, subject_command_text, with_message_folded
from dispatchd.domain.intake import Directory
from dispatchd.domain.models import InboundMail
from dispatchd.domain.permissions import Actor, TaskScope, refusal
from dispatchd.domain.replytext import latest_reply
from dispatchd.domain.routing import Rulebook
from dispatchd.domain.sla import BusinessCalendar
from dispatchd.domain.subject import task_reference
from dispatchd.domain.tokens import find_token, verify
from dispatchd.domain.trust import Evidence, Verdict, judge, party_of
from dispatchd.flows.assignment import next_task, wip_refusal
from dispatchd.flows.commands import COMMANDS, CommandContext, Result
from dispatchd.flows.client_replies import handle_client_reply
from dispatchd.flows.notices import NoticeContext, refused_reply, results_reply
from dispatchd.flows.recipients import may_answer
from dispatchd.flows.reply_notes import EMPTY_REPLY, answer_question, ask_back, is_yes, keep_note, pending_question
from dispatchd.store import queries
from dispatchd.store.tables import StaffAway, Task

log = structlog.get_logger("dispatchd.replies")


@dataclass(frozen=True)
class Match:
    task: Task
    method: str


def match_task(session: Session, mail: InboundMail, intakes: frozenset[str]) -> Match | None:
    """The task this mail is about, trying each layer in turn."""
    token = find_token(mail.recipients, intakes)
    layers = (
        ("thread", lambda: queries.task_of_thread(session, (mail.in_reply_to or "", *mail.references))),
        ("reply-address", lambda: token.task_id if token else None),
        ("subject-tag", lambda: task_reference(mail.subject)),
    )
    tried = []
    for method, lookup in layers:
        task_id = lookup()
        task = session.get(Task, task_id) if task_id is not None else None
        if task is not None:
            log.info("reply.matched", task_id=task.id, message_id=mail.message_id, method=method, missed=tried)
            return Match(task, method)
        tried.append(method if task_id is None else f"{method} (no task {task_id})")
    return None


def identify(sender: str, task: Task | None, config: Config) -> Actor | None:
    """Staff by address; otherwise a client of this task's client; otherwise nobody."""
    person = config.staff_by_email(sender)
    if person is not None:
        return Actor(person.email, person.role, person.queues)
    if task is not None and task.client:
        clients = Directory(config.clients, config.staff).clients_of_sender(sender)
        if any(c.name == task.client for c in clients):
            return Actor(sender, "client", client=task.client)
    return None


def is_verified(mail: InboundMail, task_id: int | None, config: Config, secret: bytes) -> bool:
    token = find_token(mail.recipients, config.intake_addresses)
    if token is not None and (task_id is None or token.task_id == task_id) and verify(token, mail.sender, secret):
        return True
    return sender_authenticated(mail.sender, mail.headers.get("authentication-results", ()),
                                config.security.trusted_authserv_id)


def handle_reply(session: Session, mail: InboundMail, match: Match, ctx: CommandContext) -> str:
    """A reply to a known task: comment and/or commands. Returns a short outcome for the log.

    Nothing the sender wrote is lost: whatever is not an understood command is kept on the task
    (as trust allows, see ``reply_notes.keep_note``) and passed on, also when the commands are
    refused."""
    task = match.task
    text = latest_reply(mail.text)
    actor = identify(mail.sender, task, ctx.config)
    parsed = read_reply(mail, text, ctx.config, ctx.notices_ctx.rulebook)
    verdict = reply_verdict(session, mail, task, ctx.config, ctx.notices_ctx.secret)
    log.info("reply.judged", task_id=task.id, message_id=mail.message_id, party=verdict.party.value,
             verified=verdict.verified, reason=verdict.reason)
    verified = actor is not None and is_verified(mail, task.id, ctx.config, ctx.notices_ctx.secret)
    if actor is not None and actor.role == "client":
        return handle_client_reply(session, mail, task, actor, text, parsed, ctx, verified, verdict)
    ctx.actor = actor or Actor(mail.sender or "unknown", verdict.party.value)
    pending = pending_question(ctx, task, mail) if verified and is_yes(text) else None
    if pending is not None:
        answer_question(ctx, task, pending)
        parsed = ParsedReply((pending,), "")
    if not parsed.commands and not parsed.problems:
        if parsed.questions and verified:
            # The question is the follow-up: the team hears once it is answered.
            keep_note(ctx, task, mail.sender, ctx.actor.role, parsed.note, verdict=verdict, forward=False)
            ask_back(ctx, mail, task, parsed.questions[0], "")
            return f"question on task {task.id}: {parsed.questions[0].name}?"
        return _comment(task, mail, parsed.note or EMPTY_REPLY, verdict, ctx)
    if actor is None or not verified:
        keep_note(ctx, task, mail.sender, ctx.actor.role, parsed.note, verdict=verdict)
        return _refuse(mail, ctx, task, "unknown sender" if actor is None else "sender not verified")
    commands = tuple(Command(c.name, c.argument, task.id, c.line) for c in parsed.commands)
    return _run(session, mail, ParsedReply(commands, parsed.note, parsed.problems), ctx, task, verdict)


def read_reply(mail: InboundMail, text: str, config: Config, rulebook: Rulebook) -> ParsedReply:
    """The commands of a reply: in its text, else in its subject. A subject speaks when the body
    is empty (an iPhone reply whose subject was replaced by "start") or when it puts words
    before the reply marker ("APPROVED - RE: [#12] …"); those words must be commands alone."""
    names = known_names(config, rulebook)
    # "reply: Hi Bob," and the lines below it are one message for the client (``with_message_folded``).
    parsed = with_message_folded(parse_reply(text, names=names))
    in_subject, before_marker = subject_command_text(mail.subject)
    if in_subject and (not text or before_marker):
        from_subject = parse_reply(in_subject, names=names)
        if from_subject.commands and not from_subject.note and not from_subject.problems:
            return ParsedReply(from_subject.commands + parsed.commands, parsed.note if parsed.commands else text,
                               parsed.problems)
        if not text and from_subject.questions:
            return from_subject
    return parsed


def known_names(config: Config, rulebook: Rulebook) -> frozenset[str]:
    """Staff, clients, request types and queues, lower case: what a command's argument may name."""
    names = {s.name for s in config.staff} | {s.email for s in config.staff}
    names |= {c.name for c in config.clients} | {a for c in config.clients for a in c.aliases}
    names |= {t.name for t in rulebook.types} | set(rulebook.queues) | {q for s in config.staff for q in s.queues}
    return frozenset(n.lower() for n in names)


def reply_verdict(session: Session, mail: InboundMail, task: Task, config: Config, secret: bytes) -> Verdict:
    """Whether ``mail``'s words count as its sender's on ``task`` (see ``domain/trust``)."""
    token = find_token(mail.recipients, config.intake_addresses)
    evidence = Evidence(
        signed_reply_address=token is not None and token.task_id == task.id and verify(token, mail.sender, secret),
        our_thread=queries.sent_in_thread_to(session, (mail.in_reply_to or "", *mail.references), mail.sender),
        authenticated=sender_authenticated(mail.sender, mail.headers.get("authentication-results", ()),
                                           config.security.trusted_authserv_id))
    party = party_of(mail.sender, is_staff=config.staff_by_email(mail.sender) is not None, task_client=task.client,
                     sender_clients=tuple(c.name for c in Directory(config.clients, config.staff)
                                          .clients_of_sender(mail.sender)),
                     task_sender=task.sender)
    return judge(party, evidence)


def _comment(task: Task, mail: InboundMail, text: str, verdict: Verdict, ctx: CommandContext) -> str:
    if not verdict.stored:
        return f"not stored on task {task.id}: {verdict.reason}"
    keep_note(ctx, task, mail.sender, ctx.actor.role, text, verdict=verdict)
    return f"{'comment' if verdict.verified else 'unverified comment'} on task {task.id}"


def handle_staff_email(session: Session, mail: InboundMail, parsed: ParsedReply, ctx: CommandContext) -> str:
    """A fresh email from staff: 'start 42', 'assign 42 ben' or 'next'."""
    actor = identify(mail.sender, None, ctx.config)
    if actor is None or not is_verified(mail, None, ctx.config, ctx.notices_ctx.secret):
        return _refuse(mail, ctx, None, "staff command not verified")
    ctx.actor = actor
    if [c.name for c in parsed.commands] == ["next"]:
        return _next(mail, ctx)
    if [c.name for c in parsed.commands] == ["away"]:
        return _away(mail, parsed.commands[0], ctx)
    return _run(session, mail, parsed, ctx)


def staff_commands(mail: InboundMail, config: Config) -> ParsedReply | None:
    """The commands of a fresh staff email, if that is what it is (and not a new request)."""
    if config.staff_by_email(mail.sender) is None:
        return None
    for text in (mail.subject, latest_reply(mail.text)):
        parsed = parse_reply(text, fresh=True)
        if parsed.commands and all(c.task_id is not None or c.name in ("next", "away") for c in parsed.commands):
            return parsed
    return None


def _run(session: Session, mail: InboundMail, parsed: ParsedReply, ctx: CommandContext,
         replied_to: Task | None = None, verdict: Verdict | None = None) -> str:
    results: list[tuple[str, bool, str]] = [(problem, False, "not understood") for problem in parsed.problems]
    done: list[tuple[Command, Result]] = []
    last_task: Task | None = None
    savepoint = session.begin_nested()
    for command in parsed.commands:
        task = session.get(Task, command.task_id) if command.task_id is not None else None
        result = apply_command(ctx, task, command)
        results.append((command.line, result.ok, result.text))
        done.append((command, result))
        last_task = task or last_task
    applied = all(ok for _, ok, _ in results)
    if applied:
        savepoint.commit()
        ctx.announce_changes()
    else:
        savepoint.rollback()
        ctx.forget_changes()
        if last_task is not None:
            session.refresh(last_task)
    for command, result in done:
        # The log says what happened: a command that worked in a batch that was refused did nothing.
        event = "command.applied" if applied else "command.refused" if not result.ok else "command.rolled_back"
        log.info(event, task_id=command.task_id, message_id=mail.message_id, command=command.name,
                 actor=ctx.actor.email, reason=result.text)
    # The words stay on the task whether or not the commands ran.
    noted = replied_to or last_task
    if parsed.note and noted is not None:
        refused = "; ".join(line for line, ok, _ in results if not ok)
        keep_note(ctx, noted, mail.sender, ctx.actor.role, parsed.note,
                  "" if applied else f"commands that were not applied: {refused}", verdict)
    headlines = [result.headline for _, result in done] if applied else []
    ctx.notices.append(results_reply(mail, last_task or replied_to, results, applied, ctx.notices_ctx,
                                     extra={"kept": bool(parsed.note and noted is not None)}, headlines=headlines))
    return f"{len(parsed.commands)} command(s) {'applied' if applied else 'refused'}"


def apply_command(ctx: CommandContext, task: Task | None, command: Command) -> Result:
    """One staff command on ``task`` by ``ctx.actor``: the permission check, then its handler. The
    one path for email commands and the staff pages' buttons (``flows/staff_actions``)."""
    if task is None:
        return Result(False, f"no task #{command.task_id}")
    why = refusal(ctx.actor, command.name, TaskScope(task.queue, task.assignee, task.client))
    if why is not None:
        return Result(False, why)
    return COMMANDS[command.name](ctx, task, command)


def _next(mail: InboundMail, ctx: CommandContext) -> str:
    full = wip_refusal(ctx.session, ctx.actor.email, ctx.config)
    person = ctx.config.staff_by_email(ctx.actor.email)
    task = None if full else next_task(ctx.session, ctx.actor.queues, ctx.notices_ctx.rulebook.queues, person,
                                       ctx.config)
    if task is None:
        text = full or f"nothing unassigned in {', '.join(ctx.actor.queues) or 'your queues'} that you have the " \
                       "skills, language and region for"
        ctx.notices.append(results_reply(mail, None, [("next", False, text)], False, ctx.notices_ctx))
        return f"next: {text}"
    result = COMMANDS["take"](ctx, task, Command("take", "", task.id, "next"))
    ctx.announce_changes()
    ctx.notices.append(results_reply(mail, task, [("next", result.ok, f"task #{task.id} is yours")], True,
                                     ctx.notices_ctx, headlines=[f"Task #{task.id} is yours"]))
    return f"next: task {task.id}"


def _away(mail: InboundMail, command: Command, ctx: CommandContext) -> str:
    """'away until <date>': the redispatch job hands this person's work on until then."""
    until = datetime.fromisoformat(command.argument)
    if until.tzinfo is None:
        until = until.replace(hour=23, minute=59, tzinfo=ctx.calendar.zone)
    row = ctx.session.get(StaffAway, ctx.actor.email) or StaffAway(email=ctx.actor.email, until=until, set_at=ctx.now)
    row.until, row.set_at = until, ctx.now
    ctx.session.add(row)
    text = f"away until {until:%a %d %b %Y}; your open work will be redispatched"
    ctx.notices.append(results_reply(mail, None, [(command.line, True, text)], True, ctx.notices_ctx,
                                     headlines=[f"Away until {until:%a} {until.day} {until:%b}"]))
    return text


def _refuse(mail: InboundMail, ctx: CommandContext, task: Task | None, reason: str) -> str:
    log.warning("command.unauthorised", message_id=mail.message_id, sender=mail.sender,
                task_id=task.id if task else None, reason=reason)
    if task is not None:
        queries.add_event(ctx.session, task, ctx.now, mail.sender or "unknown", "refused", reason, mail.message_id)
    if may_answer(mail, ctx.config):
        ctx.notices.append(refused_reply(mail, ctx.notices_ctx))
    return f"refused: {reason}"


def command_context(session: Session, notices: NoticeContext, calendar: BusinessCalendar, now: datetime,
                    message_id: str) -> CommandContext:
    return CommandContext(session, notices, calendar, Actor("dispatchd", "system"), now, message_id)
