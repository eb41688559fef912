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
    days = []
    for day in r.str_list("workdays", WEEKDAYS[:5]):
        if day.lower()[:3] in WEEKDAYS:
            days.append(WEEKDAYS.index(day.lower()[:3]))
        else:
            r.problem("workdays", f"unknown weekday {day!r}")
    hours = r.str("hours", "09:00-17:00")
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", hours)
    start, end = time(9), time(17)
    if not match:
        r.problem("hours", f"must look like '09:00-17:00', not {hours!r}")
    else:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2)):
            r.problem("hours", f"{hours!r} is not a valid opening time range")
        else:
            start, end = time(h1, m1), (time(23, 59, 59) if h2 == 24 else time(h2, m2))
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
    return CalendarConfig(zone, tuple(sorted(set(days))) or (0, 1, 2, 3, 4), start, end,
                          country, subdivision, tuple(closed))

