"""Assignment at size (issue 16): 200 staff, 50,000 open tasks (run on demand).

    python -m bench.assignment                 # SQLite, as shipped
    python -m bench.assignment --tasks 50000 --staff 200 --calls 2000

Builds a config with ``--staff`` people in 10 queues (skills, regions, a language, backups,
some part-timers and max_per_day), a database with ``--tasks`` open tasks (a third assigned,
each person under their WIP limit, the rest waiting; a quarter need a skill), then times what
intake does for every new request — ``flows.assignment.assign``: the loads, absences and
today's counts queries plus the pure choice — over ``--calls`` requests of varied needs. Also
times ``next`` (the puller's best task among 50,000) and the health report's skill-gap lines.
Prints per-call figures (median, p95) and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from dispatchd.calendars import business_calendar
from dispatchd.config import load_config
from dispatchd.devservers import PASSWORD
from dispatchd.domain.eligibility import Needs
from dispatchd.domain.routing import QueuePolicy
from dispatchd.flows.assignment import assign, next_task
from dispatchd.flows.staffing import skill_gaps
from dispatchd.store.db import migrate, open_engine
from dispatchd.store.tables import Task
from tests.conftest import write_config

QUEUES = [f"q{n}" for n in range(10)]
SKILLS = ["shopify", "wordpress", "print", "german", "video", "seo"]
NOW = datetime(2026, 12, 8, 10, 0, tzinfo=timezone.utc)  # a Tuesday, 11:00 in Berlin


def staff_tables(count: int, rng: random.Random) -> str:
    tables = []
    for n in range(count):
        skills = rng.sample(SKILLS, rng.randint(0, 3))
        extra = [f'skills = {skills!r}'.replace("'", '"'), f'wip_limit = {rng.randint(3, 10)}']
        if n % 7 == 0:
            extra.append('regions = ["DACH"]')
        if n % 5 == 0:
            extra.append(f'backup = "P{(n + 1) % count}"')
        if n % 11 == 0:
            extra.append('workdays = ["mon", "tue", "wed"]\nhours = "09:00-13:00"')
        if n % 13 == 0:
            extra.append("max_per_day = 5")
        queues = sorted({QUEUES[n % 10], QUEUES[(n * 3) % 10]})
        tables.append(f'[[staff]]\nname = "P{n}"\nemail = "p{n}@agency.test"\nqueues = {queues!r}\n'.replace("'", '"')
                      + "\n".join(extra) + "\n")
    return "\n".join(tables) + '\n[[clients]]\nname = "Kunde"\nsenders = ["*@kunde.test"]\nlanguage = "german"\n' \
                                 'region = "DACH"\n'


def fill(engine, config, tasks: int, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    room = {p.email: p.wip_limit - 1 for p in config.staff}
    rows = []
    for n in range(tasks):
        queue = rng.choice(QUEUES)
        members = [p.email for p in config.staff if queue in p.queues and room[p.email] > 0]
        assignee = None
        if n % 3 == 0 and members:
            assignee = rng.choice(members)
            room[assignee] -= 1
        needs = rng.choice(SKILLS) if n % 4 == 0 else ""
        created = NOW - timedelta(minutes=tasks - n)
        rows.append(dict(client=rng.choice(["Acme", "Globex", "Kunde"]), type="Content", queue=queue,
                         priority=rng.choice(["P1", "P2", "P2", "P3"]), status="queued" if assignee is None
                         else rng.choice(["queued", "in_progress"]), description=f"task {n}", subject=f"task {n}",
                         sender="bob@acme.test", assignee=assignee, sla="5 business days",
                         due_at=created + timedelta(days=rng.randint(1, 10)), message_id=f"<b{n}@x>",
                         created_at=created, updated_at=created, needs=needs,
                         assigned_at=created if assignee else None))
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Task), rows[start:start + 5000])


def timed(calls: int, run) -> list[float]:  # type: ignore[no-untyped-def]
    seconds = []
    for n in range(calls):
        started = time.perf_counter()
        run(n)
        seconds.append(time.perf_counter() - started)
    return seconds


def line(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return (f"{name:<44} median {statistics.median(ordered) * 1000:6.3f} ms   "
            f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:6.3f} ms   ({len(ordered)} calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", PASSWORD)  # the config names it; nothing connects
    rng = random.Random(16)
    root = Path(tempfile.mkdtemp(prefix="dispatchd-bench-assign-"))
    config = load_config(write_config(root, mailbox="requests@agency.test", extra=staff_tables(args.staff, rng)))
    engine = open_engine(config.database_url)
    migrate(engine)
    started = time.perf_counter()
    fill(engine, config, args.tasks, rng)
    print(f"{args.staff} staff, {args.tasks:,} open tasks loaded in {time.perf_counter() - started:.1f} s ({root})")
    calendar = business_calendar(config.calendar)
    policies = [QueuePolicy(q, "least_loaded" if n % 2 else "round_robin") for n, q in enumerate(QUEUES)]
    needs = [Needs(), Needs(frozenset({"shopify"})), Needs(frozenset({"german"}), "DACH"),
             Needs(frozenset({"print", "seo"})), Needs(prefer=("P3",))]
    with Session(engine) as session:
        assign(session, "q0", policies[0], needs[0], config, NOW, calendar)  # warm the statement cache
        per_request = timed(args.calls, lambda n: assign(session, QUEUES[n % 10], policies[n % 10],
                                                         needs[n % len(needs)], config, NOW, calendar))
        pullers = [p for p in config.staff if p.skills][:50]
        pulls = timed(min(args.calls, 200), lambda n: next_task(
            session, pullers[n % len(pullers)].queues, {}, pullers[n % len(pullers)], config))
        gaps = timed(5, lambda n: skill_gaps(session, config, NOW))
    print(line("assign (intake, per new request)", per_request))
    print(line("next (the puller's best task they can do)", pulls))
    print(line("health report skill gaps (all open tasks)", gaps))
    target = statistics.median(per_request) * 1000
    print(f"target <= 2 ms per request: {'met' if target <= 2 else 'MISSED'} ({target:.3f} ms median)")


if __name__ == "__main__":
    main()
