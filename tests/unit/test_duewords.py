"""One due time, said one way: the end of a working day and the start of the next are one promise."""

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from dispatchd.domain.duewords import due_reasons, due_words
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla

BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = BusinessCalendar(BERLIN, day_start=time(9), day_end=time(17, 30),
                            holiday_name=lambda day: "Christmas Day" if day == date(2026, 12, 25) else None)


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


@pytest.mark.parametrize("moment, words", [
    (local(2026, 12, 8, 17, 30), "by end of Tue 8 Dec"),
    (local(2026, 12, 9, 9, 0), "by end of Tue 8 Dec"),            # the same amount of work as the line above
    (local(2026, 12, 14, 9, 0), "by end of Fri 11 Dec"),          # Monday morning: the weekend is not a day
    (local(2026, 12, 28, 9, 0), "by end of Thu 24 Dec"),          # nor is a holiday
    (local(2026, 12, 8, 14, 0), "by Tue 8 Dec, 14:00 CET"),
    (local(2026, 7, 7, 14, 0), "by Tue 7 Jul, 14:00 CEST"),
    (local(2026, 12, 12, 9, 0), "by Sat 12 Dec, 09:00 CET"),      # a closed day's opening hour is only a time
    (local(2026, 12, 25, 17, 30), "by Fri 25 Dec, 17:30 CET"),
    (datetime(2026, 12, 8, 16, 30, tzinfo=timezone.utc), "by end of Tue 8 Dec"),  # UTC from the database
    (None, "to be confirmed"),
])
def test_due_words(moment: datetime | None, words: str) -> None:
    assert due_words(moment, CALENDAR) == words


def test_a_computed_due_date_reads_like_the_end_of_a_day() -> None:
    # Received on Tuesday evening after closing: 5 business days from Wednesday 09:00.
    due = due_at(local(2026, 12, 1, 19, 0), parse_sla("5 business days"), CALENDAR)
    assert due.at == local(2026, 12, 9, 9, 0)
    assert due_words(due.at, CALENDAR) == "by end of Tue 8 Dec"


@pytest.mark.parametrize("explanation, reasons", [
    ("due Wed 9 Dec 09:00: 5 business days, clock starts Wed 2 Dec 09:00", "5 business days, clock starts Wed 2 Dec 09:00"),
    ("due Tue 29 Dec 10:00: 3 business days, Fri 25 Dec was closed (Christmas Day)",
     "3 business days, Fri 25 Dec was closed (Christmas Day)"),
    ("due Tue 08 Dec 17:30: set by ben@agency.test", "set by ben@agency.test"),
    ("", ""),
])
def test_due_reasons_leave_the_date_to_due_words(explanation: str, reasons: str) -> None:
    assert due_reasons(explanation) == reasons
