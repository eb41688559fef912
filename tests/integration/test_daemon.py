"""``dispatchd run`` as a real process: IDLE and polling, signals, crashes, reconnects."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

from dispatchd.devservers import Dovecot
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for

pytestmark = pytest.mark.integration


def db_count(deployment: Deployment, sql: str) -> int:
    path = deployment.path / "dispatchd.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def cursor_ready(deployment: Deployment) -> bool:
    return "imap.connected" in (deployment.path / "daemon.log").read_text(errors="replace") \
        if (deployment.path / "daemon.log").exists() else False


@pytest.mark.parametrize("mode", ["idle", "poll"])
def test_new_mail_is_confirmed_within_seconds(deployment: Deployment, mode: str) -> None:
    write_config(deployment.path, deployment.dovecot.port, deployment.smtp.port, mailbox=deployment.user, mode=mode)
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
        time.sleep(0.3)
        deployment.deliver(make_mail("[Acme] - Content - Pushed by IDLE"))
        waited = wait_for(lambda: bool(deployment.received_by("bob@acme.test")), timeout=15, what="confirmation")
        assert waited < 10
    finally:
        code = stop_process(daemon, signal.SIGTERM)
    assert code == 0
    assert len(deployment.tasks()) == 1


def test_sigterm_exits_cleanly_and_quickly(deployment: Deployment) -> None:
    daemon = deployment.start_daemon()
    wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
    started = time.monotonic()
    code = stop_process(daemon, signal.SIGTERM)
    assert code == 0 and time.monotonic() - started < 5
    assert "daemon.stopped" in (deployment.path / "daemon.log").read_text()


def sender_pid(deployment: Deployment) -> int:
    """The sender of the daemon started last."""
    for line in reversed((deployment.path / "daemon.log").read_text(errors="replace").splitlines()):
        if '"sender.started"' in line:
            return int(json.loads(line)["pid"])
    raise AssertionError("no sender.started in the log")


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # dead; its new parent has not reaped it yet


def kill_daemon_alone(deployment: Deployment, daemon: subprocess.Popen[bytes]) -> None:
    """SIGKILL the daemon, not its process group: its sender must die with it (PR_SET_PDEATHSIG)."""
    sender = sender_pid(deployment)
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.wait(timeout=15)
    wait_for(lambda: is_gone(sender), timeout=5, what="the sender to die with its daemon")


def test_sigterm_to_the_daemon_alone_stops_its_sender(deployment: Deployment) -> None:
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
        sender = sender_pid(deployment)
        assert sender != daemon.pid and not is_gone(sender)
        os.kill(daemon.pid, signal.SIGTERM)  # not the process group: the daemon must end its sender
        assert daemon.wait(timeout=15) == 0
        assert is_gone(sender)
    finally:
        stop_process(daemon)


def test_the_sender_dies_with_a_killed_daemon_and_the_next_start_sends(deployment: Deployment) -> None:
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
        kill_daemon_alone(deployment, daemon)
    finally:
        stop_process(daemon)
    (deployment.path / "daemon.log").unlink()
    daemon = deployment.start_daemon()
    try:
        deployment.deliver(make_mail("[Acme] - Content - After the kill"))
        wait_for(lambda: len(deployment.received_by("bob@acme.test")) == 1, what="the confirmation")
    finally:
        assert stop_process(daemon) == 0


def test_a_sender_that_dies_stops_the_daemon_with_an_error(deployment: Deployment) -> None:
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
        os.kill(sender_pid(deployment), signal.SIGKILL)
        assert daemon.wait(timeout=15) == 1  # systemd's Restart=on-failure starts both again
        assert '"sender.exited"' in (deployment.path / "daemon.log").read_text()
    finally:
        stop_process(daemon)


def test_second_instance_on_same_database_is_refused(deployment: Deployment) -> None:
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
        assert deployment.run_once() == 2
    finally:
        stop_process(daemon)


@pytest.mark.slow
@pytest.mark.config(extra="[intake]\nmax_replies_per_hour = 100000\n")
def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(deployment: Deployment) -> None:
    """Kill -9 the daemon at random points in intake and in sending, restart, and audit."""
    total, kills = 1000, 20
    rng = random.Random(20261126)
    deployment.deliver(*[make_mail(f"[Acme] - Content - Request number {n}", sender=f"client{n % 50}@acme.test",
                                   message_id=f"<crash-{n}@client.test>") for n in range(total)])
    kill_log = []
    for round_number in range(kills):
        daemon = deployment.start_daemon()
        try:
            done = db_count(deployment, "SELECT count(*) FROM inbound_message")
            if round_number % 2 == 0 and done < total:  # intake may finish early: then kill while sending
                target = rng.randint(done + 1, min(total, done + 120))
                wait_for(lambda: db_count(deployment, "SELECT count(*) FROM inbound_message") >= target,
                         timeout=60, what=f"{target} ingested")
            else:
                sent = len(deployment.smtp.messages)  # resends count too: compare with what is left to send
                left = 2 * total - db_count(deployment, "SELECT count(*) FROM outbox WHERE status = 'sent'")
                if left > 0:
                    target = rng.randint(sent + 1, sent + min(150, left))
                    wait_for(lambda: len(deployment.smtp.messages) >= target, timeout=60, what=f"{target} sent")
            time.sleep(rng.random() * 0.05)
            if round_number % 3 == 0:
                kill_daemon_alone(deployment, daemon)
        finally:
            stop_process(daemon, signal.SIGKILL)  # the round's processes, whatever happened
        kill_log.append((db_count(deployment, "SELECT count(*) FROM inbound_message"), len(deployment.smtp.messages)))
    daemon = deployment.start_daemon()
    try:
        expected_mails = total * 2  # one confirmation, one notice to the queue owner
        wait_for(lambda: db_count(deployment, "SELECT count(*) FROM outbox WHERE status = 'sent'") == expected_mails
                 and db_count(deployment, "SELECT count(*) FROM inbound_message") == total,
                 timeout=120, what="everything processed")
    finally:
        assert stop_process(daemon, signal.SIGTERM) == 0
    assert len(kill_log) == kills and any(0 < ingested < total for ingested, _ in kill_log), kill_log
    assert any(0 < sent < 2 * total for _, sent in kill_log), kill_log
    tasks = deployment.tasks()
    assert len(tasks) == total
    assert len({t.message_id for t in tasks}) == total
    confirmations: dict[str, set[str]] = defaultdict(set)
    for mail in deployment.received():
        confirmations[mail["X-Dispatchd-Task"] + mail["To"]].add(mail["Message-ID"])
    assert len(confirmations) == expected_mails
    assert all(len(ids) == 1 for ids in confirmations.values()), "a resend must reuse its Message-ID"
    resent = len(deployment.smtp.messages) - expected_mails
    print(f"\ncrash test: {kills} SIGKILLs, {total} requests, {len(tasks)} tasks, {expected_mails} emails, "
          f"{resent} resent with their original Message-ID, lost 0, duplicate tasks 0; kills at {kill_log}")
    assert deployment.folder_count("INBOX") == 0
    assert deployment.folder_count("Processed") == total
    with sqlite3.connect(deployment.path / "dispatchd.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()[0] == 0


def test_imap_server_restart_is_survived(tmp_path, smtp) -> None:  # type: ignore[no-untyped-def]
    """The daemon backs off while Dovecot is down and carries on when it is back."""
    server = Dovecot().start()
    port = server.port
    try:
        write_config(tmp_path, port, smtp.port, mailbox="requests@agency.test")
        deployment = Deployment(tmp_path, server, smtp, "requests@agency.test")
        daemon = deployment.start_daemon()
        try:
            wait_for(lambda: cursor_ready(deployment), what="daemon to log in")
            deployment.deliver(make_mail("[Acme] - Content - Before the outage"))
            wait_for(lambda: len(deployment.received_by("bob@acme.test")) == 1, what="first confirmation")
            # The whole process group: Dovecot's imap children outlive a stopped master.
            os.killpg(server.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
            server.process.wait(timeout=10)  # type: ignore[union-attr]
            wait_for(lambda: '"event": "intake.unavailable"' in (tmp_path / "daemon.log").read_text(),
                     what="the daemon to notice the outage")  # not a fixed 1.5 s
            server.start()
            deployment.deliver(make_mail("[Acme] - Content - After the outage"))
            wait_for(lambda: len(deployment.received_by("bob@acme.test")) == 2, timeout=30,
                     what="confirmation after reconnect")
        finally:
            assert stop_process(daemon) == 0
        log = (tmp_path / "daemon.log").read_text()
        assert log.count('"event": "intake.unavailable"') >= 1
        assert len(deployment.tasks()) == 2
    finally:
        server.stop()


@pytest.mark.slow
def test_sigterm_during_a_batch_exits_quickly_and_loses_nothing(deployment: Deployment) -> None:
    total = 400
    deployment.deliver(*[make_mail(f"[Acme] - Content - Batch {n}", sender=f"c{n % 40}@acme.test")
                         for n in range(total)])
    daemon = deployment.start_daemon()
    wait_for(lambda: db_count(deployment, "SELECT count(*) FROM inbound_message") >= 20, what="work under way")
    started = time.monotonic()
    assert stop_process(daemon, signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    done = db_count(deployment, "SELECT count(*) FROM inbound_message")
    assert done < total, "stopped mid-batch"
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == total and deployment.folder_count("INBOX") == 0


@pytest.mark.slow
def test_imap_drop_mid_fetch_loses_nothing(tmp_path, smtp) -> None:  # type: ignore[no-untyped-def]
    server = Dovecot().start()
    try:
        write_config(tmp_path, server.port, smtp.port, mailbox="requests@agency.test")
        deployment = Deployment(tmp_path, server, smtp, "requests@agency.test")
        total = 400
        deployment.deliver(*[make_mail(f"[Acme] - Content - Drop {n}", sender=f"d{n % 40}@acme.test")
                             for n in range(total)])
        daemon = deployment.start_daemon()
        try:
            wait_for(lambda: db_count(deployment, "SELECT count(*) FROM inbound_message") >= 30, what="fetching")
            os.killpg(server.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            server.process.wait(timeout=10)  # type: ignore[union-attr]
            server.start()
            wait_for(lambda: db_count(deployment, "SELECT count(*) FROM inbound_message") == total, timeout=120,
                     what="all ingested after the reconnect")
        finally:
            assert stop_process(daemon) == 0
        tasks = deployment.tasks()
        assert len(tasks) == total and len({t.message_id for t in tasks}) == total
        assert "intake.unavailable" in (tmp_path / "daemon.log").read_text()
    finally:
        server.stop()
