"""An idle daemon is idle (issue 19), yet new mail is read at once, also in the race windows
around IDLE (issue 21, 6) and with several mailboxes (issue 21, 5). IMAP commands are counted
by a proxy between the daemon and Dovecot; CPU time is read from /proc."""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.devproxy import ImapProxy
from dispatchd.devservers import Dovecot
from dispatchd.mail.imap import ImapSource
from dispatchd.mail.imap_idle import StopFlag
from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for

pytestmark = pytest.mark.integration
QUIET_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[ImapProxy]:
    with ImapProxy(dovecot.port) as running:
        yield running


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children that are alive (the daemon and its sender)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def configure(deployment: Deployment, port: int, mode: str, **timing: float) -> None:
    write_config(deployment.path, port, deployment.smtp.port, mailbox=deployment.user,
                 mailboxes=mailbox_table(deployment.user, port, mode, **timing))


def logged_in(deployment: Deployment, times: int = 1) -> bool:
    log = deployment.path / "daemon.log"
    return log.exists() and log.read_text(errors="replace").count("imap.connected") >= times


@pytest.mark.parametrize(("mode", "timing", "allowed"), [
    # One IDLE per idle_timeout and its DONE: 10 s / 4 s -> at most 3 re-issues.
    ("idle", dict(idle_timeout=4.0), 2 * (int(QUIET_SECONDS / 4) + 1)),
    # One NOOP per poll_interval.
    ("poll", dict(poll_interval=1.0), int(QUIET_SECONDS / 1.0) + 1),
])
def test_an_idle_daemon_is_quiet_and_still_reads_mail_at_once(deployment: Deployment, proxy: ImapProxy, mode: str,
                                                              timing: dict[str, float], allowed: int) -> None:
    configure(deployment, proxy.port, mode, **timing)
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: logged_in(deployment), what="daemon to log in")
        wait_for(lambda: any(c.name == "UID SEARCH" for c in proxy.commands), what="the first pass")
        time.sleep(1.5)  # start-up's imports and first pass are not idleness
        started, cpu_before = time.monotonic(), cpu_seconds(daemon.pid)
        time.sleep(QUIET_SECONDS)
        cpu = cpu_seconds(daemon.pid) - cpu_before
        quiet = [c.name for c in proxy.since(started)]
        assert len(quiet) <= allowed, f"{len(quiet)} IMAP commands in {QUIET_SECONDS:.0f} s idle: {quiet[:20]}"
        assert set(quiet) <= {"IDLE", "DONE", "NOOP"}, quiet
        # <= 1 % of a core for the daemon and its sender together.
        assert cpu <= 0.01 * QUIET_SECONDS, f"{cpu:.2f} s of CPU in {QUIET_SECONDS:.0f} s idle"
        deployment.deliver(make_mail("[Acme] - Content - After a quiet spell"))
        waited = wait_for(lambda: bool(deployment.received_by("bob@acme.test")), timeout=15, what="confirmation")
        assert waited < 4, f"confirmation after {waited:.1f} s"
    finally:
        assert stop_process(daemon, signal.SIGTERM) == 0
    assert len(deployment.tasks()) == 1


def source_through(deployment: Deployment, proxy: ImapProxy, idle_timeout: float) -> ImapSource:
    configure(deployment, proxy.port, "idle", idle_timeout=idle_timeout)
    mailbox = load_config(deployment.config).mailboxes[0]
    source = ImapSource(mailbox)
    source.connect()
    return source


def test_idle_is_not_ended_by_the_selects_own_exists(deployment: Deployment, proxy: ImapProxy) -> None:
    """SELECT leaves "* 2 EXISTS" in imaplib's dict; that is not news (it ended every IDLE at once)."""
    deployment.deliver(make_mail("[Acme] - Content - One"), make_mail("[Acme] - Content - Two"))
    source = source_through(deployment, proxy, idle_timeout=2.0)
    stop = StopFlag()
    try:
        assert source.select("INBOX").exists == 2
        assert source.uids_after(2) == []  # as if both were read already
        started = time.monotonic()
        assert source.wait_for_mail(stop) is False
        assert time.monotonic() - started >= 1.9
        assert [c.name for c in proxy.since(started)] == ["IDLE", "DONE"]
    finally:
        source.close()
        stop.close()


def _race_mail_with_idle(deployment: Deployment, proxy: ImapProxy, source: ImapSource, stop: StopFlag,
                         subject: str) -> None:
    """Mail appended just before the IDLE command reaches Dovecot (which then answers "+ idling"
    and "* 1 EXISTS" in one packet) ends the wait at once and is read."""
    proxy.before("IDLE", lambda: deployment.deliver(make_mail(subject)))
    started = time.monotonic()
    assert source.wait_for_mail(stop) is True
    assert time.monotonic() - started < 2.0
    assert source.uids_after(0) == [1]


def test_mail_landing_just_before_idle_is_seen_at_once(deployment: Deployment, proxy: ImapProxy) -> None:
    """The race of issue 21, 6, made deterministic: the proxy appends a message just before the
    IDLE command reaches Dovecot, which answers "+ idling" and "* 1 EXISTS" in one packet."""
    source = source_through(deployment, proxy, idle_timeout=20.0)
    stop = StopFlag()
    try:
        source.select("INBOX")
        assert source.uids_after(0) == []
        _race_mail_with_idle(deployment, proxy, source, stop, "[Acme] - Content - Raced IDLE")
    finally:
        source.close()
        stop.close()


def test_mail_landing_during_a_pass_is_read_next(deployment: Deployment, proxy: ImapProxy) -> None:
    """Mail announced in the answer to a FETCH or MOVE (after the SEARCH) ends the wait at once."""
    deployment.deliver(make_mail("[Acme] - Content - First"))
    source = source_through(deployment, proxy, idle_timeout=20.0)
    stop = StopFlag()
    try:
        state = source.select("INBOX")
        assert source.uids_after(0) == [1]
        proxy.before("UID FETCH", lambda: deployment.deliver(make_mail("[Acme] - Content - During the pass")))
        assert [m.uid for m in source.fetch("INBOX", state.uidvalidity, [1])] == [1]
        source.acknowledge([1], "Processed")
        started = time.monotonic()
        assert source.wait_for_mail(stop) is True
        assert time.monotonic() - started < 2.0
        assert source.uids_after(1) == [2]
    finally:
        source.close()
        stop.close()


@pytest.fixture
def tls_proxy(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImapProxy]:
    """IMAP over TLS (as on port 993) in front of Dovecot, with a certificate made for the test
    and trusted through SSL_CERT_FILE."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with ImapProxy(dovecot.port, tls=context) as running:
        yield running


def test_idle_over_tls_waits_quietly_and_sees_mail_at_once(deployment: Deployment, tls_proxy: ImapProxy) -> None:
    """Over TLS a read that finds nothing raises SSLWantReadError (not EAGAIN): it must mean
    "nothing yet", not a lost connection; and the race of issue 21, 6 holds there too."""
    text = mailbox_table(deployment.user, tls_proxy.port, idle_timeout=3.0).replace('tls = "none"', 'tls = "ssl"')
    write_config(deployment.path, tls_proxy.port, deployment.smtp.port, mailbox=deployment.user, mailboxes=text)
    source = ImapSource(load_config(deployment.config).mailboxes[0])
    source.connect()
    stop = StopFlag()
    try:
        source.select("INBOX")
        assert source.uids_after(0) == []
        started = time.monotonic()
        assert source.wait_for_mail(stop) is False
        assert time.monotonic() - started >= 2.9
        assert [c.name for c in tls_proxy.since(started)] == ["IDLE", "DONE"]
        _race_mail_with_idle(deployment, tls_proxy, source, stop, "[Acme] - Content - Raced over TLS")
    finally:
        source.close()
        stop.close()


def test_stop_ends_an_idle_at_once(deployment: Deployment, proxy: ImapProxy) -> None:
    source = source_through(deployment, proxy, idle_timeout=60.0)
    stop = StopFlag()
    try:
        source.select("INBOX")
        source.uids_after(0)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(source.wait_for_mail, stop)
            wait_for(lambda: any(c.name == "IDLE" for c in proxy.commands), what="IDLE")
            stopped = time.monotonic()
            stop.set()
            assert waiting.result(timeout=5) is False
        assert time.monotonic() - stopped < 1.0
    finally:
        source.close()
        stop.close()


@pytest.mark.slow
def test_several_mailboxes_each_read_within_seconds(tmp_path: Path, dovecot: Dovecot, smtp) -> None:  # type: ignore[no-untyped-def]
    """More mailboxes than the default thread pool has threads (min(32, cores + 4)): each IDLE
    used to hold one of them, and the last mailboxes waited for an IDLE elsewhere to end; the
    scheduled jobs, which run on that pool, waited too (issue 21, 5)."""
    count = min(32, (os.cpu_count() or 1) + 4) + 1
    users = [f"box{i}.{os.getpid()}.{time.monotonic_ns()}@agency.test" for i in range(count)]
    tables = "".join(mailbox_table(user, dovecot.port, header="[[mailbox]]", idle_timeout=120) for user in users)
    every_minute = ('[schedule]\nsla = ""\nredispatch = "* * * * *"\ndigest = ""\nstaff-digest = ""\n'
                    'health = ""\ntrain = ""\n')
    write_config(tmp_path, dovecot.port, smtp.port, mailbox=users[0], mailboxes=tables, scheduled=True,
                 extra=every_minute)
    deployment = Deployment(tmp_path, dovecot, smtp, users[0])
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: logged_in(deployment, count), timeout=60, what=f"{count} mailboxes to log in")
        time.sleep(1.0)
        for index, user in enumerate(users):  # one at a time: each while all the others idle
            delivered = time.monotonic()
            dovecot.append(user, [make_mail(f"[Acme] - Content - Box {index}", sender=f"client{index}@acme.test")])
            wait_for(lambda i=index: bool(deployment.received_by(f"client{i}@acme.test")), timeout=30,
                     what=f"confirmation from mailbox {index}")
            waited = time.monotonic() - delivered
            assert waited < 5, f"mailbox {index}: {waited:.1f} s"
        # The job's next minute comes while every mailbox idles: it must run, not queue.
        wait_for(lambda: job_ran(deployment.path / "daemon.log", "redispatch"), timeout=75, what="the minute's job")
    finally:
        assert stop_process(daemon, signal.SIGTERM) == 0
    assert len(deployment.tasks()) == count


def job_ran(log: Path, job: str) -> bool:
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    return any(line.get("event") == "job.done" and line.get("job") == job for line in lines)


def test_a_standby_instance_sends_nothing_to_imap(tmp_path: Path, dovecot: Dovecot, smtp,  # type: ignore[no-untyped-def]
                                                  proxy: ImapProxy, postgres_url: str) -> None:
    """Two instances on PostgreSQL: the standby checks the mailbox's lock once a second and never
    opens an IMAP connection; both stay within 1 % of a core; the standby takes over on a stop."""
    user = f"standby.{os.getpid()}.{time.monotonic_ns()}@agency.test"
    write_config(tmp_path, proxy.port, smtp.port, mailbox=user, database_url=postgres_url,
                 mailboxes=mailbox_table(user, proxy.port))
    deployment = Deployment(tmp_path, dovecot, smtp, user, postgres_url)
    daemons = {name: deployment.start_daemon(log_name=f"{name}.log") for name in ("a", "b")}

    def reading(name: str) -> bool:
        log = tmp_path / f"{name}.log"
        return log.exists() and "mailbox.reading" in log.read_text(errors="replace")

    def started(name: str) -> bool:
        log = tmp_path / f"{name}.log"
        return log.exists() and "daemon.started" in log.read_text(errors="replace")

    try:
        wait_for(lambda: all(started(n) for n in daemons) and any(reading(n) for n in daemons), what="both up")
        wait_for(lambda: any(c.name == "IDLE" for c in proxy.commands), what="the reader's IDLE")
        reader = next(n for n in daemons if reading(n))
        standby = next(n for n in daemons if n != reader)
        time.sleep(1.5)
        started_at = time.monotonic()
        cpu_before = {n: cpu_seconds(p.pid) for n, p in daemons.items()}
        time.sleep(QUIET_SECONDS)
        cpu = {n: cpu_seconds(p.pid) - cpu_before[n] for n, p in daemons.items()}
        assert proxy.connections == 1, "the standby opened an IMAP connection"
        assert [c.name for c in proxy.since(started_at)] == []
        for name, spent in cpu.items():
            assert spent <= 0.01 * QUIET_SECONDS, f"{name}: {spent:.2f} s of CPU in {QUIET_SECONDS:.0f} s idle"
        assert stop_process(daemons.pop(reader), signal.SIGTERM) == 0
        wait_for(lambda: reading(standby), timeout=10, what="the standby to take over")
        deployment.deliver(make_mail("[Acme] - Content - After the takeover"))
        wait_for(lambda: bool(deployment.received_by("bob@acme.test")), timeout=15, what="confirmation")
        assert proxy.connections == 2
    finally:
        for process in daemons.values():
            stop_process(process, signal.SIGTERM)
