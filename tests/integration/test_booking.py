"""Calls booked by email, end to end: real Dovecot, the SMTP sink and a real CalDAV server
(Radicale), with a frozen clock. A Strategy request gets proposed times that avoid what is in
the attendee's calendar; the client's "2" puts the event there at the right instant and both
sides get an invitation with the same UID; the reminder goes out once; "reschedule" cancels
and re-invites with a higher SEQUENCE; a calendar's Accept is recorded, never answered."""

from __future__ import annotations

import asyncio
import email.message
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar
from sqlmodel import select

from dispatchd.clock import FrozenClock, as_utc
from dispatchd.config import load_config
from dispatchd.daemon import Daemon, build_deps, build_outbox
from dispatchd.devservers import Dovecot, SmtpCapture
from dispatchd.flows import booking as booking_flow
from dispatchd.flows.booking import book_calls
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.probes import probe_all
from dispatchd.sending import SendLoop
from dispatchd.web.app import create_app
from dispatchd.store.tables import CallAttendee, CallBooking, TaskEvent
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail
from tests.integration.radicale import PASSWORD, USER, Radicale
from tests.integration.webtools import free_port, web_table

pytestmark = pytest.mark.integration
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


def test_strategy_request_to_booked_call_reminder_and_reschedule(calls: Deployment, radicale: Radicale) -> None:
    calendar = calls.calendar  # type: ignore[attr-defined]
    # Tuesday 10:00-13:00 Berlin is taken in Morgan's calendar.
    busy_start, busy_end = datetime(2026, 12, 8, 10, tzinfo=BERLIN), datetime(2026, 12, 8, 13, tzinfo=BERLIN)
    radicale.add_busy(calendar, "board-meeting", busy_start, busy_end)
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Initech] - Strategy - Plan for 2027", sender="Ian <ian@initech.test>"))
    run(calls, clock)

    offer = calls.received_by("ian@initech.test")[-1]
    assert "Times for our call" in offer["Subject"]
    lines = options_in(offer)
    assert 3 <= len(lines) <= 5
    assert "America/New_York" in offer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    call = call_row(calls)
    offered = [datetime.fromisoformat(s) for s in call.offered.split(",")]
    for start in offered:
        assert start >= clock.now() + timedelta(hours=24), "after the notice period"
        assert not (start < busy_end and start + timedelta(minutes=45) > busy_start), "not over the busy event"
        local = start.astimezone(BERLIN)
        assert local.weekday() < 5 and 9 <= local.hour and (local + timedelta(minutes=45)).time() <= \
            datetime(2026, 1, 1, 17, 0).time()
    # Shown in the client's zone (New York), six hours behind Berlin.
    second = offered[1].astimezone(NEW_YORK)
    assert lines[1].startswith(f"{second:%A} {second.day} {second:%B}, {second:%H:%M}")

    reply_to(calls, offer, "2 works for us, thanks!", sender="ian@initech.test")
    run(calls, clock)
    call = call_row(calls)
    assert call.state == "booked" and as_utc(call.start) == offered[1]
    assert starts_in(radicale, calendar, call.uid) == [offered[1]], "in Morgan's calendar at the right instant"
    invitations = {address: calls.received_by(address)[-1] for address in ("ian@initech.test", MORGAN)}
    for message in invitations.values():
        ics = calendar_part(message)
        assert str(ics["method"]) == "REQUEST"
        event = ics.walk("VEVENT")[0]
        assert str(event["uid"]) == call.uid and int(event["sequence"]) == 0
        assert event.decoded("dtstart") == offered[1]
        assert "https://meet.agency.test/call-1" in str(event["location"])
        assert any(p.get_filename() == "invite.ics" for p in message.walk())
    assert calls.tasks()[0].status == "in_progress", "the task moves on"
    assert len(events_of(calls, "call_booked")) == 1

    # The reminder: not yet at T-24h-1min, once from T-24h on, however often the job runs.
    before = len(calls.smtp.messages)
    clock.at = offered[1] - timedelta(hours=24, minutes=1)
    run(calls, clock)
    assert len(calls.smtp.messages) == before
    clock.at = offered[1] - timedelta(hours=23, minutes=59)
    run(calls, clock)
    run(calls, clock)
    reminders = [m for m in calls.received() if "Reminder" in m["Subject"]]
    assert sorted(a for m in reminders for a in m["To"].split(",")) == ["ian@initech.test", MORGAN]

    # Ian's calendar accepts: recorded on the task, nothing sent back.
    sent = len(calls.smtp.messages)
    calls.deliver(accept_mail(call.uid, "ian@initech.test", calls.user))
    run(calls, clock)
    assert len(calls.smtp.messages) == sent, "a calendar answer is never answered"
    assert [e.detail.split()[0] for e in events_of(calls, "call_answer")] == ["accepted"]
    with calls.session() as session:
        ian = session.exec(select(CallAttendee).where(CallAttendee.address == "ian@initech.test")).one()
        assert ian.partstat == "ACCEPTED"
    assert call_row(calls).state == "booked"
    # A forged answer (Morgan's address in it, sent by someone else) changes nothing.
    calls.deliver(accept_mail(call.uid, MORGAN, calls.user, sender="mallory@evil.test", partstat="DECLINED"))
    run(calls, clock)
    assert len(calls.smtp.messages) == sent
    assert len(events_of(calls, "call_answer_ignored")) == 1
    with calls.session() as session:
        morgan = session.exec(select(CallAttendee).where(CallAttendee.address == MORGAN)).one()
        assert morgan.partstat == "NEEDS-ACTION"

    # "reschedule": CANCEL with the same UID and a higher SEQUENCE, the event leaves the calendar,
    # new times follow; picking one sends a new REQUEST, higher again.
    reply_to(calls, invitations["ian@initech.test"], "reschedule", sender="ian@initech.test")
    run(calls, clock)
    cancels = [m for m in calls.received()[sent:] if "Cancelled" in m["Subject"]]
    assert len(cancels) == 2
    for message in cancels:
        ics = calendar_part(message)
        assert str(ics["method"]) == "CANCEL"
        assert str(ics.walk("VEVENT")[0]["uid"]) == call.uid and int(ics.walk("VEVENT")[0]["sequence"]) == 1
    assert starts_in(radicale, calendar, call.uid) == []
    new_offer = [m for m in calls.received_by("ian@initech.test") if "Times for our call" in m["Subject"]][-1]
    reply_to(calls, new_offer, "1", sender="ian@initech.test")
    run(calls, clock)
    again = calendar_part(calls.received_by(MORGAN)[-1])
    assert str(again["method"]) == "REQUEST"
    assert str(again.walk("VEVENT")[0]["uid"]) == call.uid and int(again.walk("VEVENT")[0]["sequence"]) == 2
    assert "Updated invitation" in calls.received_by(MORGAN)[-1]["Subject"]
    assert len(starts_in(radicale, calendar, call.uid)) == 1


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


def test_two_picks_of_one_time_book_it_once(calls: Deployment, radicale: Radicale,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    two_picks_of_one_time(calls, radicale, monkeypatch)


def test_two_picks_of_one_time_book_it_once_on_postgresql(calls_on_postgres: Deployment, radicale: Radicale,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two instances on one PostgreSQL: the advisory lock per attendee serialises the claims."""
    two_picks_of_one_time(calls_on_postgres, radicale, monkeypatch)


def two_picks_of_one_time(calls: Deployment, radicale: Radicale, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both claims read who holds the time before either writes, unless something keeps them
    apart: each claim waits (up to 2 s) for the other right after its read. With the lock the
    second never gets to its read while the first waits, so it sees the first one's claim."""
    real_held_times = booking_flow.held_times
    both_read = threading.Barrier(2)

    def held_times_then_wait(*args: object, **kwargs: object) -> object:
        found = real_held_times(*args, **kwargs)  # type: ignore[arg-type]
        try:
            both_read.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        return found

    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Strategy - Pricing review"),
                  make_mail("[Initech] - Strategy - Market entry", sender="ian@initech.test"))
    run(calls, clock)
    offers = [calls.received_by(a)[-1] for a in (CLIENT, "ian@initech.test")]
    with calls.session() as session:
        rows = list(session.exec(select(CallBooking).order_by(CallBooking.id)).all())
    assert rows[0].offered.split(",")[1] == rows[1].offered.split(",")[1], "both were offered the same time"
    reply_to(calls, offers[0], "option 2")
    reply_to(calls, offers[1], "2", sender="ian@initech.test")
    run(calls, clock, job=False)
    # The two calls taken on at once, as two instances would: the claim decides, not the timing.
    instances = [build_deps(load_config(calls.config), clock=clock) for _ in range(2)]
    monkeypatch.setattr(booking_flow, "held_times", held_times_then_wait)
    outcomes: list[list[str]] = []
    runs = [threading.Thread(target=lambda r=row, d=deps: outcomes.append(booking_flow.advance_call(r.id, d)))
            for row, deps in zip(rows, instances)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    # Decided at the claim (the calendar's own re-check would catch it later, not first).
    assert sorted(o[0] for o in outcomes) == ["claimed", "taken"], outcomes
    monkeypatch.setattr(booking_flow, "held_times", real_held_times)
    for deps in instances:
        book_calls(deps)  # the one that lost gets its fresh times
    asyncio.run(build_outbox(instances[0]).drain())
    for deps in instances:
        close(deps)
    with calls.session() as session:
        states = sorted(r.state for r in session.exec(select(CallBooking)).all())
    assert states == ["booked", "proposed"], "one booking, the other got fresh options"
    assert len([e for e in radicale.events(calls.calendar) if "Call about request" in e]) == 1  # type: ignore[attr-defined]
    loser = CLIENT if call_state_of(calls, 1) == "proposed" else "ian@initech.test"
    fresh = calls.received_by(loser)[-1]
    assert "Times for our call" in fresh["Subject"] and "taken a moment ago" in fresh.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def call_state_of(deployment: Deployment, task_id: int) -> str:
    with deployment.session() as session:
        return session.exec(select(CallBooking).where(CallBooking.task_id == task_id)).one().state


def test_a_time_that_got_busy_since_it_was_offered_gets_fresh_options(calls: Deployment, radicale: Radicale) -> None:
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Strategy - Brand workshop"))
    run(calls, clock)
    offer = calls.received_by(CLIENT)[-1]
    second = datetime.fromisoformat(call_row(calls).offered.split(",")[1])
    radicale.add_busy(calls.calendar, "dentist", second, second + timedelta(hours=1))  # type: ignore[attr-defined]
    reply_to(calls, offer, "2")
    run(calls, clock)
    call = call_row(calls)
    assert call.state == "proposed" and second.isoformat() not in call.offered
    assert starts_in(radicale, calls.calendar, call.uid) == []  # type: ignore[attr-defined]
    fresh = calls.received_by(CLIENT)[-1]
    assert "just been filled" in fresh.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_a_time_picked_on_the_request_page_is_booked_like_a_reply(calls: Deployment, radicale: Radicale) -> None:
    """The client's page (the link in the email, the real app in process) lists the times;
    choosing one goes through the same reading as a reply '3'."""
    (calls.path / "web.secret").write_text("web-secret-for-tests-0123456789abcdef\n")
    config_text = calls.config.read_text()
    calls.config.write_text(config_text + web_table(free_port(), 'secret_file = "web.secret"'))
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Strategy - Pricing workshop"))
    run(calls, clock)
    offer = calls.received_by(CLIENT)[-1]
    link = httpx.URL(re.search(r"All your requests: (\S+)", offer.get_body(("plain",)).get_content()).group(1))  # type: ignore[union-attr]
    deps = build_deps(load_config(calls.config), clock=clock)
    task_id = calls.tasks()[-1].id
    path = f"{link.raw_path.decode()}/r/{task_id}"

    async def choose() -> None:
        transport = httpx.ASGITransport(app=create_app(lambda: deps))
        async with httpx.AsyncClient(transport=transport, base_url=f"{link.scheme}://{link.netloc.decode()}") as http:
            page = (await http.get(path)).text
            for line in options_in(offer):
                assert f">{line}</button>" in page
            forms = [f for f in re.findall(r"<form.*?</form>", page, re.S) if 'value="call"' in f]
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', forms[2]))
            assert fields["words"] == "3"
            gone = await http.post(path, data={**fields, "words": "9"})
            assert gone.status_code == 400 and "no longer on offer" in gone.text
            chosen = await http.post(path, data=fields)
            assert chosen.status_code == 200 and "we are booking that time" in chosen.text

    asyncio.run(choose())
    close(deps)
    run(calls, clock)
    call = call_row(calls)
    third = datetime.fromisoformat(call.offered.split(",")[2])
    assert call.state == "booked" and as_utc(call.start) == third
    assert starts_in(radicale, calls.calendar, call.uid) == [third]  # type: ignore[attr-defined]


def test_an_unclear_answer_is_asked_back(calls: Deployment) -> None:
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Strategy - Campaign plan"))
    run(calls, clock)
    reply_to(calls, calls.received_by(CLIENT)[-1], "Hmm, maybe the later one?")
    run(calls, clock)
    which = calls.received_by(CLIENT)[-1]
    assert "Which time suits you" in which["Subject"]
    assert len(options_in(which)) == len(call_row(calls).offered.split(","))
    assert call_row(calls).state == "proposed"


def test_calendar_down_keeps_the_choice_tells_the_client_and_books_later(
        tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHD_TEST_CALDAV", PASSWORD)
    server = Radicale().start()
    try:
        server.make_calendar("morgan")
        server.make_calendar("ben-morgan")
        write_config(tmp_path, dovecot.port, smtp.port, mailbox="requests-down@agency.test",
                     extra=booking_table(server, "morgan"))
        deployment = Deployment(tmp_path, dovecot, smtp, "requests-down@agency.test")
        clock = FrozenClock(MONDAY)
        deployment.deliver(make_mail("[Acme] - Strategy - Q1 plan"))
        run(deployment, clock)
        offer = deployment.received_by(CLIENT)[-1]
        server.pause()
        reply_to(deployment, offer, "3")
        run(deployment, clock)
        run(deployment, clock)  # the retry is not due yet: nothing more is sent
        call = call_row(deployment)
        assert call.state == "holding" and call.attempts == 1 and call.start is not None
        told = [m for m in deployment.received_by(CLIENT) if "We have your time" in m["Subject"]]
        assert len(told) == 1
        server.resume()
        clock.advance(minutes=6)
        run(deployment, clock)
        call = call_row(deployment)
        assert call.state == "booked"
        assert starts_in(server, "morgan", call.uid) == [as_utc(call.start)]
        assert str(calendar_part(deployment.received_by(CLIENT)[-1])["method"]) == "REQUEST"
    finally:
        server.stop()


def test_staff_schedule_proposes_times_on_any_task(calls: Deployment) -> None:
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Content - Blog post"))
    run(calls, clock)
    assert call_row(calls) is None, "Content needs no call"
    notice = calls.received_by("ben@agency.test")[-1]
    calls.deliver(make_mail(f"Re: {notice['Subject']}", sender="ben@agency.test", body="schedule 30 minutes",
                            to=notice["Reply-To"], headers={"In-Reply-To": notice["Message-ID"]}))
    run(calls, clock)
    call = call_row(calls)
    assert call is not None and call.duration_minutes == 30 and call.state == "proposed"
    offer = calls.received_by(CLIENT)[-1]
    assert "Times for our call" in offer["Subject"] and "30 minutes" in offer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    with calls.session() as session:
        staff = session.exec(select(CallAttendee).where(CallAttendee.role == "staff")).all()
        assert [a.address for a in staff] == ["ben@agency.test"], "the one who asked for the call attends"


def test_check_connect_reads_each_calendar(calls: Deployment, radicale: Radicale) -> None:
    config = load_config(calls.config)
    found = {p.what: p for p in probe_all(config) if p.what.startswith("CalDAV")}
    assert found["CalDAV morgan@agency.test"].ok and "busy times in the next 7 days" in found[
        "CalDAV morgan@agency.test"].detail
    broken = calls.config.read_text().replace(f'Ben = "{radicale.url}dispatchd/ben-', f'Ben = "{radicale.url}nobody/ben-')
    calls.config.write_text(broken)
    found = {p.what: p for p in probe_all(load_config(calls.config)) if p.what.startswith("CalDAV")}
    assert not found["CalDAV ben@agency.test"].ok and "[booking.calendars]" in found["CalDAV ben@agency.test"].detail
