"""The staff dashboard's figures, from the few facts the store gathers (``store/dashboard.py``).

Pure: no database, no clock (``now`` and the time zone come in). The definitions, in one place:
- a task is *open* until it is closed or cancelled (as in the health report: a delivered task still
  waits for the client); a queue's *depth* counts its open tasks, its *oldest* is the oldest of them;
- a task is *done* once delivered, closed or cancelled: the *backlog* is what is not done;
- *finished* in the period: first delivered in it; *late* if that was after its due time. The breach
  rate is late / finished, *SLA attainment* the rest;
- *first response*: the first thing a staff member did on the task (not the automatic steps), from
  its arrival; *resolution*: its first delivery, from its arrival. Both in wall-clock hours.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from dispatchd.domain.health import colour, worst

DONE = ("delivered", "closed", "cancelled")


@dataclass(frozen=True)
class QueueLoad:
    """A queue's open tasks now (from the store)."""

    queue: str
    depth: int
    oldest: datetime | None


@dataclass(frozen=True)
class Finished:
    """A task first delivered in the period (from the store)."""

    task_id: int
    queue: str
    created: datetime
    delivered: datetime
    due: datetime | None

    @property
    def late(self) -> bool:
        return self.due is not None and self.delivered > self.due


@dataclass(frozen=True)
class QueueRow:
    queue: str
    depth: int
    oldest_age_hours: float | None
    finished: int
    breach_rate: float
    colours: dict[str, str]
    colour: str


@dataclass(frozen=True)
class WipRow:
    name: str
    email: str
    active: int
    limit: int
    away: bool

    @property
    def colour(self) -> str:
        """red over the limit, yellow at it, green below (a limit of 0: any work is over it)."""
        return "red" if self.active > self.limit else "yellow" if self.active == self.limit else "green"


@dataclass(frozen=True)
class DayFlow:
    day: date
    arrivals: int
    completions: int
    backlog: int  # not done at the end of the day


@dataclass(frozen=True)
class Spread:
    """p50 and p90 of durations in hours (None without any)."""

    count: int
    p50: float | None
    p90: float | None


def queue_rows(loads: Iterable[QueueLoad], finished: Iterable[Finished], now: datetime,
               queues: Iterable[str] = ()) -> list[QueueRow]:
    """One row per queue that has open tasks, finished ones or is named in ``queues``, by name."""
    by_queue = {load.queue: load for load in loads}
    done: dict[str, list[Finished]] = {}
    for item in finished:
        done.setdefault(item.queue, []).append(item)
    rows = []
    for queue in sorted(set(by_queue) | set(done) | set(queues)):
        load = by_queue.get(queue, QueueLoad(queue, 0, None))
        items = done.get(queue, [])
        rate = sum(1 for i in items if i.late) / len(items) if items else 0.0
        colours = {"depth": colour("depth", load.depth), "breach_rate": colour("breach_rate", rate)}
        age = _hours(now - load.oldest) if load.oldest is not None and load.depth else None
        rows.append(QueueRow(queue, load.depth, age, len(items), rate, colours, worst(tuple(colours.values()))))
    return rows


def attainment(finished: Iterable[Finished]) -> dict[str, float]:
    """Per queue, the share of tasks finished in the period that were delivered by their due time."""
    total: Counter[str] = Counter()
    on_time: Counter[str] = Counter()
    for item in finished:
        total[item.queue] += 1
        on_time[item.queue] += not item.late
    return {queue: on_time[queue] / total[queue] for queue in sorted(total)}


def wip_rows(people: Iterable[tuple[str, str, int]], active: dict[str, int], away: set[str]) -> list[WipRow]:
    """Each (name, email, WIP limit) with the active tasks they hold; fullest first."""
    rows = [WipRow(name, email, active.get(email, 0), limit, email in away) for name, email, limit in people]
    return sorted(rows, key=lambda r: (-_fullness(r), r.name))


def _fullness(row: WipRow) -> float:
    if row.limit:
        return row.active / row.limit
    return math.inf if row.active else 0.0


def days_back(today: date, count: int) -> list[date]:
    """The ``count`` days ending with ``today``, oldest first."""
    return [today - timedelta(days=back) for back in range(count - 1, -1, -1)]


def daily_flow(days: Sequence[date], arrivals: Iterable[datetime], completions: Iterable[datetime],
               departures: Iterable[datetime], reopenings: Iterable[datetime], not_done_now: int,
               zone: tzinfo) -> list[DayFlow]:
    """Arrivals and completions (first deliveries) per local day, and the backlog at the end of
    each day, walked back from today's: a day's end had what the next day's end had, less what
    arrived during the next day, plus what left the backlog (delivered or cancelled) and less
    what came back into it (a delivery sent back for revision)."""
    if not days:
        return []

    def per_day(moments: Iterable[datetime]) -> Counter[date]:
        return Counter(moment.astimezone(zone).date() for moment in moments)

    came, finished, left, back = per_day(arrivals), per_day(completions), per_day(departures), per_day(reopenings)
    backlog = not_done_now
    rows = []
    for day in reversed(days):
        rows.append(DayFlow(day, came[day], finished[day], backlog))
        backlog = backlog - came[day] + left[day] - back[day]
    return rows[::-1]


def spread(durations: Iterable[timedelta]) -> Spread:
    hours = sorted(_hours(d) for d in durations)
    return Spread(len(hours), percentile(hours, 50), percentile(hours, 90))


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The ``p``th percentile of sorted values, interpolated between the two nearest ranks."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def response_times(arrived: dict[int, datetime], first_action: dict[int, datetime]) -> list[timedelta]:
    """Arrival to first staff action, for the tasks that had one."""
    return [first_action[task] - arrived[task] for task in arrived if task in first_action]


def resolution_times(finished: Iterable[Finished]) -> list[timedelta]:
    return [item.delivered - item.created for item in finished]


def age_words(hours: float | None) -> str:
    """'-', '45 min', '5 h', '3 d': an age at a glance."""
    if hours is None:
        return "-"
    if hours < 1:
        return f"{round(hours * 60)} min"
    return f"{round(hours)} h" if hours < 48 else f"{round(hours / 24)} d"


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600
