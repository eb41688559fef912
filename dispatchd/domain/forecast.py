"""Which tasks will breach before anyone is warned: a queue simulation in working time.

Each queue has ``capacity`` parallel slots (the WIP limits of its members who are in).
Work in progress finishes about half a service time from now; queued work takes the
earliest free slot in rank order and needs a full service time. A task whose predicted
finish is after its due time is forecast to breach. Pure and deterministic.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

from dispatchd.domain.sla import BusinessCalendar, SlaTarget, due_at


@dataclass(frozen=True)
class QueuedWork:
    task_id: int
    started: bool
    due: datetime | None


@dataclass(frozen=True)
class Forecast:
    task_id: int
    finish: datetime
    due: datetime

    @property
    def late_by_hours(self) -> float:
        return (self.finish - self.due).total_seconds() / 3600


def forecast_breaches(work: list[QueuedWork], capacity: int, service_hours: float, now: datetime,
                      calendar: BusinessCalendar) -> list[Forecast]:
    """Tasks (in the given rank order) predicted to finish after their due time."""
    slots = max(1, capacity)
    free: list[datetime] = [now] * slots
    heapq.heapify(free)
    late = []
    ordered = [w for w in work if w.started] + [w for w in work if not w.started]
    for item in ordered:
        start = heapq.heappop(free)
        hours = service_hours / 2 if item.started else service_hours
        finish = due_at(start, SlaTarget(max(hours, 0.01), "business_hours"), calendar).at
        heapq.heappush(free, finish)
        if item.due is not None and finish > item.due:
            late.append(Forecast(item.task_id, finish, item.due))
    return late
