"""What people read instead of internal values: status and priority words, a queue's and an
assignee's client-facing names, the due time, a change's headline, a client the subject claimed."""

from __future__ import annotations

from dispatchd.clock import as_utc
from dispatchd.config import Config
from dispatchd.domain.duewords import due_words
from dispatchd.domain.routing import Rulebook
from dispatchd.domain.sla import BusinessCalendar
from dispatchd.store.tables import Task

PRIORITY_LABELS = {"P0": "emergency", "P1": "high", "P2": "normal", "P3": "low"}
STATUS_LABELS = {
    "received": "received, waiting to be routed", "queued": "queued", "in_progress": "in progress",
    "in_review": "in review", "revisions_needed": "being revised", "ready_for_delivery": "ready for delivery",
    "delivered": "delivered", "closed": "closed", "cancelled": "cancelled",
}


def headline(parts: list[str]) -> str:
    """['in progress', 'Assigned to Dev'] -> 'In progress, assigned to Dev'."""
    parts = [p for p in parts if p]
    text = ", ".join([p[:1].upper() + p[1:] for p in parts[:1]] + [p[:1].lower() + p[1:] for p in parts[1:]])
    return text


def due_label(task: Task, calendar: BusinessCalendar) -> str:
    """The task's due time in the one wording every mail, digest and view uses."""
    return due_words(as_utc(task.due_at), calendar)


def queue_label(queue: str, config: Config, rulebook: Rulebook) -> str:
    """A queue as clients read it: its [[queues]] display_name, else the request type it serves
    ('dev' -> 'Technical'), else 'our team' (triage, a queue no type names)."""
    named = next((q.display_name for q in config.queues if q.name == queue and q.display_name), None)
    if named:
        return named
    plain = queue.rpartition("/")[2]  # a mailbox's queue_prefix is internal too
    if queue == rulebook.triage_queue or plain == rulebook.triage_queue:
        return "our team"
    return next((t.name for t in rulebook.types if t.queue == plain), "our team")


def assignee_label(assignee: str | None, config: Config) -> str:
    """The first name (or display_name) of who is on it; '' when nobody is, or they left."""
    person = config.staff_by_email(assignee) if assignee else None
    return person.client_name if person else ""


def client_claim(claimed: str | None, config: Config) -> str:
    """How staff read a client the subject named that did not become the task's client."""
    if not claimed:
        return ""
    if any(c.name == claimed for c in config.clients):
        return f"claims to be {claimed} (sender not on {claimed}'s list)"
    return f"names {claimed}, which is not a client we know"
