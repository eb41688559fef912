"""What booking calls costs (issue 17): ``python -m bench.booking [--calls N] [--events-per-day K]``.

1. Slot arithmetic alone (``domain/slots.free_slots`` + ``spread``): three attendees' calendars
   with a month of meetings (K a working day each, seeded at random, 30 to 120 minutes), 30 days
   ahead in 15-minute steps, as the booking job computes for one proposal.
2. Through the real servers (Dovecot, the SMTP sink, Radicale on 127.0.0.1): N Strategy requests
   against one calendar holding a month of meetings; the booking job's time to propose (CalDAV
   free-busy REPORT over the horizon, slots, the email) and, after every client answers with a
   different option, its time to book (claim, re-check, PUT, invitations), per call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatchd.calendars import business_calendar
from dispatchd.clock import FrozenClock
from dispatchd.config import CalendarConfig, load_config
from dispatchd.daemon import Daemon, build_deps, build_outbox
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture
from dispatchd.domain.slots import Interval, SlotRules, free_slots, spread
from dispatchd.flows.booking import book_calls
from dispatchd.logging import configure_logging
from dispatchd.sending import SendLoop
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail
from tests.integration.radicale import PASSWORD as CALDAV_PASSWORD
from tests.integration.radicale import USER as CALDAV_USER
from tests.integration.radicale import Radicale

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=BERLIN)  # a Monday morning


def month_of_meetings(seed: int, per_day: int, days: int = 31) -> list[Interval]:
    rng = random.Random(seed)
    busy = []
    for offset in range(days):
        day = (NOW + timedelta(days=offset)).date()
        if day.weekday() >= 5:
            continue
        for _ in range(per_day):
            start = datetime.combine(day, clock_time(8), tzinfo=BERLIN) + timedelta(minutes=15 * rng.randrange(40))
            busy.append(Interval(start.astimezone(timezone.utc),
                                 (start + timedelta(minutes=rng.choice((30, 45, 60, 90, 120)))).astimezone(timezone.utc)))
    return busy


def bench_slots(per_day: int) -> None:
    calendar = business_calendar(CalendarConfig(timezone="Europe/Berlin", holidays_country="DE"))
    busy = [i for seed in (1, 2, 3) for i in month_of_meetings(seed, per_day)]
    rules = SlotRules(timedelta(minutes=45), timedelta(hours=24), timedelta(minutes=15), timedelta(days=30))
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        starts = free_slots(busy, calendar, NOW, rules)
        chosen = spread(starts, 4, BERLIN)
    elapsed = (time.perf_counter() - started) / runs
    print(f"slots: 3 calendars x {per_day} meetings a working day for a month = {len(busy)} busy intervals; "
          f"30 days ahead in 15-minute steps: {len(starts)} free starts, {len(chosen)} proposed; "
          f"{elapsed * 1000:.2f} ms per computation")


def bench_servers(calls: int, per_day: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Dovecot() as dovecot:
        smtp = SmtpCapture().start()
        radicale = Radicale().start()
        try:
            os.environ["DISPATCHD_TEST_PASSWORD"] = PASSWORD
            os.environ["DISPATCHD_TEST_CALDAV"] = CALDAV_PASSWORD
            radicale.make_calendar("morgan")
            meetings = month_of_meetings(7, per_day)
            for number, meeting in enumerate(meetings):
                radicale.add_busy("morgan", f"meeting-{number}", meeting.start, meeting.end)
            path = Path(tmp)
            write_config(path, dovecot.port, smtp.port, mailbox="requests@agency.test", extra=f"""
[booking]
caldav_url = "{radicale.url}"
username = "{CALDAV_USER}"
password_env = "DISPATCHD_TEST_CALDAV"
proposals = 5
[booking.calendars]
Morgan = "{radicale.calendar_url('morgan')}"
""")
            deployment = Deployment(path, dovecot, smtp, "requests@agency.test")
            clock = FrozenClock(NOW)
            deployment.deliver(*(make_mail(f"[Acme] - Strategy - Plan {n}", sender=f"c{n}@acme.test")
                                 for n in range(calls)))
            deps = build_deps(load_config(deployment.config), clock=clock)
            asyncio.run(Daemon(deps, SendLoop(build_outbox(deps))).run_once())
            started = time.perf_counter()
            proposed = book_calls(deps)
            propose_time = time.perf_counter() - started
            asyncio.run(build_outbox(deps).drain())
            for n in range(calls):
                offer = [m for m in deployment.received_by(f"c{n}@acme.test") if "Times for our call" in m["Subject"]][-1]
                deployment.deliver(make_mail(f"Re: {offer['Subject']}", sender=f"c{n}@acme.test", body=str(n % 5 + 1),
                                             to=offer["Reply-To"], headers={"In-Reply-To": offer["Message-ID"]}))
            asyncio.run(Daemon(deps, SendLoop(build_outbox(deps))).run_once())
            started = time.perf_counter()
            booked = book_calls(deps)
            book_time = time.perf_counter() - started
            deps.engine.dispose()
            # Everyone was offered the same five times (one calendar, one clock): five win them, the
            # rest find theirs taken and get fresh times in the same run.
            print(f"servers: {calls} calls, a calendar with {len(meetings)} meetings in the month: proposing "
                  f"{propose_time / calls * 1000:.0f} ms a call ({dict(proposed)}); the {calls} picks "
                  f"{book_time:.2f} s in all, {book_time / calls * 1000:.0f} ms a pick ({dict(booked)})")
        finally:
            radicale.stop()
            smtp.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--events-per-day", type=int, default=6)
    args = parser.parse_args()
    configure_logging("warning", "console")
    bench_slots(args.events_per_day)
    bench_servers(args.calls, args.events_per_day)


if __name__ == "__main__":
    main()
