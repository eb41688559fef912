"""Calls booked by email, end to end: real Dovecot, the SMTP sink and a real CalDAV server
(Radicale), with a frozen clock. A Strategy request gets proposed times that avoid what is in
the attendee's calendar; the client's "2" puts the event there at the right instant and both
sides get an invitation with the same UID; the reminder goes out once; "reschedule" cancels
and re-invites with a higher SEQUENCE; a calendar's Accept is recorded, never answered; two
picks of one time book it once; a time that got busy since it was offered, and an unclear
answer, get fresh times or a "which one?"."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from dispatchd.clock import FrozenClock, as_utc
from dispatchd.config import load_config
from dispatchd.daemon import build_deps, build_outbox
from dispatchd.flows import booking as booking_flow
from dispatchd.flows.booking import book_calls
from dispatchd.store.tables import CallAttendee, CallBooking
from tests.integration.conftest import Deployment, make_mail
from tests.integration.radicale import Radicale
# calendar_name and radicale: fixtures that calls uses
from tests.integration.bookings import (CLIENT, MONDAY, MORGAN, accept_mail, calendar_name, calendar_part,  # noqa: F401
                                        call_row, call_state_of, calls, calls_on_postgres, close, events_of,
                                        options_in, radicale, reply_to, run, starts_in)

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


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
