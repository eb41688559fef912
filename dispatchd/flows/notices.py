"""Which emails a change causes, and to whom. Rendering happens in ``render``.

Every email about a task carries a Reply-To signed for its one recipient (see
``domain/tokens``), so that recipient's reply can be trusted to run commands. Who may receive
them: ``recipients``; the words people read instead of internal values: ``labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dispatchd.clock import Clock
from dispatchd.config import Config
from dispatchd.domain.duewords import due_reasons
from dispatchd.domain.models import InboundMail, MailAttachment, Request, RouteDecision, Status
from dispatchd.domain.routing import Rulebook
from dispatchd.domain.sla import BusinessCalendar
from dispatchd.domain.states import allowed_actions
from dispatchd.domain.tokens import reply_address
from dispatchd.domain.triage import Verdict, suggestion_lines
from dispatchd.flows.labels import (PRIORITY_LABELS, STATUS_LABELS, assignee_label, client_claim, due_label, headline,
                                    queue_label)
from dispatchd.flows.portal import client_link_url
from dispatchd.flows.recipients import client_may_receive, client_recipients, help_strangers, staff_recipients
from dispatchd.mail.compose import OutboundMail
from dispatchd.render import Renderer
from dispatchd.store.tables import Task


@dataclass(frozen=True)
class NoticeContext:
    config: Config
    rulebook: Rulebook
    renderer: Renderer
    secret: bytes
    calendar: BusinessCalendar
    web_secret: bytes = b""  # signs the "All your requests" link in client emails (flows/portal.py)
    clock: Clock | None = None  # when that link is issued; without a clock emails carry no link

    def client_link(self, recipient: str, client: str | None) -> str:
        """The recipient's "All your requests" URL, '' for staff or without [web] base_url."""
        if self.clock is None:
            return ""
        return client_link_url(self.config, self.web_secret, recipient, client, self.clock.now())


def new_task_notices(task: Task, mail: InboundMail, request: Request, decision: RouteDecision,
                     attachments: list[str], ctx: NoticeContext, verdict: Verdict | None = None,
                     followers: list[str] | None = None) -> list[OutboundMail]:
    """The client's confirmation (or format help) and the staff's 'new task' mails; ``verdict``:
    what the triage model made of it (the type it filed, or its suggestions for the reviewer).
    The confirmation names the colleagues who follow the request (cc'd on it); they hear of it
    from its first move."""
    config = ctx.config
    guess = verdict.suggestions[0].type if verdict is not None and verdict.suggestions else None
    values = {**_request_values(task, mail, request, decision, attachments, ctx, guess), "followers": followers or []}
    values["classified_as"] = verdict.route_as.type if verdict and verdict.route_as else None
    values["suggestions"] = suggestion_lines(verdict) if verdict and verdict.route_as is None else []
    thread = dict(in_reply_to=mail.message_id, references=(*mail.references, mail.message_id))
    notices: list[OutboundMail] = []
    if decision.triage and mail.sender:
        unknown_sender = any(p.startswith("sender:") for p in request.problems)
        if not unknown_sender and config.intake.reply_to_malformed:
            notices.append(_mail("client-format-help", mail.sender, task, values, ctx,
                                 auto_submitted="auto-replied", **thread))
        elif unknown_sender and help_strangers(mail, config):
            notices.append(_stranger_help(mail, values, ctx))
    elif decision.notify_client and mail.sender:
        notices.append(_mail("client-received", mail.sender, task, values, ctx,
                             auto_submitted="auto-replied", **thread))
    for address in staff_recipients(task, decision.notify, config):
        notices.append(_mail("staff-new-task", address, task, values, ctx))
    return notices


@dataclass
class TaskChange:
    """What one email's commands did to one task, so that each person hears of it once."""

    task: Task
    source: str  # the status before the first command
    actor: str
    what: list[str] = field(default_factory=list)  # changes besides the status: "assigned to Dev", "type Technical"
    details: list[str] = field(default_factory=list)  # words that came with a move ("revise: the intro")
    newly_assigned: str | None = None
    new_followers: list[str] = field(default_factory=list)  # told once that they follow, with the card
    messages: list[str] = field(default_factory=list)  # what staff wrote to the client (reply:, deliver:)
    files: tuple[MailAttachment, ...] = ()  # sent with that message
    signed_by: str = ""  # the writer's first name, as clients read it
    tell_client: bool = False  # the client hears even of a step the rules keep internal (leaving triage)

    def assigned(self, email: str, text: str) -> None:
        self.newly_assigned = email
        self.what.append(text)


def change_notices(change: TaskChange, ctx: NoticeContext, followers: list[str] | None = None) -> list[OutboundMail]:
    """One email per person for everything ``change`` did: the client (the sender and the task's
    ``followers``) hears of a move unless the rules keep that step internal, the team of a move,
    and a new assignee that it is theirs. A change that moved nothing says so; nobody reads
    "moved from queued to queued"."""
    task = change.task
    moved = task.status != change.source
    parts = ([STATUS_LABELS.get(task.status, task.status)] if moved else []) + change.what
    values = {**task_values(task, ctx), "source_label": STATUS_LABELS.get(change.source, change.source),
              "actor": change.actor, "detail": "\n".join(change.details), "moved": moved, "changes": change.what,
              "headline": headline(parts)}
    thread = dict(in_reply_to=task.message_id, references=(task.message_id,))
    notices = []
    client_told = moved and (change.tell_client or task.status in ctx.rulebook.client_updates)
    written = "\n\n".join(m for m in change.messages if m)
    if client_told or written or change.files:
        # A move the client hears of carries staff's message and files; otherwise they go alone.
        template = "client-status" if client_told else "client-message"
        said = {**values, "message": written, "signed_by": change.signed_by,
                "files": [a.filename for a in change.files]}
        notices.extend(_mail(template, address, task, {**said, "follower": address != task.sender}, ctx,
                             attachments=change.files, auto_submitted="auto-generated" if client_told else "no",
                             **thread)
                       for address in client_recipients(task, ctx.config, followers)
                       if address != change.actor and address not in change.new_followers)
    notices.extend(followed_notice(task, address, change.actor, ctx) for address in change.new_followers
                   if client_may_receive(address, task, ctx.config))
    staff = staff_recipients(task, (), ctx.config) if moved else []
    if change.newly_assigned and change.newly_assigned == task.assignee:
        staff.append(change.newly_assigned)
    for address in dict.fromkeys(staff):
        if address != change.actor:
            notices.append(_mail("staff-status", address, task,
                                 {**values, "now_yours": address == change.newly_assigned}, ctx, **thread))
    return notices


def status_notices(task: Task, source: str, actor: str, detail: str, ctx: NoticeContext,
                   tell_client: bool | None = None) -> list[OutboundMail]:
    """The emails of one move from ``source`` (``tell_client``: even if the rules keep it internal)."""
    change = TaskChange(task, source, actor, details=[detail] if detail else [], tell_client=bool(tell_client))
    return change_notices(change, ctx)


def followed_notice(task: Task, address: str, added_by: str, ctx: NoticeContext) -> OutboundMail:
    """Tell a new follower why they will hear about this request, and how to stop."""
    values = {**task_values(task, ctx), "added_by": added_by}
    return _mail("client-followed", address, task, values, ctx, in_reply_to=task.message_id,
                 references=(task.message_id,))


def capacity_notices(task: Task, reason: str, ctx: NoticeContext, meant_for: str | None = None) -> list[OutboundMail]:
    """Tell the queue's owners that new work is waiting because everyone is full; or, when
    nobody in ``meant_for`` could do it at all and it was sent to triage (``task.queue``), tell
    the triage reviewers why it is there and what to do."""
    values = {**task_values(task, ctx), "reason": reason, "meant_for": meant_for}
    return [_mail("staff-capacity", s.email, task, values, ctx) for s in ctx.config.queue_owners(task.queue)
            if s.email not in ctx.config.intake_addresses]


def sla_notices(task: Task, clock: str, level: str, used: str, extra: tuple[str, ...], ctx: NoticeContext,
                zone: ZoneInfo) -> list[OutboundMail]:
    """Yellow: assignee and queue owners. Red: the managers as well (and whoever escalation named).
    Client late: the client, once, before the due time."""
    values = {**task_values(task, ctx), "clock": clock.replace("_", " "), "level": level, "used": used}
    if level == "client_late":
        if not client_may_receive(task.sender, task, ctx.config):
            return []
        return [_mail("client-sla-late", task.sender, task, values, ctx,
                      in_reply_to=task.message_id, references=(task.message_id,))]
    recipients = staff_recipients(task, extra, ctx.config)
    if level == "breach":
        recipients += [s.email for s in ctx.config.staff if s.role == "manager" and s.email not in recipients]
    return [_mail("staff-sla", address, task, values, ctx) for address in recipients]


def redispatch_notices(task: Task, previous: str, successor: str | None, reason: str,
                       ctx: NoticeContext) -> list[OutboundMail]:
    """The person it was taken from, the person it went to (or the queue owners)."""
    values = {**task_values(task, ctx), "previous": previous, "successor": successor, "reason": reason}
    recipients = [previous] + ([successor] if successor else [s.email for s in ctx.config.queue_owners(task.queue)])
    return [_mail("staff-redispatched", address, task, values, ctx) for address in dict.fromkeys(recipients) if address]


def digest_mail(template: str, to: str, values: dict[str, Any], ctx: NoticeContext) -> OutboundMail:
    """A periodic email. Its Reply-To is signed for the recipient with task 0, so a reply such as
    'take 42' to a staff digest is a verified command."""
    rendered = ctx.renderer.render(template, **values, organisation=_organisation(ctx.config.smtp.from_address),
                                   intake_address=ctx.config.mailbox.address,
                                   due=lambda task: due_label(task, ctx.calendar),
                                   client_view=ctx.config.staff_by_email(to) is None,
                                   portal_url=ctx.client_link(to, values.get("client")))
    return OutboundMail(kind=template, to=(to,), subject=rendered.subject, text=rendered.text, html=rendered.html,
                        reply_to=reply_address(ctx.config.mailbox.address, 0, to, ctx.secret))


def bounce_notices(task: Task, recipient: str, subject: str, explanation: str,
                   ctx: NoticeContext) -> list[OutboundMail]:
    """Tell the queue owners (not the address that bounced) that an email did not arrive."""
    values = {**task_values(task, ctx), "failed_to": recipient, "failed_subject": subject,
              "explanation": explanation}
    owners = [s.email for s in ctx.config.queue_owners(task.queue)]
    return [_mail("staff-bounce", a, task, values, ctx) for a in owners if a != recipient]


def comment_notices(task: Task, author: str, text: str, ctx: NoticeContext,
                    unverified: str | None = None, understood: str = "") -> list[OutboundMail]:
    """A comment, forwarded to whoever is working on the task. ``unverified``: why dispatchd
    could not tell that the author wrote it; the email then says so first. ``understood``: what
    dispatchd made of the reply ("approval while in progress: feedback")."""
    values = {**task_values(task, ctx), "author": author, "comment": text, "unverified": unverified,
              "understood": understood}
    recipients = [task.assignee] if task.assignee else staff_recipients(task, (), ctx.config)
    return [_mail("staff-comment", address, task, values, ctx) for address in recipients if address and address != author]


def results_reply(mail: InboundMail, task: Task | None, results: list[tuple[str, bool, str]], applied: bool,
                  ctx: NoticeContext, extra: dict[str, Any] | None = None,
                  headlines: list[str] | None = None) -> OutboundMail:
    """One reply per command email: what each line did, and the task's card. Its subject says
    what happened ("Revision requested", "Assigned to Ben"), or that nothing did."""
    said = headline(list(dict.fromkeys(h for h in headlines or () if h)))
    values = {**(task_values(task, ctx) if task else {"task": None}), "results": results, "applied": applied,
              "organisation": _organisation(ctx.config.smtp.from_address),
              "headline": said if applied and said else "Done" if applied else "Not applied", **(extra or {})}
    return _mail("reply-results", mail.sender, task, values, ctx, auto_submitted="auto-replied",
                 in_reply_to=mail.message_id, references=(*mail.references, mail.message_id),
                 subject_hint=mail.subject)


def question_reply(mail: InboundMail, task: Task, command: str, meaning: str, ctx: NoticeContext) -> OutboundMail:
    """One line back to the sender: "Did you mean `start`? Reply `yes`." Signed for them."""
    values = {**task_values(task, ctx), "command": command, "meaning": meaning}
    return _mail("reply-question", mail.sender, task, values, ctx, auto_submitted="auto-replied",
                 in_reply_to=mail.message_id, references=(*mail.references, mail.message_id),
                 subject_hint=mail.subject)


def cancel_request_notices(task: Task, client: str, text: str, ctx: NoticeContext) -> list[OutboundMail]:
    """A client asks to cancel: the queue's lead decides (a reply 'cancel' confirms it)."""
    values = {**task_values(task, ctx), "author": client, "comment": text}
    return [_mail("staff-cancel-request", s.email, task, values, ctx) for s in ctx.config.queue_owners(task.queue)
            if s.email not in ctx.config.intake_addresses]


def refused_reply(mail: InboundMail, ctx: NoticeContext) -> OutboundMail:
    """Says no without saying anything about the task: the sender may be a stranger."""
    values = {"organisation": _organisation(ctx.config.smtp.from_address),
              "intake_address": _intake_of(mail, ctx.config), "original_subject": mail.subject}
    return _answer("reply-refused", mail, values, ctx)


def too_large_reply(mail: InboundMail, size_mb: float, limit_mb: float, ctx: NoticeContext) -> OutboundMail:
    values = {"organisation": _organisation(ctx.config.smtp.from_address), "intake_address": _intake_of(mail, ctx.config),
              "original_subject": mail.subject, "size_mb": f"{size_mb:.1f}", "limit_mb": f"{limit_mb:.0f}"}
    return _answer("client-too-large", mail, values, ctx)


def loop_notices(mail: InboundMail, reason: str, ctx: NoticeContext) -> list[OutboundMail]:
    """Tell the managers that the loop breaker stopped answering a sender."""
    values = {"organisation": _organisation(ctx.config.smtp.from_address), "sender": mail.sender,
              "original_subject": mail.subject, "reason": reason}
    return [_mail("owner-loop", s.email, None, values, ctx) for s in ctx.config.staff if s.role == "manager"]


def task_values(task: Task, ctx: NoticeContext) -> dict[str, Any]:
    return {
        "task": task,
        "organisation": _organisation(ctx.config.smtp.from_address),
        "intake_address": ctx.config.mailbox_named(task.mailbox).address,
        "due_label": due_label(task, ctx.calendar),
        # Why the date is what it is, for the team only: clients read just the date.
        "due_reasons": due_reasons(task.due_explanation),
        "priority_label": PRIORITY_LABELS.get(task.priority, task.priority),
        "status_label": STATUS_LABELS.get(task.status, task.status),
        "allowed": allowed_actions(Status(task.status)),
        "triage_queue": ctx.rulebook.triage_queue,
        # What clients read instead of internal names and staff addresses.
        "queue_label": queue_label(task.queue, ctx.config, ctx.rulebook),
        "assignee_label": assignee_label(task.assignee, ctx.config),
    }


def _request_values(task: Task, mail: InboundMail, request: Request, decision: RouteDecision,
                    attachments: list[str], ctx: NoticeContext, guess: str | None = None) -> dict[str, Any]:
    """``guess``: the triage model's best type for an untyped request, for the format example."""
    config = ctx.config
    client = request.client or next((c.name for c in config.clients if c.owns_sender(mail.sender)), None)
    type_names = [t.name for t in ctx.rulebook.types]
    # The type it is, the model's guess, or "Type": an example that files a broken checkout
    # under Content teaches nothing.
    example = f"[{client or (config.clients[0].name if config.clients else 'Acme')}] - " \
              f"{request.type or guess or 'Type'} - {request.description[:60]}"
    return {
        **task_values(task, ctx),
        "sender_name": mail.sender_name,
        "attachments": attachments,
        "reasons": list(decision.reasons),
        "problems": list(request.problems),
        "types": type_names,
        "example_subject": example,
        "original_subject": mail.subject,
        "body": request.body,
        "client_claim": client_claim(request.claimed_client, config),
        "stranger": False,
    }


def _stranger_help(mail: InboundMail, values: dict[str, Any], ctx: NoticeContext) -> OutboundMail:
    """Format help that says nothing of what we hold: no task number (not in the subject, the
    text or a signed Reply-To), no client's name, not what we could not match."""
    example = values["example_subject"].partition("] - ")[2]
    stranger = {**values, "task": None, "stranger": True, "example_subject": f"[Your company] - {example}",
                "problems": ["we do not recognise your address as one of our clients' addresses"]}
    return _answer("client-format-help", mail, stranger, ctx)


def task_mail(template: str, to: str, task: Task, values: dict[str, Any], ctx: NoticeContext,
              **headers: Any) -> OutboundMail:
    """One email about ``task`` to ``to`` from ``template``, with a Reply-To signed for them."""
    return _mail(template, to, task, {**task_values(task, ctx), **values}, ctx, **headers)


def _mail(template: str, to: str, task: Task | None, values: dict[str, Any], ctx: NoticeContext,
          subject_hint: str | None = None, **headers: Any) -> OutboundMail:
    rendered = ctx.renderer.render(template, **values, subject_hint=subject_hint or "",
                                   client_view=ctx.config.staff_by_email(to) is None,
                                   portal_url=ctx.client_link(to, task.client if task is not None else None))
    reply_to = (reply_address(ctx.config.mailbox_named(task.mailbox).address, task.id, to, ctx.secret)
                if task is not None and task.id is not None else None)
    return OutboundMail(kind=template, to=(to,), subject=rendered.subject, text=rendered.text,
                        html=rendered.html, task_id=task.id if task else None, reply_to=reply_to, **headers)


def _answer(template: str, mail: InboundMail, values: dict[str, Any], ctx: NoticeContext) -> OutboundMail:
    """An automatic reply to ``mail`` that concerns no task (so no signed Reply-To)."""
    answer = _mail(template, mail.sender, None, values, ctx, auto_submitted="auto-replied",
                   in_reply_to=mail.message_id, references=(*mail.references, mail.message_id))
    return replace(answer, reply_to=_intake_of(mail, ctx.config))


def _intake_of(mail: InboundMail, config: Config) -> str:
    """The intake address ``mail`` was sent to (plus-tags aside); the first mailbox's if none."""
    for address in mail.recipients:
        local, _, domain = address.lower().partition("@")
        plain = f"{local.partition('+')[0]}@{domain}"
        if plain in config.intake_addresses:
            return plain
    return config.mailbox.address


@lru_cache(maxsize=16)
def _organisation(from_address: str) -> str:
    name, address = parseaddr(from_address)
    return name or address
