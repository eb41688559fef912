"""Which emails a new task causes, and to whom. Rendering happens in ``render``."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from dispatchd.config import Config
from dispatchd.domain.models import InboundMail, Request, RouteDecision
from dispatchd.domain.routing import Rulebook
from dispatchd.mail.compose import OutboundMail
from dispatchd.render import Renderer
from dispatchd.store.tables import Task

PRIORITY_LABELS = {"P0": "emergency", "P1": "high", "P2": "normal", "P3": "low"}


@dataclass(frozen=True)
class NoticeContext:
    config: Config
    rulebook: Rulebook
    renderer: Renderer


def new_task_notices(task: Task, mail: InboundMail, request: Request, decision: RouteDecision,
                     attachments: list[str], ctx: NoticeContext) -> list[OutboundMail]:
    """The client's confirmation (or format help) and the staff's 'new task' mails."""
    config = ctx.config
    values = _template_values(task, mail, request, decision, attachments, ctx)
    thread = dict(in_reply_to=mail.message_id, references=(*mail.references, mail.message_id))
    notices: list[OutboundMail] = []
    if decision.triage:
        unknown_sender = any(p.startswith("sender:") for p in request.problems)
        allowed = config.intake.reply_to_unknown_senders if unknown_sender else config.intake.reply_to_malformed
        if allowed and mail.sender:
            notices.append(_mail("client-format-help", (mail.sender,), task, values, ctx,
                                 auto_submitted="auto-replied", **thread))
    elif decision.notify_client and mail.sender:
        notices.append(_mail("client-received", (mail.sender,), task, values, ctx,
                             auto_submitted="auto-replied", **thread))
    for address in staff_recipients(task, decision, config):
        notices.append(_mail("staff-new-task", (address,), task, values, ctx))
    return notices


def staff_recipients(task: Task, decision: RouteDecision, config: Config) -> list[str]:
    """Queue owners, the assignee and whoever the rules named; never our own address."""
    addresses = [s.email for s in config.queue_owners(task.queue)]
    if task.assignee:
        addresses.append(task.assignee)
    for who in decision.notify:
        person = config.staff_by_name(who)
        addresses.append(person.email if person else who.lower())
    ours = {config.mailbox.address}
    return [a for a in dict.fromkeys(addresses) if a and a not in ours]


def due_label(task: Task, zone: ZoneInfo) -> str:
    if task.due_at is None:
        return "to be confirmed"
    local = task.due_at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} ({zone.key})"


def _template_values(task: Task, mail: InboundMail, request: Request, decision: RouteDecision,
                     attachments: list[str], ctx: NoticeContext) -> dict[str, Any]:
    config = ctx.config
    zone = ZoneInfo(config.calendar.timezone)
    client = request.client or next((c.name for c in config.clients if c.owns_sender(mail.sender)), None)
    type_names = [t.name for t in ctx.rulebook.types]
    example = f"[{client or (config.clients[0].name if config.clients else 'Acme')}] - " \
              f"{type_names[0] if type_names else 'Content'} - {request.description[:60]}"
    return {
        "task": task,
        "sender_name": mail.sender_name,
        "organisation": _organisation(config.smtp.from_address),
        "intake_address": config.mailbox.address,
        "due_label": due_label(task, zone),
        "priority_label": PRIORITY_LABELS.get(task.priority, task.priority),
        "attachments": attachments,
        "reasons": list(decision.reasons),
        "problems": list(request.problems),
        "types": type_names,
        "example_subject": example,
        "original_subject": mail.subject,
        "body": request.body,
        "triage_queue": ctx.rulebook.triage_queue,
    }


def _mail(template: str, to: tuple[str, ...], task: Task, values: dict[str, Any], ctx: NoticeContext,
          **headers: Any) -> OutboundMail:
    rendered = ctx.renderer.render(template, **values)
    return OutboundMail(kind=template, to=to, subject=rendered.subject, text=rendered.text,
                        html=rendered.html, task_id=task.id, **headers)


def _organisation(from_address: str) -> str:
    name, address = parseaddr(from_address)
    return name or address
