from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchd.domain.clocks import (
    EARLIEST_CLIENT_NOTICE,
    StatusChange,
    client_should_hear,
    first_response_intervals,
    resolution_intervals,
)
from dispatchd.domain.forecast import QueuedWork, forecast_breaches
from dispatchd.domain.sla import BusinessCalendar, business_seconds, is_open, parse_sla, read_clock

BERLIN = ZoneInfo("Europe/Berlin")
CAL = BusinessCalendar(BERLIN)
T0 = datetime(2026, 11, 23, 9, tzinfo=BERLIN)  # a Monday
PAUSED = frozenset({"delivered"})


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_resolution_runs_until_paused_and_resumes_on_revision() -> None:
    history = [StatusChange(at(1), "queued"), StatusChange(at(2), "in_progress"), StatusChange(at(5), "delivered"),
               StatusChange(at(30), "revisions_needed"), StatusChange(at(31), "in_progress")]
    assert resolution_intervals(T0, history, "received", PAUSED) == [(T0, at(5)), (at(30), None)]


def test_resolution_stops_when_closed() -> None:
    history = [StatusChange(at(3), "delivered"), StatusChange(at(4), "closed")]
    assert resolution_intervals(T0, history, "received", PAUSED) == [(T0, at(3))]
    assert resolution_intervals(T0, [StatusChange(at(2), "cancelled")], "received", PAUSED) == [(T0, at(2))]


def test_nothing_paused_means_delivered_keeps_running() -> None:
    history = [StatusChange(at(3), "delivered")]
    assert resolution_intervals(T0, history, "received", frozenset()) == [(T0, None)]


def test_first_response() -> None:
    assert first_response_intervals(T0, None) == [(T0, None)]
    assert first_response_intervals(T0, at(1)) == [(T0, at(1))]


def test_business_seconds_skip_nights_and_weekends() -> None:
    assert business_seconds(T0, at(8), CAL) == 8 * 3600
    assert business_seconds(T0, T0 + timedelta(days=7), CAL) == 5 * 8 * 3600
    assert business_seconds(at(8), at(24), CAL) == 0
    assert business_seconds(at(5), at(1), CAL) == 0


def test_read_clock_with_a_pause() -> None:
    target = parse_sla("2 business days")  # 16 working hours
    reading = read_clock([(T0, at(4)), (at(24), None)], target, CAL, now=at(28))
    assert reading.used == 0.5 and reading.running
    assert reading.due == datetime(2026, 11, 25, 13, tzinfo=BERLIN)
    stopped = read_clock([(T0, at(4))], target, CAL, now=at(100))
    assert stopped.used == 0.25 and not stopped.running and stopped.due is None


def test_read_clock_past_due() -> None:
    reading = read_clock([(T0, None)], parse_sla("4 hours"), CAL, now=at(5))
    assert reading.used == 1.25 and reading.due == at(5)


def test_is_open() -> None:
    assert is_open(at(1), CAL) and not is_open(at(9), CAL)
    assert not is_open(datetime(2026, 11, 28, 12, tzinfo=BERLIN), CAL)


def test_forecast_finds_the_tasks_that_will_be_late() -> None:
    now = T0.astimezone(timezone.utc)
    work = [QueuedWork(1, True, at(100)), QueuedWork(2, False, at(10)), QueuedWork(3, False, at(200)),
            QueuedWork(4, False, at(12))]
    late = forecast_breaches(work, capacity=1, service_hours=8, now=now, calendar=CAL)
    # one slot: #1 ends at 13:00, #2 at 13:00 next day (due 19:00 today: late), #3 fine, #4 late
    assert [f.task_id for f in late] == [2, 4]
    assert late[0].late_by_hours > 0
    assert forecast_breaches(work, capacity=4, service_hours=8, now=now, calendar=CAL) == []


@pytest.mark.parametrize(("used", "forecast_late", "heard"), [
    (0.0, True, False),    # just arrived: never, whatever the forecast or the window
    (0.3, True, False),
    (0.49, True, False),
    (0.5, True, True),     # half gone and the forecast says it will miss
    (0.6, False, False),   # half gone, on track
    (0.79, False, False),
    (0.8, False, True),    # past the warning point: at risk
    (0.95, False, True),
])
def test_client_should_hear(used: float, forecast_late: bool, heard: bool) -> None:
    asked: list[bool] = []

    def forecast() -> bool:
        asked.append(True)
        return forecast_late
    assert client_should_hear(used, 0.8, forecast) is heard
    assert not asked or EARLIEST_CLIENT_NOTICE <= used < 0.8, "the forecast is made only when it decides"


def _business_seconds_day_by_day(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """The definition, a day at a time (what ``business_seconds`` computed before it counted weeks)."""
    local_start, local_end = (m.astimezone(calendar.zone).replace(tzinfo=None) for m in (start, end))
    total, day = 0.0, local_start.date()
    while end > start and day <= local_end.date():
        if calendar.closed_reason(day) is None:
            lo = max(datetime.combine(day, calendar.day_start), local_start)
            hi = min(datetime.combine(day, calendar.day_end), local_end)
            total += max(0.0, (hi - lo).total_seconds())
        day += timedelta(days=1)
    return total


HOLIDAY_CAL = BusinessCalendar(BERLIN, holiday_name={date(2026, 12, 25): "Christmas", date(2026, 4, 6): "Easter"}.get)
SIX_DAY_CAL = BusinessCalendar(BERLIN, workdays=frozenset({0, 1, 2, 3, 4, 5}))


@settings(max_examples=400, deadline=None)
@given(start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31),
                          timezones=st.just(timezone.utc)),
       minutes=st.integers(min_value=-60, max_value=3 * 365 * 24 * 60),
       calendar=st.sampled_from([CAL, HOLIDAY_CAL, SIX_DAY_CAL]))
def test_business_seconds_counted_by_weeks_equal_the_day_by_day_count(start: datetime, minutes: int,
                                                                    calendar: BusinessCalendar) -> None:
    end = start + timedelta(minutes=minutes)
    assert business_seconds(start, end, calendar) == pytest.approx(_business_seconds_day_by_day(start, end, calendar),
                                                                   abs=1e-6)


def test_open_days_between() -> None:
    days = HOLIDAY_CAL.open_days
    assert days.between(date(2026, 12, 21), date(2026, 12, 28)) == 4  # Mon..Sun, Christmas Friday closed
    assert days.between(date(2020, 1, 6), date(2020, 1, 13)) == 5  # an earlier week after a later one
    assert days.between(date(2026, 12, 28), date(2026, 12, 21)) == 0
    assert days.between(date(2024, 1, 1), date(2026, 1, 1)) == 262 + 261  # weekdays of 2024 and 2025
