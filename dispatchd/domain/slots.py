"""Time slots for a call: business hours ∩ free in every attendee's calendar ∩ after the notice.

Pure: the caller passes "now" and the busy intervals it read (CalDAV free/busy). Business
hours are wall-clock times in the business calendar's zone, turned into instants per day, so
a slot at 09:00 is 09:00 on both sides of a DST change. Proposals are shown in the client's
zone (``slot_line``), which may differ from the agency's.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from dispatchd.domain.sla import BusinessCalendar

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(minutes?|mins?|m|hours?|hrs?|h)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """'45 minutes', '30 min', '1 hour', '1.5 h' -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text or "")
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; write e.g. '30 minutes' or '1 hour'")
    amount = float(match.group(1))
    return timedelta(hours=amount) if match.group(2).lower().startswith("h") else timedelta(minutes=amount)


@dataclass(frozen=True)
class CallSpec:
    """A request type that needs a call (rules: ``booking = { duration = "45 minutes", with = … }``).
    ``attend``: ("assignee",), ("queue",) or staff names."""

    duration: timedelta
    attend: tuple[str, ...] = ("assignee",)


@dataclass(frozen=True, order=True)
class Interval:
    """[start, end) in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class SlotRules:
    """How slots are cut: ``step`` between candidate starts (from the day's opening time),
    ``notice`` before the first one, ``horizon`` how far ahead to look."""

    duration: timedelta
    notice: timedelta = timedelta(hours=24)
    step: timedelta = timedelta(minutes=30)
    horizon: timedelta = timedelta(days=14)


def merge(busy: Iterable[Interval]) -> list[Interval]:
    """Sorted, overlapping and touching intervals joined: what a bisect can search."""
    merged: list[Interval] = []
    for interval in sorted(busy):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


def overlaps(busy: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """Whether [start, end) meets any of ``busy`` (merged, sorted)."""
    index = bisect_left(busy, Interval(start, start))
    if index > 0 and busy[index - 1].end > start:
        return True
    return index < len(busy) and busy[index].start < end


def free_slots(busy: Iterable[Interval], calendar: BusinessCalendar, now: datetime, rules: SlotRules) -> list[datetime]:
    """Every start (UTC) from ``now + notice`` to ``now + horizon`` whose whole slot lies in one
    working day's hours and meets nothing busy."""
    blocked = merge(busy)
    earliest, last = now + rules.notice, now + rules.horizon
    zone = calendar.zone
    day = earliest.astimezone(zone).date()
    starts: list[datetime] = []
    while day <= last.astimezone(zone).date():
        if calendar.closed_reason(day) is None:
            starts.extend(_day_slots(day, calendar, earliest, last, rules, blocked))
        day += timedelta(days=1)
    return starts


def _day_slots(day: date, calendar: BusinessCalendar, earliest: datetime, last: datetime, rules: SlotRules,
               blocked: Sequence[Interval]) -> Iterable[datetime]:
    opening = datetime.combine(day, calendar.day_start)
    closing = datetime.combine(day, calendar.day_end)
    local = opening
    while local + rules.duration <= closing:
        # Wall clock first, then the instant: 09:00 stays 09:00 across a DST change. A wall time
        # that does not exist (the spring gap) is skipped.
        start = _instant(local, calendar.zone)
        if start is not None:
            end = start + rules.duration
            if earliest <= start and start <= last and not overlaps(blocked, start, end):
                yield start
        local += rules.step


def _instant(local: datetime, zone: ZoneInfo) -> datetime | None:
    aware = local.replace(tzinfo=zone)
    back = aware.astimezone(timezone.utc).astimezone(zone)
    if back.replace(tzinfo=None) != local:
        return None  # in the gap of a spring-forward change
    return aware.astimezone(timezone.utc)


def spread(starts: Sequence[datetime], count: int, zone: ZoneInfo) -> list[datetime]:
    """``count`` of ``starts`` for a client to choose from: one a day first (mornings and
    afternoons taking turns), then more from the days with most choice, at least two hours
    from the others, then whatever is left; in time order."""
    by_day: dict[date, list[datetime]] = {}
    for start in starts:
        by_day.setdefault(start.astimezone(zone).date(), []).append(start)
    chosen: list[datetime] = []
    for number, day in enumerate(by_day):
        if len(chosen) == count:
            break
        options = by_day[day]
        chosen.append(options[0] if number % 2 == 0 else options[len(options) // 2])
    for day, options in sorted(by_day.items(), key=lambda item: -len(item[1])):
        if len(chosen) >= count:
            break
        later = [s for s in options if s not in chosen and all(abs(s - c) >= timedelta(hours=2) for c in chosen)]
        if later:
            chosen.append(later[-1])
    for start in starts:  # a nearly full calendar: whatever is left
        if len(chosen) >= count:
            break
        if start not in chosen:
            chosen.append(start)
    return sorted(chosen)


def slot_line(start: datetime, duration: timedelta, zone: ZoneInfo) -> str:
    """'Tuesday 8 December, 15:00–15:45' in ``zone``: how a client reads (and may quote) a slot."""
    local, end = start.astimezone(zone), (start + duration).astimezone(zone)
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M}–{end:%H:%M}"


def zone_label(zone: ZoneInfo, at: datetime) -> str:
    """'Europe/Berlin (CET, UTC+01:00)': which clock the times are in."""
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    return f"{zone.key} ({local.tzname()}, UTC{offset[:3]}:{offset[3:]})"


def within_hours(start: datetime, duration: timedelta, calendar: BusinessCalendar) -> bool:
    """Whether a slot still lies in a working day's hours (the calendar may have changed)."""
    local = start.astimezone(calendar.zone)
    end = (start + duration).astimezone(calendar.zone)
    return (calendar.closed_reason(local.date()) is None and local.date() == end.date()
            and calendar.day_start <= local.time() and end.time() <= calendar.day_end
            and end.time() != time(0))
