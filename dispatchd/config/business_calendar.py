"""[calendar]: the time zone, working days and hours, holidays and closed dates due dates count in."""

from __future__ import annotations

import re
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatchd.config.model import CalendarConfig
from dispatchd.tomlfile import Reader

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def read_calendar(r: Reader) -> CalendarConfig:
    zone = r.str("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("timezone", f"unknown time zone {zone!r} (use an IANA name such as Europe/Berlin)")
        zone = "UTC"
    days = read_weekdays(r, "workdays", WEEKDAYS[:5])
    start, end = read_hours(r, "hours", "09:00-17:00") or (time(9), time(17))
    closed = []
    for text in r.str_list("closed_dates"):
        try:
            closed.append(date.fromisoformat(text))
        except ValueError:
            r.problem("closed_dates", f"{text!r} is not a date (YYYY-MM-DD)")
    country = r.str("holidays_country")
    subdivision = r.str("holidays_subdivision")
    if country:
        import holidays

        try:
            holidays.country_holidays(country, subdiv=subdivision)
        except NotImplementedError as exc:
            r.problem("holidays_country", str(exc))
            country = None
    r.refuse_unknown()
    return CalendarConfig(zone, days or (0, 1, 2, 3, 4), start, end,
                          country, subdivision, tuple(closed))



def read_weekdays(r: Reader, key: str, default: tuple[str, ...]) -> tuple[int, ...]:
    """Weekdays written as names ("mon", "Tuesday"), as numbers Monday = 0, sorted."""
    days = []
    for day in r.str_list(key, default):
        if day.lower()[:3] in WEEKDAYS:
            days.append(WEEKDAYS.index(day.lower()[:3]))
        else:
            r.problem(key, f"unknown weekday {day!r}")
    return tuple(sorted(set(days)))


def read_hours(r: Reader, key: str, default: str | None) -> tuple[time, time] | None:
    """Opening hours written '09:00-17:00' (an end of 24:00 is the end of the day); None if absent."""
    hours = r.str(key, default)
    if hours is None:
        return None
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", hours)
    if not match:
        r.problem(key, f"must look like '09:00-17:00', not {hours!r}")
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2)):
        r.problem(key, f"{hours!r} is not a valid opening time range")
        return None
    return time(h1, m1), (time(23, 59, 59) if h2 == 24 else time(h2, m2))
