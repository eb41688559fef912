"""What of a task's audit trail its client may see: a timeline without the team's inside.

Shown: the request arriving, each change of status, the due date moving, the team's messages
to the client (``to_client``), the client's own comments and cancellation requests, files they
sent. Never shown: internal notes (a ``comment`` whose author is not one of the client's
addresses), routing and assignment reasons, SLA escalations, refusals, bounces, unverified words,
questions the system asked back. A list of allowed kinds, so a new kind of event stays hidden
until someone decides clients may see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class EventRow:
    """An audit event as the timeline needs it (``store.tables.TaskEvent``'s fields)."""

    at: datetime
    actor: str
    kind: str
    detail: str = ""
    from_status: str | None = None
    to_status: str | None = None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # received | status | due | message | comment | cancel_requested | files
    status: str | None = None  # for kind "status": the new status
    text: str = ""  # words the client may read (their own, or the team's message to them)
    by_client: bool = False


# Kinds whose change of status the client sees; their details (reasons, names) stay inside.
_STATUS_KINDS = frozenset({"status", "routed", "triaged", "rerouted", "question_answered", "assigned"})


def client_timeline(events: Iterable[EventRow], is_clients: Callable[[str], bool]) -> list[TimelineEntry]:
    """The client's view of ``events`` (oldest first); ``is_clients(actor)``: whether an
    address is one of the task's client's."""
    entries: list[TimelineEntry] = []
    for event in events:
        entry = _entry(event, is_clients(event.actor))
        if entry is not None:
            entries.append(entry)
    return entries


def _entry(event: EventRow, by_client: bool) -> TimelineEntry | None:
    if event.kind == "received":
        return TimelineEntry(event.at, "received", by_client=by_client)
    if event.to_status and event.to_status != event.from_status and (
            event.kind in _STATUS_KINDS or event.kind in ("confirm", "revise", "deliver", "cancel", "close")):
        return TimelineEntry(event.at, "status", event.to_status)
    if event.kind == "to_client":
        return TimelineEntry(event.at, "message", None, event.detail)
    if event.kind == "comment" and by_client:
        return TimelineEntry(event.at, "comment", None, event.detail, by_client=True)
    if event.kind == "cancel_requested" and by_client:
        return TimelineEntry(event.at, "cancel_requested", None, event.detail, by_client=True)
    if event.kind == "due":
        return TimelineEntry(event.at, "due")
    if event.kind == "attachments" and by_client:
        return TimelineEntry(event.at, "files", None, event.detail, by_client=True)
    return None
