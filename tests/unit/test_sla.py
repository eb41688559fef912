from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchd.domain.sla import BusinessCalendar, SlaTarget, due_at, parse_sla

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = {date(2026, 12, 25): "Christmas Day", date(2026, 12, 26): "Boxing Day", date(2026, 4, 6): "Easter Monday"}
CAL = BusinessCalendar(BERLIN, holiday_name=HOLIDAYS.get)


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


@pytest.mark.parametrize("text, target", [
    ("5 business days", SlaTarget(5, "business_days")),
    ("1 business day", SlaTarget(1, "business_days")),
    ("48 hours", SlaTarget(48, "hours")),
    ("4h", SlaTarget(4, "hours")),
    ("2 weeks", SlaTarget(2, "weeks")),
    ("8 working hours", SlaTarget(8, "business_hours")),
    ("  3   Business   Days ", SlaTarget(3, "business_days")),
    ("1.5 business days", SlaTarget(1.5, "business_days")),
])
def test_parse_sla(text: str, target: SlaTarget) -> None:
    assert parse_sla(text) == target


@pytest.mark.parametrize("text", ["", "soon", "5", "0 hours", "-1 days", "5 fortnights"])
def test_parse_sla_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_sla(text)


@pytest.mark.parametrize("start, sla, due", [
    # Thursday 10:00 + 5 business days = next Thursday 10:00
    (at(2026, 11, 26, 10), "5 business days", at(2026, 12, 3, 10)),
    # Friday evening: the clock starts Monday 09:00
    (at(2026, 11, 27, 20), "2 business days", at(2026, 12, 2, 9)),
    # Saturday: Monday 09:00 start
    (at(2026, 11, 28, 12), "1 business day", at(2026, 12, 1, 9)),
    # Before opening: clock starts at 09:00 the same day
    (at(2026, 11, 26, 6), "1 business day", at(2026, 11, 27, 9)),
    # Exactly at closing time counts as closed
    (at(2026, 11, 26, 17), "1 business day", at(2026, 11, 30, 9)),
    # Midnight
    (at(2026, 11, 26, 0), "4 business hours", at(2026, 11, 26, 13)),
    # Business hours roll over the night and the weekend
    (at(2026, 11, 27, 15), "4 business hours", at(2026, 11, 30, 11)),
    # Christmas and Boxing Day skipped (Fri+Sat), plus the weekend
    (at(2026, 12, 23, 10), "3 business days", at(2026, 12, 29, 10)),
    # Easter Monday skipped
    (at(2026, 4, 2, 12), "2 business days", at(2026, 4, 7, 12)),
    # Wall-clock hours ignore the calendar
    (at(2026, 11, 27, 20), "48 hours", at(2026, 11, 29, 20)),
    (at(2026, 11, 27, 20), "4 hours", at(2026, 11, 28, 0)),
    # Half a business day = 4 working hours
    (at(2026, 11, 26, 10), "1.5 business days", at(2026, 11, 27, 14)),
])
def test_due_dates(start: datetime, sla: str, due: datetime) -> None:
    assert due_at(start, parse_sla(sla), CAL).at == due


def test_dst_spring_forward_keeps_working_hours() -> None:
    # Europe/Berlin jumps 02:00 -> 03:00 on Sunday 29 March 2026
    result = due_at(at(2026, 3, 27, 16), parse_sla("2 business hours"), CAL)
    assert result.at == at(2026, 3, 30, 10)
    assert result.at.utcoffset() == timedelta(hours=2)


def test_dst_fall_back_wall_clock_hours_are_real_hours() -> None:
    # 25 October 2026 has 25 hours in Berlin
    start = at(2026, 10, 24, 12)
    result = due_at(start, parse_sla("24 hours"), CAL)
    assert result.at.astimezone(timezone.utc) - start.astimezone(timezone.utc) == timedelta(hours=24)
    assert result.at.astimezone(BERLIN).hour == 11


def test_explanation_names_skipped_holidays() -> None:
    result = due_at(at(2026, 12, 23, 10), parse_sla("3 business days"), CAL)
    assert "3 business days" in result.explanation
    assert "Fri 25 Dec was closed (Christmas Day)" in result.explanation
    assert result.explanation.startswith("due Tue 29 Dec 10:00")


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError):
        due_at(datetime(2026, 1, 1), parse_sla("1 hour"), CAL)


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                       timezones=st.just(timezone.utc)),
    amount=st.integers(min_value=1, max_value=40),
    unit=st.sampled_from(["business days", "business hours", "hours"]),
)
def test_due_is_after_start_and_inside_working_time(start: datetime, amount: int, unit: str) -> None:
    result = due_at(start, parse_sla(f"{amount} {unit}"), CAL)
    assert result.at > start
    if unit != "hours":
        local = result.at.astimezone(BERLIN)
        assert CAL.closed_reason(local.date()) is None
        assert time(9) <= local.time() <= time(17)


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                          timezones=st.just(timezone.utc)),
       amount=st.integers(min_value=1, max_value=20))
def test_business_time_is_monotonic(start: datetime, amount: int) -> None:
    shorter = due_at(start, parse_sla(f"{amount} business hours"), CAL).at
    longer = due_at(start, parse_sla(f"{amount + 1} business hours"), CAL).at
    assert longer > shorter
