"""``dispatchd backup`` while the daemon takes in requests from a real Dovecot, then restore."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def task_ids(database: Path) -> set[int]:
    if not database.exists():
        return set()
    with sqlite3.connect(database, timeout=5) as db:
        try:
            return {row[0] for row in db.execute("SELECT id FROM task")}
        except sqlite3.OperationalError:  # schema not created yet
            return set()


def dispatchd(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: its own process beside the daemon."""
    return subprocess.run([sys.executable, "-m", "dispatchd", *args], capture_output=True, text=True, timeout=120)


def test_online_backup_holds_every_task_committed_before_it_and_restores(deployment: Deployment,
                                                                         tmp_path: Path) -> None:
    total = 150
    deployment.deliver(*[make_mail(f"[Acme] - Content - Request number {n}", sender=f"client{n % 20}@acme.test",
                                   attachments=((f"brief{n}.pdf", f"%PDF brief {n % 10}".encode()),))
                         for n in range(total)])
    database = deployment.path / "dispatchd.db"
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: len(task_ids(database)) >= 30, timeout=60, what="intake under way")
        committed_before = task_ids(database)
        made = dispatchd("backup", str(tmp_path / "backups"), "--config", str(deployment.config))
        assert made.returncode == 0, made.stderr
        wait_for(lambda: len(task_ids(database)) == total, timeout=120, what="intake finished")
    finally:
        assert stop_process(daemon, signal.SIGTERM) == 0
    assert len(committed_before) < total, "the backup ran while requests were being processed"
    verified = dispatchd("verify-backup", str(tmp_path / "backups"), "--config", str(deployment.config))
    assert verified.returncode == 0, verified.stderr

    restored = tmp_path / "restored"
    restored.mkdir()
    write_config(restored, deployment.dovecot.port, deployment.smtp.port, mailbox=deployment.user)
    done = dispatchd("restore", str(tmp_path / "backups"), "--config", str(restored / "config.toml"))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(restored / "dispatchd.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        restored_ids = {row[0] for row in db.execute("SELECT id FROM task")}
        digests = {row[0] for row in db.execute("SELECT raw_sha256 FROM inbound_message UNION "
                                                 "SELECT sha256 FROM attachment")}
    assert committed_before <= restored_ids, "every task committed before the backup began"
    assert all((restored / "data" / "blobs" / d[:2] / d).is_file() for d in digests)
    again = dispatchd("restore", str(tmp_path / "backups"), "--config", str(restored / "config.toml"))
    assert again.returncode != 0 and "exists" in again.stderr, "never over a database"


def test_forget_and_prune_while_the_daemon_takes_in_requests(deployment: Deployment, tmp_path: Path) -> None:
    """Erasure and pruning share the database with a working daemon: they wait their turn (or
    refuse while mail to the person is on the wire), the daemon loses nothing, nothing breaks."""
    total, person = 120, "client3@acme.test"
    with open(deployment.config, "a") as config:
        config.write('[retention]\noutbox_sent = "1 day"\nbatch = 10\n')
    deployment.deliver(*[make_mail(f"[Acme] - Content - Request number {n}", sender=f"client{n % 8}@acme.test")
                         for n in range(total)])
    database = deployment.path / "dispatchd.db"
    config = str(deployment.config)
    daemon = deployment.start_daemon()
    outcomes = []
    try:
        wait_for(lambda: len(task_ids(database)) >= 20, timeout=60, what="intake under way")
        for _ in range(3):
            outcomes.append(dispatchd("forget", person, "--config", config))
            outcomes.append(dispatchd("prune", "--config", config))
        wait_for(lambda: len(task_ids(database)) == total, timeout=120, what="intake finished")
        wait_for(lambda: all(status in ("sent", "erased") for (status,) in sqlite3.connect(database).execute(
            "SELECT status FROM outbox")), timeout=60, what="outbox drained")
    finally:
        assert stop_process(daemon, signal.SIGTERM) == 0
    for outcome in outcomes:
        assert outcome.returncode == 0 or "being sent right now" in outcome.stderr, outcome.stderr
    assert "Traceback" not in (deployment.path / "daemon.log").read_text(errors="replace")
    final = dispatchd("forget", person, "--config", config)
    assert final.returncode == 0, final.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM inbound_message").fetchone()[0] == total, "every request recorded"
        per_queue = db.execute("SELECT queue, count(*) FROM task GROUP BY queue").fetchall()
    assert sum(n for _q, n in per_queue) == total
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            assert person.encode() not in path.read_bytes().lower(), path
