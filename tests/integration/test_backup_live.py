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
