"""SIGKILL in the middle of pruning (and of erasure): the database stays consistent, nothing
named is lost, and running the command again finishes the work."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.store.db import close_engines
from tests.conftest import write_config
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
_uids = itertools.count(1)
LONG_AGO = datetime.now(timezone.utc) - timedelta(days=600)


def populate(tmp_path: Path, requests: int, extra: str) -> IntakeDeps:
    """Requests ingested 600 to 580 days ago, closed, their blob files as old as they are."""
    deps = build_deps(load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=extra)),
                      clock=FrozenClock(LONG_AGO))
    for n in range(requests):
        message = EmailMessage()
        message["From"], message["To"] = f"person{n % 7}@acme.test", "requests@agency.test"
        message["Subject"], message["Message-ID"] = f"[Acme] - Content - Request {n}", f"<kill-{n}@client.test>"
        message.set_content(f"Please, number {n}.")
        message.add_attachment(f"%PDF {n}".encode(), maintype="application", subtype="pdf", filename="brief.pdf")
        assert ingest(RawMail("INBOX", 1, next(_uids), message.as_bytes()), deps).task_id is not None
        deps.clock.advance(minutes=3)  # type: ignore[attr-defined]  # a day's mail, not a flood
    with sqlite3.connect(tmp_path / "dispatchd.db") as db:
        db.execute("UPDATE task SET status = 'closed'")
    for digest in deps.blobs.digests():
        os.utime(deps.blobs.path_of(digest), (LONG_AGO.timestamp(),) * 2)
    close_engines()
    return deps


def query(database: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(database, timeout=5) as db:
        return db.execute(sql).fetchall()


def audit(database: Path, blobs: Path) -> None:
    """Consistent: integrity and foreign keys hold, every blob a row names is on disk."""
    assert query(database, "PRAGMA integrity_check") == [("ok",)]
    assert query(database, "PRAGMA foreign_key_check") == []
    names = {d for (d,) in query(database, "SELECT raw_sha256 FROM inbound_message UNION SELECT sha256 FROM attachment")}
    assert all((blobs / d[:2] / d).is_file() for d in names if d)


def start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """The command in a process of its own, to be killed."""
    with open(config.parent / "killed.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "dispatchd", *args, "--config", str(config)],
                                stdout=log, stderr=log, start_new_session=True)


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatchd", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=120)


def test_sigkill_mid_prune_then_rerun_finishes(tmp_path: Path) -> None:
    total = 400
    populate(tmp_path, total, '[retention]\nraw_mail = "400 days"\nattachments = "400 days"\nbatch = 10\n')
    database, blobs = tmp_path / "dispatchd.db", tmp_path / "data" / "blobs"
    process = start(tmp_path / "config.toml", "prune")
    try:
        wait_for(lambda: query(database, "SELECT count(*) FROM inbound_message WHERE raw_sha256 = ''")[0][0] > 0,
                 timeout=60, what="pruning under way")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    pruned = query(database, "SELECT count(*) FROM inbound_message WHERE raw_sha256 = ''")[0][0]
    (counts, finished), = query(database, "SELECT counts, finished_at FROM lifecycle_run")
    assert 0 < pruned < total and finished is None, "killed mid-run"
    assert json.loads(counts).get("raw_mail", 0) == pruned, "what it recorded is what it did"
    audit(database, blobs)
    again = run(tmp_path / "config.toml", "prune", "--json")
    assert again.returncode == 0, again.stderr
    audit(database, blobs)
    assert query(database, "SELECT count(*) FROM inbound_message WHERE raw_sha256 != ''") == [(0,)]
    assert query(database, "SELECT count(*) FROM attachment WHERE sha256 != ''") == [(0,)]
    assert not any(p for p in blobs.glob("??/*")), "every blob released by either run is gone"
    assert query(database, "SELECT count(*) FROM blob_release") == [(0,)]
    assert query(database, "SELECT count(*) FROM task") == [(total,)]


def test_sigkill_mid_forget_then_rerun_finishes(tmp_path: Path) -> None:
    total = 280  # person0 … person6: 40 requests each
    populate(tmp_path, total, '[retention]\nbatch = 10\n')
    database, blobs = tmp_path / "dispatchd.db", tmp_path / "data" / "blobs"
    statistics = "SELECT type, queue, status, count(*) FROM task GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    before = query(database, statistics)
    process = start(tmp_path / "config.toml", "forget", "person3@acme.test")
    try:
        wait_for(lambda: query(database, "SELECT count(*) FROM task_event WHERE actor LIKE 'person-%'")[0][0] > 0,
                 timeout=60, what="erasure under way")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert query(database, "SELECT finished_at FROM lifecycle_run") == [(None,)], "killed mid-run"
    assert query(database, "SELECT count(*) FROM inbound_message WHERE sender = 'person3@acme.test'")[0][0] == 40 or \
        query(database, "SELECT count(*) FROM task_event WHERE lower(actor) = 'person3@acme.test'")[0][0] > 0, \
        "some of the work left for the rerun"
    audit(database, blobs)
    again = run(tmp_path / "config.toml", "forget", "person3@acme.test")
    assert again.returncode == 0, again.stderr
    assert "erased 40 task(s)" in again.stdout
    audit(database, blobs)
    assert query(database, statistics) == before
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            assert b"person3@acme.test" not in path.read_bytes(), path
    assert not [p for p in blobs.glob("??/*") if b"person3@acme.test" in p.read_bytes()]
    assert query(database, "SELECT count(*) FROM task WHERE sender = 'person4@acme.test'") == [(40,)]
