"""Booking calls at the edges: a time chosen on the client's web page, the calendar server
down (the choice kept, the client told once, booked on a retry), a staff 'schedule' on any
task, and `check --connect` reading each calendar. Real Dovecot, SMTP sink and Radicale."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from dispatchd.clock import FrozenClock, as_utc
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.devservers import Dovecot, SmtpCapture
from dispatchd.probes import probe_all
from dispatchd.store.tables import CallAttendee
from dispatchd.web.app import create_app
from tests.conftest import write_config
from tests.integration.bookings import booking_table
from tests.integration.conftest import Deployment, make_mail
from tests.integration.radicale import PASSWORD, Radicale
from tests.integration.webtools import free_port, web_table
# calendar_name and radicale: fixtures that calls uses
from tests.integration.bookings import (CLIENT, MONDAY, calendar_name, calendar_part, call_row, calls,  # noqa: F401
                                        close, options_in, radicale, reply_to, run, starts_in)

pytestmark = pytest.mark.integration


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


def test_a_cancelled_request_cancels_its_booked_call(calls: Deployment, radicale: Radicale) -> None:
    clock = FrozenClock(MONDAY)
    calls.deliver(make_mail("[Acme] - Strategy - A plan we will not need"))
    run(calls, clock)
    reply_to(calls, calls.received_by(CLIENT)[-1], "1")
    run(calls, clock)
    call = call_row(calls)
    assert call.state == "booked" and starts_in(radicale, calls.calendar, call.uid)  # type: ignore[attr-defined]
    notice = calls.received_by("morgan@agency.test")[0]  # the new-task notice, signed for Morgan
    calls.deliver(make_mail(f"Re: {notice['Subject']}", sender="morgan@agency.test", body="cancel",
                            to=notice["Reply-To"], headers={"In-Reply-To": notice["Message-ID"]}))
    run(calls, clock)
    assert calls.tasks()[-1].status == "cancelled" and call_row(calls).state == "cancelled"
    assert starts_in(radicale, calls.calendar, call.uid) == []  # type: ignore[attr-defined]
    cancel = calendar_part(calls.received_by(CLIENT)[-1])
    assert str(cancel["method"]) == "CANCEL" and str(cancel.walk("VEVENT")[0]["uid"]) == call.uid
