"""A due time in words, said one way in every email, digest and view.

The business calendar makes "end of one working day" and "start of the next" the same amount of
work (Tue 17:30 and Wed 09:00), and due dates land on both. Read as two promises, they confuse
clients, so both are said as "by end of Tue 8 Dec"; any other instant is said with its time,
"by Tue 8 Dec, 14:00 CET". JSON keeps the instant itself in ISO 8601 UTC. Pure.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dispatchd.domain.sla import BusinessCalendar

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TO_BE_CONFIRMED = "to be confirmed"
# A stored explanation starts with the date in the calendar's own words ("due Wed 9 Dec 09:00: ");
# the date is said by ``due_words``, the rest says why.
_DATE_PREFIX = re.compile(r"^due [^:]*?\d{1,2}:\d{2}:\s*")


def due_words(moment: datetime | None, calendar: BusinessCalendar) -> str:
    """'by end of Tue 8 Dec' or 'by Tue 8 Dec, 14:00 CET'; ``moment`` aware (or None: not set yet)."""
    if moment is None:
        return TO_BE_CONFIRMED
    local = moment.astimezone(calendar.zone)
    day, clock = local.date(), local.time().replace(tzinfo=None)
    if calendar.closed_reason(day) is None:
        if clock == calendar.day_end:
            return f"by end of {day_label(day)}"
        if clock == calendar.day_start:
            before = _previous_working_day(day, calendar)
            if before is not None:
                return f"by end of {day_label(before)}"
    return f"by {day_label(day)}, {local:%H:%M} {local.tzname()}"


def day_label(day: date) -> str:
    """'Tue 8 Dec' (no leading zero, English day names whatever the locale)."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _previous_working_day(day: date, calendar: BusinessCalendar) -> date | None:
    for back in range(1, 32):  # a calendar closed for a month has no "previous working day" worth naming
        candidate = day - timedelta(days=back)
        if calendar.closed_reason(candidate) is None:
            return candidate
    return None


def due_reasons(explanation: str) -> str:
    """'due Wed 9 Dec 09:00: 5 business days, clock starts …' -> '5 business days, clock starts …'."""
    return _DATE_PREFIX.sub("", explanation or "", count=1)
