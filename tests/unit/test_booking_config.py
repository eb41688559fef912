"""[booking] in config.toml, a client's time zone, and booking = {…} on a request type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.errors import ConfigError
from dispatchd.rulebook import load_rulebook

BOOKING = """
[booking]
caldav_url = "https://cal.agency.test/dav/"
username = "dispatchd"
password_env = "DISPATCHD_TEST_PASSWORD"
meeting_link = "https://meet.agency.test/{task}"
notice = "4 hours"
reminder_before = "2 hours"

[booking.calendars]
Morgan = "morgan/work/"
"""


def test_booking_is_read(config_file: Callable[..., Path]) -> None:
    config = load_config(config_file(extra=BOOKING))
    booking = config.booking
    assert booking is not None
    assert booking.calendars == {"morgan@agency.test": "https://cal.agency.test/dav/morgan/work/"}
    assert (booking.notice_hours, booking.reminder_hours, booking.proposals) == (4.0, 2.0, 4)
    assert load_config(config_file()).booking is None


@pytest.mark.parametrize("change, complaint", [
    (('Morgan = "morgan/work/"', 'Nobody = "x/"'), "no [[staff]] named 'Nobody'"),
    (('notice = "4 hours"', 'notice = "soon"'), "is not a duration"),
    (('caldav_url = "https://cal.agency.test/dav/"', 'caldav_url = "cal.agency.test"'), "http(s) URL"),
    (('proposals = 4', 'proposals = 9'), "between 3 and 5"),
])
def test_booking_refusals(config_file: Callable[..., Path], change: tuple[str, str], complaint: str) -> None:
    text = BOOKING.replace('reminder_before = "2 hours"', 'reminder_before = "2 hours"\nproposals = 4')
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(config_file(extra=text.replace(*change)))


def test_client_time_zone(config_file: Callable[..., Path]) -> None:
    extra = '[[clients]]\nname = "Initech"\nsenders = ["*@initech.test"]\ntimezone = "America/New_York"\n'
    config = load_config(config_file(extra=extra))
    assert next(c for c in config.clients if c.name == "Initech").timezone == "America/New_York"
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(config_file(extra=extra.replace("America/New_York", "Mars/Olympus")))


def test_strategy_needs_a_call_in_the_shipped_rules() -> None:
    book = load_rulebook(Path(__file__).resolve().parents[2] / "rules")
    strategy = book.find_type("Strategy")
    assert strategy is not None and strategy.booking is not None
    assert strategy.booking.duration == timedelta(minutes=45) and strategy.booking.attend == ("assignee",)
    assert book.find_type("Content").booking is None  # type: ignore[union-attr]
