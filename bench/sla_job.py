"""The SLA job's cost at a large backlog (issue 21, 7): ``python -m bench.sla_job [--tasks N]``.

Builds a SQLite database with N open tasks (default 50,000) whose ages are spread evenly over
``--max-age-days`` (default 730), with the event history intake and staff leave (received;
for two in three an assignment by a person, for one in three a status change), a mix of
priorities and SLAs in business and wall-clock time, in the real calendar (Europe/Berlin with
German holidays). Then it runs ``check_slas`` as the daemon does every 5 minutes and prints
seconds per run; nothing is sent (the outbox rows stay in the database).

By default the thresholds that tasks past their due time crossed long ago are recorded as
announced (``sla_notice``), as they are in a database the job has been running on: every run
is then the steady state the daemon pays every 5 minutes. ``--fresh`` leaves them out, and the
first run announces (renders, queues, escalates) every one of them: the one-off catch-up.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.sla import due_at, parse_sla
from dispatchd.flows.sla import check_slas
from dispatchd.logging import configure_logging
from dispatchd.store.tables import SlaNotice, Task, TaskEvent
from tests.conftest import write_config

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)  # a Wednesday morning in Berlin
SHAPES = [  # (priority, type, queue, sla)
    ("P2", "Content", "content", "5 business days"), ("P2", "Design", "design", "3 business days"),
    ("P1", "Technical", "dev", "24 hours"), ("P3", "Strategy", "strategy", "2 weeks"),
    ("P0", "Technical", "dev", "4 hours"), ("P2", "Technical", "dev", "48 hours"),
]
STATUSES = ["queued", "in_progress", "in_review", "delivered", "revisions_needed"]


def build(root: Path, tasks: int, max_age_days: float, announced: bool = True) -> FrozenClock:
    write_config(root, mailbox="requests@agency.test")
    clock = FrozenClock(NOW)
    deps = build_deps(load_config(root / "config.toml"), clock)
    staff = ["ana@agency.test", "ben@agency.test"]
    task_rows, event_rows, notice_rows = [], [], []
    for n in range(tasks):
        priority, kind, queue, sla = SHAPES[n % len(SHAPES)]
        created = NOW - timedelta(days=max_age_days * (n + 1) / tasks)
        status = STATUSES[n % len(STATUSES)] if n % 3 else "queued"
        task_rows.append(dict(id=n + 1, client="Acme", type=kind, queue=queue, priority=priority, status=status,
                              description=f"Benchmark {n}", subject=f"[Acme] - {kind} - Benchmark {n}",
                              sender=f"c{n % 97}@acme.test", sla=sla, message_id=f"<sla-{n}@client.test>",
                              created_at=created, updated_at=created,
                              due_at=due_at(created, parse_sla(sla), deps.calendar).at))
        if announced and task_rows[-1]["due_at"] < NOW - timedelta(days=1):
            for which, level in (("resolution", "warning"), ("resolution", "breach"), ("first_response", "warning"),
                                 ("first_response", "breach")):
                if which == "resolution" or n % 3 == 0:  # without a staff action, the first response breached
                    notice_rows.append(dict(task_id=n + 1, clock=which, level=level, sent_at=created))
        event_rows.append(dict(task_id=n + 1, at=created, actor=f"c{n % 97}@acme.test", kind="received",
                               to_status="queued", detail=""))
        if n % 3:
            acted = created + timedelta(minutes=30 + n % 600)
            event_rows.append(dict(task_id=n + 1, at=acted, actor=staff[n % 2], kind="assigned", detail=""))
            if status != "queued":
                event_rows.append(dict(task_id=n + 1, at=acted + timedelta(hours=2), actor=staff[n % 2],
                                       kind="status", from_status="queued", to_status=status, detail=""))
    event_rows = [{"from_status": None, "to_status": None, "message_id": None, **row} for row in event_rows]
    with deps.engine.begin() as connection:
        for start in range(0, len(task_rows), 5000):
            connection.execute(insert(Task.__table__), task_rows[start:start + 5000])  # type: ignore[attr-defined]
        for start in range(0, len(event_rows), 5000):
            connection.execute(insert(TaskEvent.__table__), event_rows[start:start + 5000])  # type: ignore[attr-defined]
        for start in range(0, len(notice_rows), 5000):
            connection.execute(insert(SlaNotice.__table__), notice_rows[start:start + 5000])  # type: ignore[attr-defined]
    deps.engine.dispose()
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--max-age-days", type=float, default=730)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="nothing announced yet: the first run catches up")
    args = parser.parse_args()
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", "unused")  # the config names an IMAP password; no IMAP here
    configure_logging("error", "json")  # one warning per notice would be the benchmark's largest cost
    root = Path(tempfile.mkdtemp(prefix="dispatchd-sla-bench-"))
    started = time.perf_counter()
    clock = build(root, args.tasks, args.max_age_days, announced=not args.fresh)
    print(f"built {args.tasks} open tasks over {args.max_age_days:g} days in {time.perf_counter() - started:.1f} s"
          f" ({root})")
    deps = build_deps(load_config(root / "config.toml"), clock)
    for run in range(args.runs):
        started = time.perf_counter()
        sent = check_slas(deps)
        elapsed = time.perf_counter() - started
        print(f"run {run + 1}: {elapsed:6.2f} s  notices {sum(sent.values())}  {dict(sorted(sent.items()))}")
        clock.advance(minutes=5)


if __name__ == "__main__":
    main()
