"""The status ladder as one table: which action moves a task from which status to which.

    received → queued → in_progress → in_review → ready_for_delivery → delivered → closed
                             ↑                         │        │             │
                             └──── revisions_needed ◀──┴────────┴─────────────┘
    any open status → cancelled

Work only moves forward; revisions go back to the producer. Pure: ``apply`` returns a
Transition or a Refusal that names the current status and the moves allowed from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatchd.domain.models import Status

S = Status
OPEN = frozenset(s for s in Status if s not in (S.CLOSED, S.CANCELLED))

# action -> {from status: to status}
TRANSITIONS: dict[str, dict[Status, Status]] = {
    "route": {S.RECEIVED: S.QUEUED},
    "start": {S.QUEUED: S.IN_PROGRESS, S.REVISIONS_NEEDED: S.IN_PROGRESS},
    "review": {S.IN_PROGRESS: S.IN_REVIEW},
    "approve": {S.IN_REVIEW: S.READY_FOR_DELIVERY},
    "revise": {S.IN_REVIEW: S.REVISIONS_NEEDED, S.READY_FOR_DELIVERY: S.REVISIONS_NEEDED,
               S.DELIVERED: S.REVISIONS_NEEDED},
    "deliver": {S.READY_FOR_DELIVERY: S.DELIVERED},
    "close": {S.DELIVERED: S.CLOSED},
    "confirm": {S.DELIVERED: S.CLOSED},
    "cancel": {status: S.CANCELLED for status in OPEN},
}


@dataclass(frozen=True)
class Transition:
    action: str
    source: Status
    target: Status


@dataclass(frozen=True)
class Refusal:
    action: str
    current: Status
    allowed: tuple[str, ...]

    def __str__(self) -> str:
        moves = ", ".join(self.allowed) if self.allowed else "none (the task is finished)"
        return f"cannot {self.action} a task that is {self.current.value}; allowed now: {moves}"


def allowed_actions(status: Status) -> tuple[str, ...]:
    return tuple(action for action, moves in TRANSITIONS.items() if status in moves)


def apply(status: Status, action: str) -> Transition | Refusal:
    """The move ``action`` makes from ``status``, or why it is not allowed."""
    target = TRANSITIONS.get(action, {}).get(status)
    if target is None:
        return Refusal(action, status, allowed_actions(status))
    return Transition(action, status, target)
