"""[booking]: where the attendees' calendars are (CalDAV) and how calls are proposed and reminded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from dispatchd.config.credentials import read_secret
from dispatchd.config.model import BookingConfig, Config
from dispatchd.domain.slots import parse_duration
from dispatchd.tomlfile import Reader, TomlFile


def read_booking(r: Reader, base: Path, credentials: bool = True) -> BookingConfig | None:
    """None when config.toml has no [booking] table: calls are then never proposed."""
    if not r.table:
        return None
    url = r.str("caldav_url", "", required=True)
    if url and urlsplit(url).scheme not in ("http", "https"):
        r.problem("caldav_url", f"must be an http(s) URL, not {url!r}")
    calendars_r = r.table_of("calendars")
    calendars = {}
    for name in calendars_r.table:
        target = calendars_r.str(name, "")
        calendars[name] = urljoin(url.rstrip("/") + "/", target) if target else ""
    booking = BookingConfig(
        url=url, username=r.str("username"),
        password=read_secret(r, base, required=False, credentials=credentials),
        calendars=calendars, meeting_link=r.str("meeting_link", ""),
        notice_hours=_hours(r, "notice", "24 hours"), reminder_hours=_hours(r, "reminder_before", "24 hours"),
        proposals=r.int("proposals", 4, minimum=3, maximum=5),
        step_minutes=r.int("step_minutes", 30, minimum=5, maximum=240),
        horizon_days=r.int("horizon_days", 14, minimum=1, maximum=90),
        retry_minutes=_hours(r, "retry_after", "5 minutes") * 60,
        timeout=r.float("timeout", 20.0))
    if booking.meeting_link and any(f"{{{k}" in booking.meeting_link for k in ("task_id", "id")):
        r.problem("meeting_link", "the template knows {task} and {uid}")
    r.refuse_unknown()
    return booking


def _hours(r: Reader, key: str, default: str) -> float:
    text = r.str(key, default)
    try:
        return parse_duration(text).total_seconds() / 3600
    except ValueError as exc:
        r.problem(key, str(exc))
        return parse_duration(default).total_seconds() / 3600


def check_booking(doc: TomlFile, config: Config) -> BookingConfig | None:
    """The calendars belong to staff (by name): keyed by their email addresses from here on."""
    if config.booking is None:
        return None
    by_email = {}
    for name, url in config.booking.calendars.items():
        person = config.staff_by_name(name)
        if person is None:
            doc.problem(("booking", "calendars", name), f"no [[staff]] named {name!r}")
        elif not url:
            doc.problem(("booking", "calendars", name), "give the URL of their calendar collection")
        else:
            by_email[person.email] = url
    return replace(config.booking, calendars=by_email)
