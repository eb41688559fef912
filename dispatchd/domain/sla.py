"""SLA targets and the business calendar that turns them into due dates.

Pure: the caller passes the start instant; nothing here reads the clock. All arithmetic on
working time happens in the calendar's local wall-clock time and is localised at the end,
so a DST change never adds or loses an hour of work.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UNITS = {
    "hour": "hours", "hours": "hours", "h": "hours",
    "day": "days", "days": "days", "d": "days",
    "week": "weeks", "weeks": "weeks", "w": "weeks",
    "business hour": "business_hours", "business hours": "business_hours",
    "business day": "business_days", "business days": "business_days",
    "working day": "business_days", "working days": "business_days",
    "working hour": "business_hours", "working hours": "business_hours",
}
_SLA = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z ]+?)\s*$", re.IGNORECASE)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class SlaTarget:
    amount: float
    unit: str

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        word = self.unit.replace("_", " ")
        return f"{amount} {word[:-1] if amount == 1 else word}"


def parse_sla(text: str) -> SlaTarget:
    """'5 business days', '48 hours', '4h', '2 weeks' -> SlaTarget; ValueError otherwise."""
    match = _SLA.match(text or "")
    unit = UNITS.get(re.sub(r"\s+", " ", match.group(2).lower())) if match else None
    if not match or unit is None or float(match.group(1)) <= 0:
        raise ValueError(
            f"{text!r} is not an SLA; write e.g. '4 hours', '48 hours', '5 business days', '2 weeks'"
        )
    return SlaTarget(float(match.group(1)), unit)


@dataclass(frozen=True)
class BusinessCalendar:
    zone: ZoneInfo
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_start: time = time(9)
    day_end: time = time(17)
    holiday_name: Callable[[date], str | None] = field(default=lambda day: None)
    open_days: OpenDays = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "open_days", OpenDays(self.closed_reason))

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is not a working day (weekend or a named holiday), or None if open."""
        if day.weekday() not in self.workdays:
            return "weekend"
        return self.holiday_name(day)


_MONDAY = date(2000, 1, 3)


class OpenDays:
    """Working days counted a week at a time, each week's looked up once and remembered with a
    running total: counting the working days between two dates is then two list lookups, where
    walking the days made the SLA job's cost grow with the age of every open task."""

    def __init__(self, closed_reason: Callable[[date], str | None]):
        self.closed_reason = closed_reason
        self.first_week = 0
        self.masks: list[int] = []   # bit d set: weekday d of that week is open
        self.before: list[int] = []  # open days in the remembered weeks before this one
        self.lock = threading.Lock()  # jobs run in threads and share the calendar

    def is_open(self, day: date) -> bool:
        week = self._cover(day)
        return bool(self.masks[week] >> day.weekday() & 1)

    def between(self, first: date, end: date) -> int:
        """Open days d with first <= d < end."""
        if end <= first:
            return 0
        self._cover(first)  # the earlier first: covering it may renumber the weeks
        return self._count_before(end) - self._count_before(first)

    def _count_before(self, day: date) -> int:
        week = self._cover(day)
        return self.before[week] + (self.masks[week] & ((1 << day.weekday()) - 1)).bit_count()

    def _cover(self, day: date) -> int:
        """Remember the weeks up to ``day``'s; its index in the lists."""
        week = (day - _MONDAY).days // 7
        with self.lock:
            if not self.masks:
                self.first_week, self.masks, self.before = week, [self._mask(week)], [0]
            while week < self.first_week:
                self.first_week -= 1
                mask = self._mask(self.first_week)
                self.masks.insert(0, mask)
                self.before = [0, *(n + mask.bit_count() for n in self.before)]
            while week >= self.first_week + len(self.masks):
                self.before.append(self.before[-1] + self.masks[-1].bit_count())
                self.masks.append(self._mask(self.first_week + len(self.masks)))
            return week - self.first_week

    def _mask(self, week: int) -> int:
        monday = _MONDAY + timedelta(weeks=week)
        return sum(1 << n for n in range(7) if self.closed_reason(monday + timedelta(days=n)) is None)


@dataclass(frozen=True)
class Due:
    at: datetime
    explanation: str


def due_at(start: datetime, target: SlaTarget, calendar: BusinessCalendar) -> Due:
    """When work that starts at ``start`` (aware) is due under ``target``, with the reasoning."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if target.unit in ("hours", "days", "weeks"):
        hours = {"hours": 1, "days": 24, "weeks": 168}[target.unit] * target.amount
        # Aware arithmetic with one tzinfo is wall-clock in Python; real hours need UTC.
        due = _whole_minute((start.astimezone(timezone.utc) + timedelta(hours=hours)).astimezone(calendar.zone))
        return Due(due, f"due {_label(due)}: {target}")
    local = start.astimezone(calendar.zone).replace(tzinfo=None)
    skipped: list[str] = []
    opened = _next_open(local, calendar, skipped)
    if target.unit == "business_days":
        naive = _add_business_days(opened, target.amount, calendar, skipped)
    else:
        naive = _add_business_hours(opened, target.amount * 3600, calendar, skipped)
    due = _whole_minute(_localise(naive, calendar.zone))
    notes = [f"{target}"]
    if opened != local:
        notes.append(f"clock starts {_label(_localise(opened, calendar.zone))}")
    notes.extend(dict.fromkeys(skipped))
    return Due(due, f"due {_label(due)}: " + ", ".join(notes))


def _next_open(moment: datetime, calendar: BusinessCalendar, skipped: list[str]) -> datetime:
    day = moment.date()
    if calendar.closed_reason(day) is None:
        if moment.time() < calendar.day_start:
            return datetime.combine(day, calendar.day_start)
        if moment.time() < calendar.day_end:
            return moment
    while True:
        day += timedelta(days=1)
        reason = calendar.closed_reason(day)
        if reason is None:
            return datetime.combine(day, calendar.day_start)
        _note(day, reason, skipped)


def _add_business_days(opened: datetime, days: float, calendar: BusinessCalendar,
                       skipped: list[str]) -> datetime:
    whole = int(days)
    day = opened.date()
    while whole:
        day += timedelta(days=1)
        reason = calendar.closed_reason(day)
        if reason is None:
            whole -= 1
        else:
            _note(day, reason, skipped)
    moment = datetime.combine(day, opened.time())
    fraction = days - int(days)
    if fraction:
        length = _day_seconds(calendar)
        moment = _add_business_hours(moment, fraction * length, calendar, skipped)
    return moment


def _add_business_hours(opened: datetime, seconds: float, calendar: BusinessCalendar,
                        skipped: list[str]) -> datetime:
    moment = opened
    remaining = seconds
    while True:
        close = datetime.combine(moment.date(), calendar.day_end)
        available = (close - moment).total_seconds()
        if remaining <= available:
            return moment + timedelta(seconds=remaining)
        remaining -= available
        moment = _next_open(close, calendar, skipped)


def _day_seconds(calendar: BusinessCalendar) -> float:
    anchor = date(2000, 1, 3)
    return (datetime.combine(anchor, calendar.day_end) - datetime.combine(anchor, calendar.day_start)).total_seconds()


def _note(day: date, reason: str, skipped: list[str]) -> None:
    if reason != "weekend":
        skipped.append(f"{_DAYS[day.weekday()]} {day.day} {day:%b} was closed ({reason})")


def _localise(naive: datetime, zone: ZoneInfo) -> datetime:
    """Attach ``zone``; a wall time skipped by DST moves forward past the gap."""
    aware = naive.replace(tzinfo=zone)
    round_trip = aware.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
    if round_trip != naive:
        aware = (naive + timedelta(hours=1)).replace(tzinfo=zone)
    return aware


def _whole_minute(moment: datetime) -> datetime:
    """Due dates are promises to people: round up to the minute, never earlier."""
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment


def _label(moment: datetime) -> str:
    return f"{_DAYS[moment.weekday()]} {moment.day} {moment:%b %H:%M}"


def target_seconds(target: SlaTarget, calendar: BusinessCalendar) -> float:
    """The length of ``target`` in the time it counts: working seconds or real seconds."""
    if target.unit == "business_days":
        return target.amount * _day_seconds(calendar)
    if target.unit == "business_hours":
        return target.amount * 3600
    return target.amount * {"hours": 1, "days": 24, "weeks": 168}[target.unit] * 3600


def counted_seconds(start: datetime, end: datetime, target: SlaTarget, calendar: BusinessCalendar) -> float:
    """How much of ``target``'s kind of time passes between two aware instants."""
    if end <= start:
        return 0.0
    if target.unit in ("hours", "days", "weeks"):
        return (end - start).total_seconds()
    return business_seconds(start, end, calendar)


def business_seconds(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Working seconds between two aware instants under ``calendar``: the parts of the first
    and last day, and whole working days between them counted by ``OpenDays`` (O(1) once the
    weeks are known, however far apart the instants are)."""
    if end <= start:
        return 0.0
    local_start = start.astimezone(calendar.zone).replace(tzinfo=None)
    local_end = end.astimezone(calendar.zone).replace(tzinfo=None)
    first, last = local_start.date(), local_end.date()
    days = calendar.open_days
    if first == last:
        return _open_part(first, local_start, local_end, calendar) if days.is_open(first) else 0.0
    total = _open_part(first, local_start, datetime.combine(last, time()), calendar) if days.is_open(first) else 0.0
    if days.is_open(last):
        total += _open_part(last, datetime.combine(last, time()), local_end, calendar)
    return total + days.between(first + timedelta(days=1), last) * _day_seconds(calendar)


def _open_part(day: date, lo: datetime, hi: datetime, calendar: BusinessCalendar) -> float:
    """Seconds of [lo, hi] within ``day``'s opening hours."""
    lo = max(lo, datetime.combine(day, calendar.day_start))
    hi = min(hi, datetime.combine(day, calendar.day_end))
    return max(0.0, (hi - lo).total_seconds())


@dataclass(frozen=True)
class ClockReading:
    """Where an SLA clock stands: how much of its time is used, and when it runs out."""

    used: float
    due: datetime | None
    running: bool


def read_clock(intervals: list[tuple[datetime, datetime | None]], target: SlaTarget, calendar: BusinessCalendar,
               now: datetime) -> ClockReading:
    """``intervals`` are the spans the clock ran (an open end means it runs now)."""
    total = target_seconds(target, calendar)
    consumed = sum(counted_seconds(a, b or now, target, calendar) for a, b in intervals)
    running = bool(intervals) and intervals[-1][1] is None
    left = total - consumed
    due = None
    if running:
        if left > 0:
            due = due_at(now, _remaining(target, left), calendar).at
        else:
            due = now
    return ClockReading(consumed / total, due, running)


def _remaining(target: SlaTarget, seconds: float) -> SlaTarget:
    if target.unit in ("hours", "days", "weeks"):
        return SlaTarget(seconds / 3600, "hours")
    return SlaTarget(seconds / 3600, "business_hours")


def is_open(moment: datetime, calendar: BusinessCalendar) -> bool:
    """True inside working hours on a working day."""
    local = moment.astimezone(calendar.zone)
    return (calendar.closed_reason(local.date()) is None
            and calendar.day_start <= local.time() < calendar.day_end)


def next_opening(moment: datetime, calendar: BusinessCalendar) -> datetime:
    """``moment`` itself inside working hours, else when the agency next opens (aware, local)."""
    local = moment.astimezone(calendar.zone)
    return _localise(_next_open(local.replace(tzinfo=None), calendar, []), calendar.zone)
