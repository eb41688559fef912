"""The staff pages at 50,000 tasks, and what serving them costs intake (issue 14):
``python -m bench.web_staff [--tasks N] [--requests R] [--intake M] [--pairs P]``.

1. Builds a SQLite database of N tasks (default 50,000) that arrived evenly over a year (about
   135 a day), each with the history intake and staff leave: received and routed; assigned,
   started, sent for review, approved, delivered and closed as far as its age has carried it
   (one in 12 delivered after its due time, one in 40 cancelled, one in 30 sent back for
   revision once). The last days' work is still open: a backlog of a few hundred.
2. Times each page server side, in process (the app's own ASGI call through httpx, the template
   rendered, no network): the dashboard for 14 and 30 days, the task list filtered by queue and
   status, by assignee, by a search word, a task page and the triage queue; R requests each
   (default 40) after one warm-up, p50 and p95.
3. Intake's throughput on a backlog of M requests (default 1,000, each from an address and with
   words of its own, ``ingest_run`` in runs of 50 as the daemon takes them): not served, served
   idle by uvicorn in a thread of the same process (as ``[web] listen`` does), and served while
   a staff member's browser loads the dashboard once a second; P rounds (default 3) in rotating
   order. Besides requests per second (wall clock: it moves with the rest of the machine), the
   share of the process's CPU time that was not intake's own thread.
4. ``--screenshots DIR``: instead, the README's pictures of the pages over this data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import httpx
from sqlalchemy import insert

from dispatchd.clock import FrozenClock, SystemClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.domain.sla import due_at, parse_sla
from dispatchd.flows import dashboard as flows_dashboard
from dispatchd.flows.ingest import IntakeDeps, ingest_run
from dispatchd.logging import configure_logging
from dispatchd.store.tables import RequestText, Task, TaskEvent
from dispatchd.web.app import create_app
from dispatchd.web.server import bind, serve
from tests.conftest import write_config
from tests.integration.webtools import free_port

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
SHAPES = [("P2", "Content", "content", "5 business days", "ana@agency.test"),
          ("P2", "Design", "design", "3 business days", "ben@agency.test"),
          ("P1", "Technical", "dev", "24 hours", "ben@agency.test"),
          ("P3", "Strategy", "strategy", "2 weeks", "morgan@agency.test"),
          ("P2", "Content", "content", "5 business days", "ben@agency.test")]
# status after each step, and how long after arrival the step is taken (hours)
LADDER = [("queued", "routed", 0.01), ("in_progress", "status", 3), ("in_review", "status", 20),
          ("ready_for_delivery", "status", 26), ("delivered", "status", 30), ("closed", "status", 60)]
WORDS = ["launch", "newsletter", "landing page", "logo", "blog post", "pricing", "checkout bug", "brochure"]
WEB = '[web]\ntrusted_header = "X-Remote-User"\n\n[intake]\nmax_replies_per_hour = 1000000  # the intake runs below send thousands of confirmations an hour\n'


def build(root: Path, tasks: int) -> IntakeDeps:
    write_config(root, mailbox="requests@agency.test", extra=WEB)
    deps = build_deps(load_config(root / "config.toml"), FrozenClock(NOW))
    task_rows, event_rows, guesses = [], [], []
    for n in range(tasks):
        priority, kind, queue, sla, person = SHAPES[n % len(SHAPES)]
        created = NOW - timedelta(days=365 * (tasks - n) / tasks)
        due = due_at(created, parse_sla(sla), deps.calendar).at
        late = n % 12 == 0
        age = (NOW - created).total_seconds() / 3600
        task_id = n + 1
        event_rows.append(dict(task_id=task_id, at=created, actor=f"c{n % 97}@acme.test", kind="received",
                               to_status="received"))
        status, previous, assignee = "received", "received", None
        if n % 200 == 7:  # waits for triage, with what the triage model made of it at intake
            queue = "triage"
            guesses.append(dict(task_id=task_id, client="Acme", subject=f"[Acme] - {kind} - {WORDS[n % len(WORDS)]}",
                                body="", origin="model", predicted=SHAPES[(n // 200) % len(SHAPES)][1],
                                confidence=0.35 + (n % 50) / 100, created_at=created))
        else:
            for step, (target, kind_of_event, hours) in enumerate(LADDER):
                at = created + timedelta(hours=hours * (3 if late and target in ("delivered", "closed") else 1))
                if target == "delivered" and late:
                    at = max(at, due + timedelta(hours=5))
                if at > NOW:
                    break
                if step == 1:
                    assignee = person
                    event_rows.append(dict(task_id=task_id, at=at, actor=person, kind="assigned"))
                if n % 40 == 3 and step == 2:
                    target, kind_of_event = "cancelled", "status"
                event_rows.append(dict(task_id=task_id, at=at, actor="dispatchd" if step == 0 else person,
                                       kind=kind_of_event, from_status=previous, to_status=target))
                previous = status = target
                if target == "cancelled":
                    break
                if target == "delivered" and n % 30 == 5:  # sent back once, delivered again
                    event_rows.append(dict(task_id=task_id, at=at + timedelta(hours=2), actor=f"c{n % 97}@acme.test",
                                           kind="status", from_status="delivered", to_status="revisions_needed"))
                    event_rows.append(dict(task_id=task_id, at=at + timedelta(hours=8), actor=person,
                                           kind="status", from_status="revisions_needed", to_status="delivered"))
        word = WORDS[n % len(WORDS)]
        task_rows.append(dict(id=task_id, client="Acme", type=kind, queue=queue, priority=priority, status=status,
                              description=f"{word.capitalize()} {n}", subject=f"[Acme] - {kind} - {word} {n}",
                              sender=f"c{n % 97}@acme.test", sla=sla, message_id=f"<web-{n}@client.test>",
                              created_at=created, updated_at=created, due_at=due, assignee=assignee))
    event_rows = [{"from_status": None, "to_status": None, "message_id": None, "detail": "", **row}
                  for row in event_rows]
    with deps.engine.begin() as connection:
        for start in range(0, len(task_rows), 5000):
            connection.execute(insert(Task.__table__), task_rows[start:start + 5000])  # type: ignore[attr-defined]
        for start in range(0, len(event_rows), 5000):
            connection.execute(insert(TaskEvent.__table__), event_rows[start:start + 5000])  # type: ignore[attr-defined]
        connection.execute(insert(RequestText.__table__), guesses)  # type: ignore[attr-defined]
        connection.exec_driver_sql("ANALYZE")
    print(f"{len(task_rows)} tasks, {len(event_rows)} events")
    return deps


def time_pages(deps: IntakeDeps, requests: int, tasks: int) -> None:
    """Every request computes the dashboard's figures (they are kept for a few seconds when
    served; here each one pays for them), the SLA forecast as served: kept for a minute."""
    flows_dashboard.FIGURES_SECONDS = 0
    app = create_app(lambda: deps)
    pages = {"dashboard, 14 days": "/staff", "dashboard, 30 days": "/staff?days=30",
             "tasks: queue + status": "/staff/tasks?queue=design&status=in_progress",
             "tasks: assignee": "/staff/tasks?assignee=ana%40agency.test",
             "tasks: search": "/staff/tasks?q=newsletter", "tasks: search + queue": "/staff/tasks?q=logo&queue=design",
             "task page": f"/staff/tasks/{tasks // 2}", "triage queue": "/staff/triage"}

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                     headers={"X-Remote-User": "morgan@agency.test"}) as http:
            print(f"{'page':<26} {'p50 ms':>8} {'p95 ms':>8}  (server side, {requests} requests)")
            for name, url in pages.items():
                response = await http.get(url)
                assert response.status_code == 200, (url, response.status_code, response.text[:300])
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await http.get(url)
                    times.append((time.perf_counter() - started) * 1000)
                times.sort()
                print(f"{name:<26} {statistics.median(times):8.1f} {times[int(0.95 * (len(times) - 1))]:8.1f}")

    asyncio.run(run())
    flows_dashboard.FIGURES_SECONDS = 10.0


def requests_mail(count: int, offset: int) -> list[RawMail]:
    raws = []
    for n in range(count):
        message = EmailMessage()
        # A sender and words of its own each: the loop breaker would stop 30 requests an hour from one
        # address (and the same text from many), which is not the intake this measures.
        message["From"], message["To"] = f"client{offset + n}@acme.test", "requests@agency.test"
        message["Subject"] = f"[Acme] - Content - {WORDS[n % len(WORDS)]} {offset + n}"
        message["Message-ID"] = f"<intake-{offset + n}@client.test>"
        message.set_content(f"Please have a look at the {WORDS[n % len(WORDS)]}, item {offset + n}.\n")
        raws.append(RawMail("INBOX", 1, offset + n + 1, message.as_bytes()))
    return raws


def intake_rate(deps: IntakeDeps, raws: list[RawMail]) -> tuple[float, float]:
    """Requests per second of wall-clock time, and the share of this process's CPU time that was
    not intake's own (the web side's, when it is served): the wall clock moves with whatever
    else the machine does, the CPU split does not."""
    started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    for start in range(0, len(raws), 50):
        ingest_run(raws[start:start + 50], deps, deps.config.mailbox)
    total, intake = time.process_time() - cpu, time.thread_time() - own
    return len(raws) / (time.perf_counter() - started), max(0.0, (total - intake) / total)


class ServedWeb:
    """The web side served by uvicorn in a thread of this process, and a staff member's browser
    loading the dashboard once a second."""

    def __init__(self, deps: IntakeDeps, browse: bool = True):
        self.browse = browse
        self.port = free_port()
        self.sock = bind(f"127.0.0.1:{self.port}")
        self.app = create_app(lambda: deps)
        self.loaded = 0

    def __enter__(self) -> ServedWeb:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.server = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)
        self.server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # up and answering before anything is measured
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        self.done = threading.Event()
        self.browser = threading.Thread(target=self._browse, daemon=True)
        self.browser.start()
        return self

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        await serve(self.app, self.sock, self.stop)

    def _browse(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"X-Remote-User": "ben@agency.test"},
                          timeout=30) as http:
            while self.browse and not self.done.wait(1.0):
                try:
                    if http.get("/staff").status_code == 200:
                        self.loaded += 1
                except httpx.TransportError:
                    pass

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.browser.join()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.server.join()
        self.loop.close()


def compare_intake(deps: IntakeDeps, count: int, pairs: int) -> None:
    """Intake's rate not served, served idle, and served while the dashboard loads once a second,
    in rotating order (the database grows with every run: a fixed order would favour the first)."""
    live = build_deps(deps.config, SystemClock())  # intake stamps arrivals with the real time
    offset = 1_000_000
    conditions = ("not served", "served, idle", "served, dashboard 1/s")
    rates: dict[str, list[float]] = {c: [] for c in conditions}
    others: dict[str, list[float]] = {c: [] for c in conditions}
    for round_ in range(pairs):
        for condition in conditions[round_ % 3:] + conditions[:round_ % 3]:
            raws = requests_mail(count, offset)
            offset += count
            loaded = 0
            if condition == "not served":
                rate, other = intake_rate(live, raws)
            else:
                with ServedWeb(live, browse=condition != "served, idle") as web:
                    rate, other = intake_rate(live, raws)
                loaded = web.loaded
            rates[condition].append(rate)
            others[condition].append(other)
            print(f"  {condition:<22} {rate:6.1f} req/s, {100 * other:4.1f} % of the CPU not intake's"
                  f" (dashboard loaded {loaded}x)")
    base = statistics.median(rates["not served"])
    print(f"intake of {count} requests, median of {pairs} runs each (rotating order):")
    for condition in conditions:
        rate = statistics.median(rates[condition])
        print(f"  {condition:<22} {rate:6.1f} req/s ({100 * (base - rate) / base:+.1f} % wall clock, "
              f"{min(rates[condition]):.0f}-{max(rates[condition]):.0f}); CPU not intake's: "
              f"{100 * statistics.median(others[condition]):.1f} %")


def screenshots(deps: IntakeDeps, directory: Path) -> None:
    """The staff pages over the benchmark's data in a headless Chromium, whole pages at desktop
    width and the dashboard at phone width: the README's pictures (``--screenshots docs/screenshots``)."""
    from tests.integration.webtools import DESKTOP, PHONE, chromium

    directory.mkdir(parents=True, exist_ok=True)
    with ServedWeb(deps, browse=False) as web, chromium() as browser:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders",  # type: ignore[attr-defined]
                                {"headers": {"X-Remote-User": "morgan@agency.test"}})
        browser.execute_cdp_cmd("Network.enable", {})  # type: ignore[attr-defined]
        for (width, height), suffix in ((DESKTOP, ""), (PHONE, "-phone")):
            for page, name in (("/staff", "staff-dashboard"), ("/staff/tasks?queue=design", "staff-tasks"),
                               ("/staff/triage", "staff-triage"), ("/staff/tasks/49596", "staff-task")):
                browser.set_window_size(width, height)  # type: ignore[attr-defined]
                browser.get(f"http://127.0.0.1:{web.port}{page}")  # type: ignore[attr-defined]
                tall = browser.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
                browser.set_window_size(width, min(tall + 120, 2400))  # type: ignore[attr-defined]
                browser.save_screenshot(str(directory / f"{name}{suffix}.png"))  # type: ignore[attr-defined]
    print(f"screenshots in {directory}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--intake", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="only take the README's screenshots into DIR")
    args = parser.parse_args()
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", "unused")  # the config names an IMAP password; no IMAP here
    configure_logging("error", "json")
    root = Path(tempfile.mkdtemp(prefix="dispatchd-web-bench-"))
    started = time.perf_counter()
    deps = build(root, args.tasks)
    print(f"built in {time.perf_counter() - started:.1f} s ({root})")
    if args.screenshots:
        screenshots(deps, args.screenshots)
        return
    if args.requests:
        time_pages(deps, args.requests, args.tasks)
    if args.intake:
        compare_intake(deps, args.intake, args.pairs)


if __name__ == "__main__":
    main()
