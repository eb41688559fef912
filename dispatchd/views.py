"""Tasks, messages and outbox rows as plain dicts (for --json) and as text tables."""

from __future__ import annotations

import sys
from typing import Any

from dispatchd.clock import as_utc
from dispatchd.store.tables import InboundMessage, Outbox, Task, TaskEvent


def iso(moment: Any) -> str | None:
    moment = as_utc(moment)
    return moment.isoformat() if moment else None


def task_dict(task: Task) -> dict[str, Any]:
    return {
        "id": task.id, "client": task.client, "claimed_client": task.claimed_client, "type": task.type,
        "queue": task.queue,
        "priority": task.priority, "status": task.status, "description": task.description,
        "subject": task.subject, "sender": task.sender, "assignee": task.assignee,
        "sla": task.sla, "due_at": iso(task.due_at), "due_explanation": task.due_explanation,
        "message_id": task.message_id, "tags": task.tags.split() if task.tags else [],
        "created_at": iso(task.created_at), "updated_at": iso(task.updated_at),
    }


def event_dict(event: TaskEvent) -> dict[str, Any]:
    return {"at": iso(event.at), "actor": event.actor, "kind": event.kind, "from_status": event.from_status,
            "to_status": event.to_status, "message_id": event.message_id, "detail": event.detail}


def inbound_dict(row: InboundMessage) -> dict[str, Any]:
    return {"id": row.id, "direction": "in", "message_id": row.message_id, "sender": row.sender,
            "subject": row.subject, "at": iso(row.received_at), "disposition": row.disposition,
            "reason": row.reason, "task_id": row.task_id, "folder": row.folder, "uid": row.uid,
            "raw_sha256": row.raw_sha256, "size": row.size}


def outbox_dict(row: Outbox) -> dict[str, Any]:
    return {"id": row.id, "direction": "out", "message_id": row.message_id, "task_id": row.task_id,
            "kind": row.kind, "to": row.recipients.split(","), "subject": row.subject,
            "status": row.status, "attempts": row.attempts, "next_attempt_at": iso(row.next_attempt_at),
            "sent_at": iso(row.sent_at), "last_error": row.last_error, "created_at": iso(row.created_at)}


def table(rows: list[dict[str, Any]], columns: list[str], out: Any = None) -> None:
    """Print ``rows`` as an aligned table; bold header on a terminal."""
    out = out or sys.stdout
    if not rows:
        out.write("(none)\n")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [min(60, max(len(c), *(len(r[i]) for r in cells))) for i, c in enumerate(columns)]
    tty = getattr(out, "isatty", lambda: False)()
    bold, reset = ("\033[1m", "\033[0m") if tty else ("", "")
    out.write(bold + "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip() + reset + "\n")
    for row in cells:
        padded = [v[:w].ljust(w) for v, w in zip(row, widths)]
        if tty:
            padded = [_COLOURS[v.strip()] + p + reset if v.strip() in _COLOURS else p for v, p in zip(row, padded)]
        out.write("  ".join(padded).rstrip() + "\n")


# Words that mean something at a glance: health, delivery and SLA states.
_COLOURS = {"green": "\033[32m", "yellow": "\033[33m", "red": "\033[31m", "parked": "\033[31m",
            "bounced": "\033[31m", "quarantined": "\033[31m", "P0": "\033[1;31m", "P1": "\033[33m",
            "sent": "\033[32m", "pending": "\033[33m"}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return " ".join(str(value).split())
