"""Integration events: which audit entries become which public events, and what an event says.

An audit entry (``task_event``: kind, actor, detail, from/to status) is turned by ``events_of``
into zero or more ``EventDraft``s; ``envelope`` wraps a draft with its id, time and a snapshot
of the task's public fields. The result is the documented, versioned JSON of
``dispatchd/events.schema.json`` (``dispatchd events schema``). Pure: ids and times come in.

``internal`` marks what only the team may read (routing reasons, staff notes): such an event
never goes to a client's channel (``Audience.CLIENT``), whatever its filters say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

SCHEMA_VERSION = 1

EVENT_TYPES: tuple[str, ...] = (
    "task.created", "task.routed", "task.assigned", "task.status_changed", "task.commented",
    "sla.warning", "sla.breached", "task.delivered", "task.closed", "triage.needed",
)
# What a client's own channel may hear: progress, delivery, and the words staff sent the client.
CLIENT_EVENTS = frozenset({"task.created", "task.status_changed", "task.delivered", "task.closed",
                           "task.commented"})
TEST_EVENT = "test"  # `dispatchd integrations test NAME`: not a task's event, never stored


class Audience(str, Enum):
    TEAM = "team"      # the agency's own tools and channels: every event
    CLIENT = "client"  # a client's channel: CLIENT_EVENTS, never an internal one


@dataclass(frozen=True)
class EventDraft:
    type: str
    data: Mapping[str, Any] = field(default_factory=dict)
    internal: bool = False


@dataclass(frozen=True)
class AuditEntry:
    """What ``queries.add_event`` records, as the event mapping reads it."""

    kind: str
    actor: str
    detail: str = ""
    from_status: str | None = None
    to_status: str | None = None


def events_of(entry: AuditEntry, assignee: str | None) -> tuple[EventDraft, ...]:
    """The public events an audit entry stands for (most entries stand for none)."""
    mapper = _MAPPERS.get(entry.kind)
    return mapper(entry, assignee) if mapper else ()


def _created(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    return (EventDraft("task.created", {"by": entry.actor}),)


def _routed(entry: AuditEntry, assignee: str | None) -> tuple[EventDraft, ...]:
    reason = entry.detail
    drafts = [EventDraft("task.routed", {"reason": reason}, internal=True)]
    if assignee:
        drafts.append(EventDraft("task.assigned", {"assignee": assignee, "previous": None, "by": entry.actor,
                                                   "reason": reason}, internal=True))
    return tuple(drafts)


def _triaged(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    return (EventDraft("triage.needed", {"reason": entry.detail}, internal=True),)


def _rerouted(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    return (EventDraft("task.routed", {"reason": entry.detail, "by": entry.actor}, internal=True),)


def _assigned(entry: AuditEntry, assignee: str | None) -> tuple[EventDraft, ...]:
    # detail: "<previous or 'nobody'> -> <email>" (commands) or a redispatch's reasons
    previous, arrow, _ = entry.detail.partition(" -> ")
    return (EventDraft("task.assigned", {
        "assignee": assignee, "previous": None if not arrow or previous == "nobody" else previous,
        "by": entry.actor, "reason": "" if arrow else entry.detail}, internal=True),)


def _status(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    if entry.from_status == entry.to_status or entry.to_status is None:
        return ()
    moved = {"from": entry.from_status, "to": entry.to_status, "by": entry.actor}
    drafts = [EventDraft("task.status_changed", moved)]
    if entry.to_status == "delivered":
        drafts.append(EventDraft("task.delivered", {"by": entry.actor}))
    if entry.to_status in ("closed", "cancelled"):
        drafts.append(EventDraft("task.closed", {"by": entry.actor, "outcome": entry.to_status}))
    return tuple(drafts)


def _redispatched(entry: AuditEntry, assignee: str | None) -> tuple[EventDraft, ...]:
    drafts = list(_status(entry, assignee))
    drafts.append(EventDraft("task.assigned", {"assignee": assignee, "previous": None, "by": entry.actor,
                                               "reason": entry.detail}, internal=True))
    return tuple(drafts)


def _note(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    return (EventDraft("task.commented", {"by": entry.actor, "text": entry.detail, "visibility": "internal"},
                       internal=True),)


def _to_client(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    return (EventDraft("task.commented", {"by": entry.actor, "text": entry.detail, "visibility": "client"}),)


def _sla(entry: AuditEntry, _assignee: str | None) -> tuple[EventDraft, ...]:
    # detail: "<clock> <level> [<used>]", e.g. "resolution breach 104%"
    clock, level, used = (entry.detail.split() + ["", "", ""])[:3]
    kind = "sla.breached" if level == "breach" else "sla.warning"
    return (EventDraft(kind, {"clock": clock, "level": level, "used": used or None}, internal=True),)


_MAPPERS = {
    "received": _created, "routed": _routed, "triaged": _triaged,
    "rerouted": _rerouted, "assigned": _assigned, "status": _status, "redispatched": _redispatched,
    "comment": _note, "unverified_comment": _note, "to_client": _to_client, "sla": _sla,
}

PUBLIC_TASK_FIELDS = ("id", "subject", "description", "client", "type", "queue", "priority", "status",
                      "assignee", "due_at", "created_at", "updated_at")


def task_snapshot(task: Any) -> dict[str, Any]:
    """The task's public fields as the event carries them (times in ISO 8601 UTC)."""
    snapshot = {name: _json_value(getattr(task, name)) for name in PUBLIC_TASK_FIELDS}
    snapshot["requester"] = {"email": task.sender, "name": task.sender_name or None}
    return snapshot


def envelope(event_id: str, draft: EventDraft, at: datetime, task: Mapping[str, Any]) -> dict[str, Any]:
    """The event as stored and sent (links are added when it is sent: they depend on config)."""
    return {"id": event_id, "type": draft.type, "schema_version": SCHEMA_VERSION, "occurred_at": iso(at),
            "internal": draft.internal, "task": dict(task), "data": dict(draft.data)}


def with_links(event: Mapping[str, Any], web_base_url: str | None) -> dict[str, Any]:
    """``links.task`` is the task's staff page when ``[web] base_url`` is configured (team
    destinations only: a client's page needs a link signed for that client)."""
    links = {}
    task_id = (event.get("task") or {}).get("id")
    if web_base_url and task_id is not None:
        links["task"] = f"{web_base_url.rstrip('/')}/staff/tasks/{task_id}"
    return {**event, "links": links}


@dataclass(frozen=True)
class EventFilter:
    """Which events a destination hears: types, clients, queues (empty = any), and its audience."""

    events: frozenset[str] = frozenset(EVENT_TYPES)
    clients: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    audience: Audience = Audience.TEAM

    def wants(self, event_type: str, internal: bool, client: str | None, queue: str | None) -> bool:
        if event_type not in self.events:
            return False
        if self.audience is Audience.CLIENT and (internal or event_type not in CLIENT_EVENTS):
            return False
        if self.clients and client not in self.clients:
            return False
        return not self.queues or queue in self.queues


def iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json_value(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value
