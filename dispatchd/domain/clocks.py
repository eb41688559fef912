"""The two SLA clocks of a task, defined exactly, read from its status history.

- **first response**: starts when the request is received; stops at the first thing a staff
  member does to the task (assign, a status change, a comment, routing it). Never pauses.
- **resolution**: starts when the request is received; runs while the work is with us;
  pauses in the statuses the rules name (by default ``delivered``: the client is checking);
  a revision request resumes it; it stops at ``closed`` or ``cancelled``.

Pure: the caller passes the history and the current instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dispatchd.domain.models import Status

STOPPED = frozenset({Status.CLOSED.value, Status.CANCELLED.value})


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    status: str


def resolution_intervals(created: datetime, history: list[StatusChange], initial: str,
                         paused: frozenset[str]) -> list[tuple[datetime, datetime | None]]:
    """Spans during which the resolution clock ran; the last may be open (None)."""
    intervals: list[tuple[datetime, datetime | None]] = []
    running_since: datetime | None = created if initial not in paused | STOPPED else None
    for change in sorted(history, key=lambda c: c.at):
        runs = change.status not in paused | STOPPED
        if runs and running_since is None:
            running_since = change.at
        elif not runs and running_since is not None:
            intervals.append((running_since, change.at))
            running_since = None
    if running_since is not None:
        intervals.append((running_since, None))
    return intervals


def first_response_intervals(created: datetime, first_staff_action: datetime | None
                             ) -> list[tuple[datetime, datetime | None]]:
    return [(created, first_staff_action)]


# The first half of an SLA is no time to tell a client that their work is late, whatever
# ``notify_client_before`` says: with "24 hours" and a 4-hour P0, that was the minute it arrived.
EARLIEST_CLIENT_NOTICE = 0.5


def client_should_hear(used: float, warn_at: float, forecast_late: Callable[[], bool]) -> bool:
    """Is an open task at risk enough to tell its client it is running late? ``used`` is the
    share of its resolution SLA gone. Yes past the warning point (``warn_at``, the staff's
    yellow); before it only if the queue forecast says it will miss (``forecast_late``, asked
    only then) and at least ``EARLIEST_CLIENT_NOTICE`` of the SLA is gone; never earlier."""
    if used >= warn_at:
        return True
    return used >= EARLIEST_CLIENT_NOTICE and forecast_late()
