"""An event as a chat message: Slack Block Kit and a Microsoft Teams Adaptive Card.

Both show the same things (the task's title, what happened, status, due date, priority, and a
button to the task's web page when there is one) within the platforms' documented limits
(Slack: header 150 characters, section text 3,000, ten fields of 2,000; Teams: Adaptive Card
1.4, which Workflows webhooks render). Pure: the event comes in as the stored JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ADAPTIVE_CARD_VERSION = "1.4"


def headline(event: Mapping[str, Any]) -> str:
    """One sentence: what happened to which task."""
    task, data = event.get("task") or {}, event.get("data") or {}
    number = f"#{task.get('id')}" if task.get("id") is not None else ""
    kind = event.get("type", "")
    sentences = {
        "task.created": f"New request {number}",
        "task.routed": f"Request {number} routed to {task.get('queue')}",
        "triage.needed": f"Request {number} needs a person to route it",
        "task.assigned": f"Request {number} assigned to {data.get('assignee') or 'nobody'}",
        "task.status_changed": f"Request {number} moved from {status_label(data.get('from'))} "
                               f"to {status_label(data.get('to'))}",
        "task.delivered": f"Request {number} delivered",
        "task.closed": f"Request {number} {'cancelled' if data.get('outcome') == 'cancelled' else 'closed'}",
        "task.commented": f"{'Internal note' if data.get('visibility') == 'internal' else 'Message'} on {number}",
        "sla.warning": f"Request {number} is running late ({data.get('clock')}, {data.get('used') or 'near'})",
        "sla.breached": f"Request {number} is overdue ({data.get('clock')})",
        "test": "Test event from dispatchd",
    }
    return " ".join(sentences.get(kind, f"{kind} {number}").split())


def status_label(status: object) -> str:
    return str(status or "-").replace("_", " ").capitalize()


def facts(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (name, value) pairs both cards show."""
    task = event.get("task") or {}
    pairs = [("Status", status_label(task.get("status"))), ("Priority", str(task.get("priority") or "-")),
             ("Due", _day_and_time(task.get("due_at"))), ("Queue", str(task.get("queue") or "-"))]
    if task.get("client"):
        pairs.append(("Client", str(task["client"])))
    return pairs


def detail_text(event: Mapping[str, Any]) -> str:
    """The words that came with the event: a comment's text, a routing reason, who moved it."""
    data = event.get("data") or {}
    for key in ("text", "reason"):
        if data.get(key):
            return str(data[key])
    return f"by {data['by']}" if data.get("by") else ""


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (notifications, screen readers) and ``blocks``."""
    task = event.get("task") or {}
    title = _clip(str(task.get("subject") or task.get("description") or headline(event)), 150)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(headline(event)), 3000)},
         "fields": [{"type": "mrkdwn", "text": _clip(f"*{name}*\n{_mrkdwn(value)}", 2000)}
                    for name, value in facts(event)][:10]},
    ]
    words = detail_text(event)
    if words:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(words), 3000)}})
    link = (event.get("links") or {}).get("task")
    if link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open request"}, "url": link[:3000]}]})
    return {"text": _clip(_mrkdwn(f"{headline(event)}: {title}"), 3000), "blocks": blocks}


def teams_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Teams Workflows webhook body: a message with one Adaptive Card attached."""
    task = event.get("task") or {}
    title = str(task.get("subject") or task.get("description") or headline(event))
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": headline(event), "wrap": True, "spacing": "Small"},
        {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts(event)]},
    ]
    words = detail_text(event)
    if words:
        body.append({"type": "TextBlock", "text": words, "wrap": True, "isSubtle": True})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard", "version": ADAPTIVE_CARD_VERSION, "body": body}
    link = (event.get("links") or {}).get("task")
    if link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open request", "url": link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def _mrkdwn(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions): escaped, a client's words stay words."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _day_and_time(iso: object) -> str:
    """'2026-12-03T16:00:00Z' -> '2026-12-03 16:00 UTC' (chat readers are not parsers)."""
    if not iso:
        return "-"
    text = str(iso)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 else text
