"""Calls for the booking tests: a real CalDAV server (Radicale, one per test module), a
deployment whose [booking] points at it, and the helpers that read what was sent and stored."""

from __future__ import annotations

import asyncio
import email.message
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlmodel import select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import Daemon, build_deps, build_outbox
from dispatchd.devservers import Dovecot, SmtpCapture
from dispatchd.flows.booking import book_calls
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.sending import SendLoop
from dispatchd.store.tables import CallBooking, TaskEvent
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail
from tests.integration.radicale import PASSWORD, USER, Radicale
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=BERLIN)
CLIENT, MORGAN = "bob@acme.test", "morgan@agency.test"


@pytest.fixture(scope="module")
def radicale() -> Iterator[Radicale]:
    server = Radicale().start()
    try:
        yield server
    finally:
        server.stop()


_calendars = iter(range(1, 1000))


@pytest.fixture
def calendar_name(radicale: Radicale) -> str:
    """A fresh calendar for Morgan in the module's Radicale."""
    name = f"morgan{next(_calendars)}"
    radicale.make_calendar(name)
    radicale.make_calendar(f"ben-{name}")
    return name


def booking_table(radicale: Radicale, calendar: str, timezone_line: str = "") -> str:
    return f"""
[[clients]]
name = "Initech"
senders = ["*@initech.test"]
{timezone_line}

[booking]
caldav_url = "{radicale.url}"
username = "{USER}"
password_env = "DISPATCHD_TEST_CALDAV"
meeting_link = "https://meet.agency.test/call-{{task}}"
notice = "24 hours"
reminder_before = "24 hours"
proposals = 4

[booking.calendars]
Morgan = "{radicale.calendar_url(calendar)}"
Ben = "{radicale.calendar_url(f"ben-{calendar}")}"
"""


def _deployment(path: Path, dovecot: Dovecot, smtp: SmtpCapture, radicale: Radicale, calendar_name: str,
                database_url: str | None = None) -> Deployment:
    user = f"requests-calls{next(_calendars)}@agency.test"
    write_config(path, dovecot.port, smtp.port, mailbox=user, database_url=database_url or "sqlite:///dispatchd.db",
                 extra=booking_table(radicale, calendar_name, 'timezone = "America/New_York"'))
    deployment = Deployment(path, dovecot, smtp, user, database_url)
    deployment.calendar = calendar_name  # type: ignore[attr-defined]
    return deployment


@pytest.fixture
def calls(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, radicale: Radicale, calendar_name: str,
          monkeypatch: pytest.MonkeyPatch) -> Deployment:
    monkeypatch.setenv("DISPATCHD_TEST_CALDAV", PASSWORD)
    return _deployment(tmp_path, dovecot, smtp, radicale, calendar_name)


@pytest.fixture
def calls_on_postgres(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, radicale: Radicale, calendar_name: str,
                      monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> Deployment:
    monkeypatch.setenv("DISPATCHD_TEST_CALDAV", PASSWORD)
    return _deployment(tmp_path, dovecot, smtp, radicale, calendar_name, postgres_url)


def run(deployment: Deployment, clock: FrozenClock, *, job: bool = True) -> IntakeDeps:
    """A fresh process's worth: read mail, run the booking job, send what was queued."""
    deps = build_deps(load_config(deployment.config), clock=clock)
    asyncio.run(Daemon(deps, SendLoop(build_outbox(deps))).run_once())
    if job:
        book_calls(deps)
    asyncio.run(build_outbox(deps).drain())
    close(deps)
    return deps


def close(deps: IntakeDeps) -> None:
    deps.coordinator.close()
    deps.engine.dispose()


def reply_to(deployment: Deployment, message: email.message.EmailMessage, body: str, sender: str = CLIENT) -> None:
    deployment.deliver(make_mail(f"Re: {message['Subject']}", sender=sender, body=body, to=message["Reply-To"],
                                 headers={"In-Reply-To": message["Message-ID"]}))


def options_in(message: email.message.EmailMessage) -> list[str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return [line.strip() for line in re.findall(r"^\s+\d\. (.+)$", text, re.MULTILINE)]


def calendar_part(message: email.message.EmailMessage) -> Calendar:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError(f"no text/calendar part in {message['Subject']!r}")


def call_row(deployment: Deployment) -> CallBooking:
    with deployment.session() as session:
        return session.exec(select(CallBooking).order_by(CallBooking.id.desc())).first()  # type: ignore[union-attr]


def events_of(deployment: Deployment, kind: str) -> list[TaskEvent]:
    with deployment.session() as session:
        return list(session.exec(select(TaskEvent).where(TaskEvent.kind == kind)).all())


def starts_in(radicale: Radicale, calendar: str, uid: str) -> list[datetime]:
    found = []
    for data in radicale.events(calendar):
        for event in Calendar.from_ical(data).walk("VEVENT"):
            if str(event["uid"]) == uid:
                found.append(event.decoded("dtstart"))
    return found


def accept_mail(uid: str, attendee: str, intake: str, sender: str | None = None, partstat: str = "ACCEPTED") -> bytes:
    message = email.message.EmailMessage()
    message["From"], message["To"] = sender or attendee, intake
    message["Subject"] = "Accepted: Call about request #1"
    message["Message-ID"] = f"<{partstat}.{attendee}.{uid}>"
    message.set_content("Ian has accepted this invitation.")
    ics = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar//EN\r\nMETHOD:REPLY\r\n"
           f"BEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:0\r\nDTSTAMP:20261207T100000Z\r\n"
           f"ATTENDEE;PARTSTAT={partstat};CN=Ian:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    message.add_alternative(ics, subtype="calendar", params={"method": "REPLY"})
    return message.as_bytes()


def call_state_of(deployment: Deployment, task_id: int) -> str:
    with deployment.session() as session:
        return session.exec(select(CallBooking).where(CallBooking.task_id == task_id)).one().state
