"""Backups, retention and erasure at a large database (issue 18): ``python -m bench.lifecycle [--tasks N]``.

Builds a SQLite database with N tasks (default 50,000) received evenly over three years, half
of them closed, each with its raw email (~2 KB) in the blob store, every tenth with a 20 KB
attachment, two audit events and a confirmation in the outbox. Then, timed:

- ``backup`` into an empty directory (every blob copied), and again after 500 more requests
  (only the new blobs copied); ``verify-backup``; ``restore`` into an empty directory;
- ``prune`` with raw_mail = 400 days, attachments = 2 years, outbox_sent = 90 days, while a
  thread writes a small transaction every 10 ms as intake does: its longest wait is the
  longest intake would have waited for pruning;
- ``forget`` of one requester (1/97 of the tasks).

The blob files of the set-up are written without fsync (the set-up is not what is measured).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, text

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.config.model import RetentionConfig
from dispatchd.daemon import build_deps
from dispatchd.flows.backup import backup
from dispatchd.flows.erasure import erasure_secret, forget
from dispatchd.flows.restore import restore, verify_backup
from dispatchd.flows.retention import prune
from dispatchd.logging import configure_logging
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Attachment, InboundMessage, Outbox, Task, TaskEvent
from tests.conftest import write_config

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
SPAN = timedelta(days=3 * 365)


def raw_mail(n: int, sender: str) -> bytes:
    body = (f"Hello team,\n\nplease see request {n}. " + "Details of the work follow. " * 60).encode()
    return (f"From: Client {n % 97} <{sender}>\r\nTo: requests@agency.test\r\nSubject: [Acme] - Content - "
            f"Request {n}\r\nMessage-ID: <bench-{n}@client.test>\r\n\r\n").encode() + body


def store_blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = root / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old = (NOW - SPAN).timestamp()
    os.utime(path, (old, old))  # as old as the mail: removable when its rows let go of it
    return digest


def build(root: Path, tasks: int, first_id: int = 1):  # type: ignore[no-untyped-def]
    root.mkdir(parents=True, exist_ok=True)
    write_config(root, mailbox="requests@agency.test")
    deps = build_deps(load_config(root / "config.toml"), FrozenClock(NOW))
    blobs = deps.blobs.root
    task_rows, event_rows, inbound_rows, attachment_rows, outbox_rows = [], [], [], [], []
    for n in range(first_id, first_id + tasks):
        sender = f"c{n % 97}@acme.test"
        at = NOW - SPAN * (1 - n / (first_id + tasks))
        status = "closed" if n % 2 else "in_progress"
        task_rows.append(dict(id=n, client="Acme", type="Content", queue="content", priority="P2", status=status,
                              description=f"Request {n}", subject=f"Request {n}", sender=sender,
                              sender_name=f"Client {n % 97}", sla="5 business days", message_id=f"<bench-{n}@client.test>",
                              created_at=at, updated_at=at + timedelta(days=3)))
        raw = raw_mail(n, sender)
        inbound_rows.append(dict(id=n, account="bench", folder="INBOX", uidvalidity=1, uid=n,
                                 mailbox_address="requests@agency.test", message_id=f"<bench-{n}@client.test>",
                                 dedup_key=f"<bench-{n}@client.test>|requests@agency.test", sender=sender,
                                 subject=f"Request {n}", received_at=at, disposition="task", reason="", task_id=n,
                                 raw_sha256=store_blob(blobs, raw), size=len(raw), acknowledged=True))
        if n % 10 == 5:  # on closed tasks (odd ids): prunable when old enough
            data = os.urandom(20_000)
            attachment_rows.append(dict(task_id=n, inbound_id=n, filename="brief.pdf", content_type="application/pdf",
                                        size=len(data), sha256=store_blob(blobs, data)))
        for kind, actor in (("received", sender), ("assigned", "ana@agency.test")):
            event_rows.append(dict(task_id=n, at=at, actor=actor, kind=kind, detail="", from_status=None,
                                   to_status=None, message_id=None))
        outbox_rows.append(dict(message_id=f"<out-{n}@agency.test>", task_id=n, kind="client-received",
                                envelope_from="requests@agency.test", recipients=sender, subject=f"Re: Request {n}",
                                raw=raw[:1800], status="sent", attempts=1, next_attempt_at=at, sent_at=at,
                                last_error="", created_at=at))
    with write_turn(deps.engine), deps.engine.begin() as connection:
        for model, rows in ((Task, task_rows), (InboundMessage, inbound_rows), (Attachment, attachment_rows),
                            (TaskEvent, event_rows), (Outbox, outbox_rows)):
            for start in range(0, len(rows), 5000):
                connection.execute(insert(model.__table__), rows[start:start + 5000])  # type: ignore[attr-defined]
    return deps


def timed(label: str, action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = action()
    print(f"{label:<48} {time.perf_counter() - started:8.2f} s")
    return result


def longest_intake_wait(deps, action):  # type: ignore[no-untyped-def]
    """Run ``action`` while another thread commits a one-row transaction every 10 ms, as intake
    would; returns (action's result, longest wait in seconds, commits made meanwhile)."""
    waits: list[float] = []
    stop = threading.Event()

    def intake() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            with write_turn(deps.engine), deps.engine.begin() as connection:
                connection.execute(text("UPDATE meta SET value = value WHERE key = 'schema_version'"))
            waits.append(time.perf_counter() - started)
            time.sleep(0.01)

    writer = threading.Thread(target=intake)
    writer.start()
    try:
        result = action()
    finally:
        stop.set()
        writer.join()
    return result, max(waits, default=0.0), len(waits)


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    args = parser.parse_args()
    configure_logging("warning", "console")
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", "bench")  # the config names it; nothing logs in
    with tempfile.TemporaryDirectory(prefix="dispatchd-lifecycle-") as scratch:
        root = Path(scratch)
        deps = timed(f"set-up: {args.tasks} tasks", lambda: build(root / "live", args.tasks))
        database = root / "live" / "dispatchd.db"
        print(f"  database {database.stat().st_size / 1e6:.0f} MB, blob store {size_mb(deps.blobs.root):.0f} MB "
              f"in {len(list(deps.blobs.digests()))} files")
        first = timed("backup, first (every blob copied)", lambda: backup(deps.engine, deps.blobs, root / "b", NOW))
        print(f"  {first.blobs_copied} blobs, {first.bytes_copied / 1e6:.0f} MB copied")
        build(root / "live", 500, first_id=args.tasks + 1)
        second = timed("backup, second (after 500 more requests)",
                       lambda: backup(deps.engine, deps.blobs, root / "b", NOW + timedelta(hours=1)))
        print(f"  {second.blobs_copied} blobs, {second.bytes_copied / 1e6:.1f} MB copied")
        verified = timed("verify-backup (checksums, integrity_check, blobs)", lambda: verify_backup(root / "b"))
        assert verified.ok, verified.problems
        timed("restore into an empty directory",
              lambda: restore(root / "b", root / "restored" / "dispatchd.db", root / "restored" / "data"))
        retention = RetentionConfig(raw_mail=timedelta(days=400), attachments=timedelta(days=730),
                                    outbox_sent=timedelta(days=90))
        dry = timed("prune --dry-run", lambda: prune(deps.engine, deps.blobs, retention, NOW, dry_run=True))
        (report, wait, commits) = timed("prune (raw 400 d, attachments 2 y, sent 90 d)",
                                        lambda: longest_intake_wait(deps, lambda: prune(
                                            deps.engine, deps.blobs, retention, NOW)))
        print(f"  {dict(report.counts)} rows, {report.blobs_removed} blob files removed, "
              f"{report.bytes_freed / 1e6:.0f} MB freed (dry run said {dry.bytes_freed / 1e6:.0f} MB)")
        print(f"  longest batch (write turn held): {report.longest_batch * 1000:.0f} ms; a writer committing every "
              f"10 ms meanwhile: {commits} commits, longest wait {wait * 1000:.0f} ms")
        erasure, wait, commits = timed("forget one requester (1/97 of the tasks)", lambda: longest_intake_wait(
            deps, lambda: forget(deps.engine, deps.blobs, "c5@acme.test", erasure_secret(deps.engine), NOW)))
        print(f"  {erasure.tasks} tasks, {sum(erasure.rows.values())} rows; writer's longest wait {wait * 1000:.0f} ms")


if __name__ == "__main__":
    main()
