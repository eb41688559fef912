"""Slot arithmetic: business hours ∩ free ∩ after the notice, in time zones, across DST."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dispatchd.domain.sla import BusinessCalendar
from dispatchd.domain.slots import (Interval, SlotRules, free_slots, merge, overlaps, parse_duration, slot_line,
                                    spread, within_hours, zone_label)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(BERLIN, day_start=time(9), day_end=time(17))
MINUTES_45 = SlotRules(timedelta(minutes=45), notice=timedelta(hours=24), horizon=timedelta(days=7))
UTC = timezone.utc


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.mark.parametrize("text, minutes", [("45 minutes", 45), ("30 min", 30), ("1 hour", 60), ("1.5 h", 90),
                                           ("2 hours", 120), ("15m", 15)])
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "soon", "0 minutes", "3 days", "-5 minutes"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_slots_lie_in_business_hours_after_the_notice() -> None:
    now = berlin(2026, 12, 7, 10, 0)  # Monday
    starts = free_slots([], CALENDAR, now, MINUTES_45)
    assert starts[0] == berlin(2026, 12, 8, 10, 0)  # 24 hours' notice, on the half hour
    for start in starts:
        local = start.astimezone(BERLIN)
        assert local.weekday() < 5 and local.time() >= time(9)
        assert (local + timedelta(minutes=45)).time() <= time(17)
    assert berlin(2026, 12, 8, 16, 0) in starts and berlin(2026, 12, 8, 16, 30) not in starts  # ends 17:15
    assert not [s for s in starts if s.astimezone(BERLIN).date() in (date(2026, 12, 12), date(2026, 12, 13))]


@pytest.mark.parametrize("busy, free, taken", [
    # A meeting 10:00-11:00: 9:30 would overlap its start; 11:00 touches its end and is free.
    ((berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 11)), berlin(2026, 12, 8, 11), berlin(2026, 12, 8, 10, 30)),
    ((berlin(2026, 12, 8, 10), berlin(2026, 12, 8, 11)), berlin(2026, 12, 8, 9), berlin(2026, 12, 8, 9, 30)),
    ((berlin(2026, 12, 9, 0), berlin(2026, 12, 10, 0)), berlin(2026, 12, 10, 9), berlin(2026, 12, 9, 12)),
])
def test_busy_times_are_avoided(busy: tuple[datetime, datetime], free: datetime, taken: datetime) -> None:
    starts = free_slots([Interval(*busy)], CALENDAR, berlin(2026, 12, 7, 8), MINUTES_45)
    assert free in starts and taken not in starts


def test_holidays_are_closed() -> None:
    calendar = BusinessCalendar(BERLIN, holiday_name=lambda day: "Christmas" if day == date(2026, 12, 25) else None)
    starts = free_slots([], calendar, berlin(2026, 12, 23, 12), SlotRules(timedelta(minutes=30), horizon=timedelta(days=6)))
    assert {s.astimezone(BERLIN).date() for s in starts} == {date(2026, 12, 24), date(2026, 12, 28), date(2026, 12, 29)}


@pytest.mark.parametrize("day, utc_hour", [(date(2026, 3, 27), 8), (date(2026, 3, 30), 7),
                                           (date(2026, 10, 23), 7), (date(2026, 10, 26), 8)])
def test_nine_oclock_stays_nine_oclock_across_dst(day: date, utc_hour: int) -> None:
    """Berlin moves its clocks on 29 March and 25 October 2026: a slot's wall time does not move."""
    now = datetime.combine(day - timedelta(days=4), time(8), tzinfo=BERLIN)
    starts = free_slots([], CALENDAR, now, SlotRules(timedelta(minutes=30), notice=timedelta(hours=1),
                                                      horizon=timedelta(days=6)))
    first = [s for s in starts if s.astimezone(BERLIN).date() == day][0]
    assert first.astimezone(BERLIN).time() == time(9)
    assert first.astimezone(UTC).hour == utc_hour


def test_a_wall_time_in_the_spring_gap_is_skipped() -> None:
    night = BusinessCalendar(BERLIN, workdays=frozenset(range(7)), day_start=time(1), day_end=time(4))
    starts = free_slots([], night, berlin(2026, 3, 28, 12), SlotRules(timedelta(minutes=30), notice=timedelta(0),
                                                                     horizon=timedelta(days=1)))
    on_the_day = [s.astimezone(BERLIN).strftime("%H:%M") for s in starts if s.astimezone(BERLIN).day == 29]
    assert "02:00" not in on_the_day and "02:30" not in on_the_day and "03:00" in on_the_day
    assert len(set(starts)) == len(starts)


def test_merge_and_overlaps() -> None:
    a, b, c = (Interval(berlin(2026, 12, 8, h), berlin(2026, 12, 8, h + 1)) for h in (9, 10, 14))
    merged = merge([c, b, a])
    assert merged == [Interval(berlin(2026, 12, 8, 9), berlin(2026, 12, 8, 11)), c]
    assert overlaps(merged, berlin(2026, 12, 8, 10, 30), berlin(2026, 12, 8, 12))
    assert not overlaps(merged, berlin(2026, 12, 8, 11), berlin(2026, 12, 8, 14))
    assert overlaps(merged, berlin(2026, 12, 8, 13), berlin(2026, 12, 8, 16))


def test_spread_offers_different_days_in_time_order() -> None:
    starts = free_slots([], CALENDAR, berlin(2026, 12, 7, 10), MINUTES_45)
    chosen = spread(starts, 4, BERLIN)
    assert len(chosen) == 4 and chosen == sorted(chosen)
    assert len({s.astimezone(BERLIN).date() for s in chosen}) == 4
    assert spread(starts[:3], 4, BERLIN) == starts[:3]  # a nearly full week: all that is free
    assert spread([], 4, BERLIN) == []


def test_lines_are_in_the_readers_zone() -> None:
    start = berlin(2026, 12, 8, 15)
    assert slot_line(start, timedelta(minutes=45), BERLIN) == "Tuesday 8 December, 15:00–15:45"
    assert slot_line(start, timedelta(minutes=45), NEW_YORK) == "Tuesday 8 December, 09:00–09:45"
    assert zone_label(NEW_YORK, start) == "America/New_York (EST, UTC-05:00)"
    assert zone_label(BERLIN, berlin(2026, 7, 1, 12)) == "Europe/Berlin (CEST, UTC+02:00)"


@pytest.mark.parametrize("start, ok", [(berlin(2026, 12, 8, 16), True), (berlin(2026, 12, 8, 16, 30), False),
                                       (berlin(2026, 12, 8, 8, 30), False), (berlin(2026, 12, 12, 10), False)])
def test_within_hours(start: datetime, ok: bool) -> None:
    assert within_hours(start, timedelta(minutes=45), CALENDAR) is ok
