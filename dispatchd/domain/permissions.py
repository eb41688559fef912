"""Who may do what (least privilege). Pure: a table per role and one check function.

- client: only their own tasks; confirm, revise a delivery, ask for status, comment, add or remove
  followers (only the client's own addresses: ``domain/followers``)
- producer: work on tasks in their queues or assigned to them, and write to the client ('reply: …')
- lead: also assign, prioritise, approve, deliver, close, cancel and route in their queues
- manager: everything
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENT = frozenset({"confirm", "revise", "status", "note", "follow", "unfollow"})
PRODUCER = frozenset({"start", "review", "take", "note", "status", "next", "away", "follow", "unfollow",
                      "reply", "schedule"})
LEAD = PRODUCER | {"approve", "revise", "deliver", "close", "cancel", "assign", "priority", "due",
                   "type", "client", "queue"}
ROLE_COMMANDS = {"client": CLIENT, "producer": PRODUCER, "lead": LEAD, "manager": LEAD | {"confirm"}}


@dataclass(frozen=True)
class Actor:
    email: str
    role: str  # client | producer | lead | manager
    queues: tuple[str, ...] = ()
    client: str | None = None


@dataclass(frozen=True)
class TaskScope:
    queue: str
    assignee: str | None
    client: str | None


def refusal(actor: Actor, command: str, task: TaskScope | None) -> str | None:
    """None if ``actor`` may run ``command`` on ``task``; otherwise why not."""
    if command not in ROLE_COMMANDS.get(actor.role, frozenset()):
        return f"a {actor.role} may not {command}"
    if task is None or actor.role == "manager":
        return None
    if actor.role == "client":
        return None if task.client and task.client == actor.client else "this is not your task"
    if task.queue in actor.queues:
        return None
    if actor.role == "producer" and task.assignee == actor.email and command != "take":
        return None
    return f"{task.queue} is not one of your queues"
