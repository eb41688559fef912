"""A client's pages at a large database (issue 14): ``python -m bench.client_pages [--tasks N]``.

Builds a SQLite database with N tasks (default 50,000) of which ``--share`` (default 80 %)
belong to one client, Acme (the worst case: its list is the longest), each with the events
intake and staff leave, and one request with a long history (40 events, 10 emails each way).
Then it asks the real app (``create_app``, in process through httpx's ASGI transport: routing,
the link's signature and revocation check, the queries, the template; no network) for:

- the first page of Acme's requests (50 newest of 40,000),
- a page deep in the list (``?before=`` the middle),
- the request page with the long history,

``--runs`` times each (default 200, after 20 warm-up requests) and prints p50, p95 and the
worst in milliseconds. The target: p95 <= 200 ms for a client page.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import insert

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.links import sign_link
from dispatchd.logging import configure_logging
from dispatchd.mail.compose import OutboundMail, compose
from dispatchd.store.tables import InboundMessage, Outbox, Task, TaskEvent
from dispatchd.web.app import create_app
from tests.conftest import write_config

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
STATUSES = ["queued", "in_progress", "in_review", "delivered", "closed", "revisions_needed"]
WEB = '[web]\nbase_url = "https://dispatch.example.com"\n'


def build(root: Path, tasks: int, share: float) -> tuple[object, int, int]:
    """The database; returns the deps, the long-history task's id and Acme's middle task id."""
    write_config(root, mailbox="requests@agency.test", extra=WEB)
    deps = build_deps(load_config(root / "config.toml", credentials=False), FrozenClock(NOW))
    acme_every = max(1, round(1 / share)) if share < 1 else 1
    task_rows, event_rows = [], []
    acme_ids = []
    for n in range(tasks):
        created = NOW - timedelta(minutes=(tasks - n) * 20)
        acme = (n % 5 != 0) if share == 0.8 else (n % acme_every == 0)
        status = STATUSES[n % len(STATUSES)]
        task_rows.append(dict(id=n + 1, client="Acme" if acme else "Globex", type="Content", queue="content",
                              priority="P2", status=status, description=f"Blog post number {n}",
                              subject=f"[Acme] - Content - Blog post number {n}", sender="bob@acme.test",
                              assignee="ana@agency.test", sla="5 business days", message_id=f"<b-{n}@acme.test>",
                              created_at=created, updated_at=created + timedelta(hours=3),
                              due_at=created + timedelta(days=7), due_explanation=""))
        if acme:
            acme_ids.append(n + 1)
        event_rows.append(dict(task_id=n + 1, at=created, actor="bob@acme.test", kind="received",
                               to_status="received"))
        event_rows.append(dict(task_id=n + 1, at=created, actor="dispatchd", kind="routed", from_status="received",
                               to_status="queued", detail="rule: type Content"))
        if status != "queued":
            event_rows.append(dict(task_id=n + 1, at=created + timedelta(hours=3), actor="ana@agency.test",
                                   kind="status", from_status="queued", to_status=status))
    long_id = acme_ids[-1]
    for k in range(40):
        event_rows.append(dict(task_id=long_id, at=NOW - timedelta(hours=40 - k),
                               actor="bob@acme.test" if k % 2 else "ana@agency.test",
                               kind="comment", detail=f"Comment {k}: " + "words " * 30))
    event_rows = [{"from_status": None, "to_status": None, "message_id": None, "detail": "", **r} for r in event_rows]
    inbound, outbox = [], []
    for k in range(10):
        raw = (f"From: bob@acme.test\r\nTo: requests@agency.test\r\nSubject: Re: [#{long_id}] Blog\r\n"
               f"Message-ID: <r{k}@acme.test>\r\n\r\nReply {k}: " + "text " * 80 + "\r\n").encode()
        inbound.append(dict(account="requests@agency.test@127.0.0.1:1143", folder="INBOX", uidvalidity=1, uid=k + 1,
                            mailbox_address="requests@agency.test", message_id=f"<r{k}@acme.test>",
                            dedup_key=f"requests@agency.test|<r{k}@acme.test>", sender="bob@acme.test",
                            subject=f"Re: [#{long_id}] Blog", received_at=NOW - timedelta(hours=20 - k),
                            disposition="reply", reason="", task_id=long_id, raw_sha256=deps.blobs.put(raw),
                            size=len(raw), acknowledged=True, body_hash=None, unmovable=None))
        mail = OutboundMail(kind="client-status", to=("bob@acme.test",), subject=f"[#{long_id}] In progress",
                            text=f"Status {k}: " + "text " * 80, html="<p>status</p>", task_id=long_id)
        message_id = f"<dispatchd.{long_id}.{k:012x}@agency.test>"
        outbox.append(dict(message_id=message_id, task_id=long_id, kind="client-status", envelope_from="x@agency.test",
                           recipients="bob@acme.test", subject=mail.subject,
                           raw=compose(mail, "requests@agency.test", "requests@agency.test", message_id, NOW),
                           status="sent", attempts=1, next_attempt_at=NOW, last_error="",
                           created_at=NOW - timedelta(hours=19 - k)))
    with deps.engine.begin() as connection:
        for table, rows in ((Task, task_rows), (TaskEvent, event_rows), (InboundMessage, inbound), (Outbox, outbox)):
            for start in range(0, len(rows), 5000):
                connection.execute(insert(table.__table__), rows[start:start + 5000])  # type: ignore[attr-defined]
    return deps, long_id, acme_ids[len(acme_ids) // 2]


async def measure(deps, paths: dict[str, str], runs: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    app = create_app(lambda: deps)
    timings: dict[str, list[float]] = {name: [] for name in paths}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for name, path in paths.items():
            for _ in range(20):
                assert (await client.get(path)).status_code == 200, name
            for _ in range(runs):
                started = time.perf_counter()
                response = await client.get(path)
                timings[name].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--share", type=float, default=0.8, help="Acme's share of the tasks")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory(prefix="dispatchd-bench-web-") as directory:
        started = time.perf_counter()
        deps, long_id, middle = build(Path(directory), args.tasks, args.share)
        print(f"built {args.tasks:,} tasks in {time.perf_counter() - started:.1f} s")
        token = sign_link(deps.web_secret, "Acme", "bob@acme.test", NOW, timedelta(days=90))  # type: ignore[attr-defined]
        paths = {"requests, first page": f"/c/{token}", "requests, deep page": f"/c/{token}?before={middle}",
                 f"request #{long_id} (40 events, 20 emails)": f"/c/{token}/r/{long_id}"}
        timings = asyncio.run(measure(deps, paths, args.runs))
        print(f"{'page':<42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, values in timings.items():
            values.sort()
            p95 = values[int(len(values) * 0.95) - 1]
            print(f"{name:<42} {statistics.median(values):8.1f} {p95:8.1f} {values[-1]:8.1f}")
        deps.engine.dispose()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
