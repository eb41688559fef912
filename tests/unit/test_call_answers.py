"""A client's answer to proposed call times, in plain words."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatchd.domain.call_answers import Answer, read_answer
from dispatchd.domain.slots import slot_line

NEW_YORK = ZoneInfo("America/New_York")
LENGTH = timedelta(minutes=45)
# Tue 8 Dec 09:00, Wed 9 Dec 15:00, Thu 10 Dec 10:30, Fri 11 Dec 15:00 (New York)
OFFERED = [datetime(2026, 12, 8, 9, tzinfo=NEW_YORK), datetime(2026, 12, 9, 15, tzinfo=NEW_YORK),
           datetime(2026, 12, 10, 10, 30, tzinfo=NEW_YORK), datetime(2026, 12, 11, 15, tzinfo=NEW_YORK)]


@pytest.mark.parametrize("text, index", [
    ("2", 2), ("2.", 2), ("#2", 2), ("option 2", 2), ("Option 2 works for us", 2), ("2 please", 2),
    ("2 works for us, thanks!", 2), ("Number 3", 3), ("the second one", 2), ("First one please", 1),
    ("Hi,\n\n4\n\nThanks, Bob", 4), ("Let's do 1", 1), ("Wednesday 3pm", 2), ("Wed at 15:00", 2),
    ("thursday 10:30", 3), ("10 Dec 10:30am", 3), ("Friday 3 pm works", 4), ("Tuesday 9am please", 1),
    ("Thursday 10 December, 10:30–11:15", 3), ("Wednesday works", 2), ("3. Thursday 10 December, 10:30-11:15", 3),
])
def test_picks(text: str, index: int) -> None:
    assert read_answer(text, OFFERED, LENGTH, NEW_YORK) == Answer("pick", index)


@pytest.mark.parametrize("text, kind", [
    ("none of these work", "none"), ("None of those times work for us, sorry", "none"),
    ("Sorry, none work", "none"), ("Neither", "none"), ("Could you send other times?", "none"),
    ("reschedule", "reschedule"), ("Please reschedule, something came up", "reschedule"),
    ("cancel call", "cancel"), ("Please cancel the call", "cancel"), ("cancel the meeting", "cancel"),
    ("7", "unclear"), ("option 5", "unclear"), ("Monday 9am", "unclear"), ("Saturday", "unclear"),
    ("at 3", "unclear"), ("sounds good", "unclear"), ("", "unclear"), ("What is this about?", "unclear"),
    ("Tuesday or Wednesday 3pm", "unclear"),
])
def test_other_answers(text: str, kind: str) -> None:
    assert read_answer(text, OFFERED, LENGTH, NEW_YORK).kind == kind


def test_the_slot_line_as_shown_is_read_back() -> None:
    for index, start in enumerate(OFFERED, 1):
        assert read_answer(slot_line(start, LENGTH, NEW_YORK), OFFERED, LENGTH, NEW_YORK) == Answer("pick", index)


def test_times_are_read_in_the_clients_zone() -> None:
    """'Wednesday 3pm' means 15:00 in New York (21:00 in Berlin), where the times were shown."""
    assert read_answer("Wednesday 3pm", OFFERED, LENGTH, ZoneInfo("Europe/Berlin")).kind == "unclear"
