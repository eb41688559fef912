"""The sender against an SMTP server that fails the way providers do: a refused login, resets,
421, quota replies. A server-level fault costs one connection per probe, charges no email and
holds all sending; only a refused recipient parks an email, and parked mail can be requeued."""

from __future__ import annotations

import asyncio
import email
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text
from sqlmodel import Session, col, select

from dispatchd.cli import main as cli
from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.devservers import Dovecot
from dispatchd.daemon import build_deps, build_outbox
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.outbox import outbox_status
from dispatchd.flows.sender_hold import read_hold
from dispatchd.sending import SendLoop
from dispatchd.store.db import open_engine
from dispatchd.store.tables import Outbox
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for
from tests.integration.faultsmtp import FaultySmtp

pytestmark = pytest.mark.integration


@pytest.fixture
def faulty() -> Iterator[FaultySmtp]:
    server = FaultySmtp(password="secret").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def config(tmp_path: Path, faulty: FaultySmtp, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISPATCHD_SMTP_TEST_PASSWORD", "secret")
    path = write_config(tmp_path, smtp_port=faulty.port)
    path.write_text(path.read_text().replace(
        "timeout = 5\n", 'timeout = 5\nusername = "agent"\npassword_env = "DISPATCHD_SMTP_TEST_PASSWORD"\n', 1))
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(timezone.utc))


def deps_for(config: Path, clock: FrozenClock) -> IntakeDeps:
    return build_deps(load_config(config), clock)


def queue(deps: IntakeDeps, recipients: list[str]) -> None:
    now = deps.clock.now()
    with Session(deps.engine) as session, session.begin():
        for n, to in enumerate(recipients):
            message_id = f"<q{n}@agency.test>"
            raw = f"From: requests@agency.test\r\nTo: {to}\r\nMessage-ID: {message_id}\r\nSubject: {n}\r\n\r\nhi\r\n"
            session.add(Outbox(message_id=message_id, kind="staff-status", envelope_from="requests@agency.test",
                               recipients=to, subject=str(n), raw=raw.encode(), next_attempt_at=now, created_at=now))


def rows(deps: IntakeDeps) -> list[Outbox]:
    with Session(deps.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())


def serve_for(deps: IntakeDeps, wakes: int = 12) -> None:
    """The daemon's send loop, woken by intake ``wakes`` times, a tenth of a second apart."""
    loop = SendLoop(build_outbox(deps))

    async def run() -> None:
        stop = asyncio.Event()
        serving = asyncio.ensure_future(loop.serve(stop))
        for _ in range(wakes):
            await asyncio.sleep(0.1)
            loop.wake()  # intake committed more mail: a wake-up must not become a connection
        stop.set()
        await serving
    asyncio.run(run())


def test_a_refused_login_costs_one_login_and_no_email_then_everything_goes(
        config: Path, faulty: FaultySmtp, clock: FrozenClock) -> None:
    deps = deps_for(config, clock)
    queue(deps, [f"person{n}@acme.test" for n in range(60)])
    faulty.fail_at("auth", "535 5.7.8 Username and Password not accepted")
    with structlog.testing.capture_logs() as logs:
        serve_for(deps)
    assert faulty.counts.connections == 1 and faulty.counts.auth_attempts == 1, faulty.counts
    assert {(r.status, r.attempts) for r in rows(deps)} == {("pending", 0)}, "no email was charged"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["smtp.unavailable"], "told once"
    hold = read_hold(deps.engine)
    assert hold is not None and hold.kind == "login" and "535 5.7.8" in hold.reason
    assert hold.until_at - clock.now() >= timedelta(minutes=3), "a refused login is not asked again soon"
    assert "sending held" in outbox_status(deps.engine, clock.now()) and "535" in outbox_status(deps.engine, clock.now())

    faulty.fail_at(None)  # the owner fixed the password
    clock.advance(hours=1)
    report = asyncio.run(build_outbox(deps).drain())
    assert report.sent == 60 and {r.status for r in rows(deps)} == {"sent"}
    assert sorted(email.message_from_bytes(m)["Message-ID"] for m in faulty.counts.accepted) == \
        sorted(f"<q{n}@agency.test>" for n in range(60)), "each email exactly once"
    assert read_hold(deps.engine) is None
    assert faulty.counts.auth_attempts <= 1 + deps.config.smtp.connections


@pytest.mark.parametrize(("stage", "reply"), [
    ("connect", ""),
    ("greeting", "421 4.3.2 Service not available"),
    ("greeting", "554 5.3.2 No SMTP service here"),
    ("ehlo", "550 5.7.1 Go away"),
])
def test_a_server_that_fails_the_session_is_probed_by_one_connection_at_a_time(
        config: Path, faulty: FaultySmtp, clock: FrozenClock, stage: str, reply: str) -> None:
    deps = deps_for(config, clock)
    queue(deps, [f"person{n}@acme.test" for n in range(40)])
    faulty.fail_at(stage, reply)
    serve_for(deps)
    assert faulty.counts.connections == 1, "no re-drain while the sender-wide backoff runs"
    assert {(r.status, r.attempts) for r in rows(deps)} == {("pending", 0)}
    hold = read_hold(deps.engine)
    assert hold is not None and hold.until_at > clock.now()

    clock.advance(minutes=1)  # the next probe, still refused: the wait grows
    asyncio.run(build_outbox(deps).drain())
    again = read_hold(deps.engine)
    assert faulty.counts.connections == 2 and again is not None and again.failures == 2
    assert again.until_at - clock.now() > timedelta(seconds=30)


def test_421_in_a_transaction_stops_the_pass(config: Path, faulty: FaultySmtp, clock: FrozenClock) -> None:
    deps = deps_for(config, clock)
    queue(deps, [f"person{n}@acme.test" for n in range(40)])
    faulty.fail_at("mail", "421 4.7.0 Try again later, closing connection.")
    report = asyncio.run(build_outbox(deps).drain())
    assert report.sent == 0 and faulty.counts.connections <= deps.config.smtp.connections
    assert faulty.counts.transactions <= deps.config.smtp.connections, "no connection started another email"
    assert {(r.status, r.attempts) for r in rows(deps)} == {("pending", 0)}
    hold = read_hold(deps.engine)
    assert hold is not None and hold.kind == "busy"


@pytest.mark.parametrize(("stage", "reply"), [
    ("data", "550 5.4.5 Daily user sending quota exceeded."),  # Gmail
    ("data", "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process"),
    ("rcpt", "452 4.5.3 Too many recipients"),
    ("mail", "451 4.7.1 Sender rate limit exceeded"),
    ("rcpt", "550 5.1.90 You've reached your daily limit for message recipients"),  # Outlook.com
])
def test_quota_replies_back_off_instead_of_parking(config: Path, faulty: FaultySmtp, clock: FrozenClock,
                                                   stage: str, reply: str) -> None:
    deps = deps_for(config, clock)
    queue(deps, [f"person{n}@acme.test" for n in range(20)])
    faulty.fail_at(stage, reply)
    report = asyncio.run(build_outbox(deps).drain())
    assert report.parked == 0 and {(r.status, r.attempts) for r in rows(deps)} == {("pending", 0)}
    hold = read_hold(deps.engine)
    assert hold is not None and hold.kind == "quota"
    assert hold.until_at - clock.now() >= timedelta(minutes=3)
    assert faulty.counts.transactions <= deps.config.smtp.connections


def test_a_refused_recipient_parks_that_email_alone_and_requeue_sends_it_again(
        config: Path, faulty: FaultySmtp, clock: FrozenClock, capsys: pytest.CaptureFixture[str]) -> None:
    deps = deps_for(config, clock)
    queue(deps, ["ann@acme.test", "gone@acme.test", "bob@acme.test", "left@acme.test"])
    faulty.refuse("gone@acme.test", "550 5.1.1 no such user")
    faulty.refuse("left@acme.test", "550 5.1.1 no such user")
    report = asyncio.run(build_outbox(deps).drain())
    assert (report.sent, report.parked) == (2, 2) and read_hold(deps.engine) is None
    parked = [r for r in rows(deps) if r.status == "parked"]
    assert [r.recipients for r in parked] == ["gone@acme.test", "left@acme.test"]

    faulty.refused.clear()  # the addresses were fixed on the receiving side
    assert cli(["outbox", "requeue", str(parked[0].id), "--config", str(config)]) == 0
    assert cli(["outbox", "requeue", str(parked[0].id), "--config", str(config)]) == 1, "not parked any more"
    clock.advance(minutes=1)  # the command queued it for the system clock's now
    asyncio.run(build_outbox(deps).drain())
    assert cli(["outbox", "requeue", "--all-parked", "--config", str(config)]) == 0
    clock.advance(minutes=1)
    asyncio.run(build_outbox(deps).drain())
    assert {r.status for r in rows(deps)} == {"sent"}
    ids = [email.message_from_bytes(m)["Message-ID"] for m in faulty.counts.accepted]
    assert ids[-2:] == ["<q1@agency.test>", "<q3@agency.test>"], "the same Message-IDs, each once"
    assert len(ids) == 4


def test_a_hold_is_shared_by_every_sender_of_the_database(config: Path, faulty: FaultySmtp, clock: FrozenClock,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``run --once`` from cron, a restarted daemon, another instance: none probes early."""
    deps = deps_for(config, clock)
    queue(deps, ["ann@acme.test"])
    faulty.fail_at("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled")
    asyncio.run(build_outbox(deps).drain())
    for _ in range(3):
        report = asyncio.run(build_outbox(deps_for(config, clock)).drain())
        assert report.held
    assert faulty.counts.auth_attempts == 1
    with deps.engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM meta WHERE key = 'smtp.hold'")).scalar() == 1
    capsys.readouterr()
    assert cli(["report", "--config", str(config)]) == 0  # what an operator sees
    assert "needs a person: sending held until" in capsys.readouterr().out


def test_the_daemon_says_why_nothing_is_sent(tmp_path: Path, dovecot: Dovecot, faulty: FaultySmtp,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The real service: the sender process (which systemd does not hear) holds on a refused
    login; the daemon's STATUS line for `systemctl status` says so; the log says it once."""
    from tests.integration.test_service import NotifySocket

    monkeypatch.setenv("DISPATCHD_SMTP_TEST_PASSWORD", "secret")
    user = f"requests-held{os.getpid()}@agency.test"
    path = write_config(tmp_path, dovecot.port, faulty.port, mailbox=user)
    path.write_text(path.read_text().replace(
        "timeout = 5\n", 'timeout = 5\nusername = "agent"\npassword_env = "DISPATCHD_SMTP_TEST_PASSWORD"\n', 1))
    deployment = Deployment(tmp_path, dovecot, faulty, user)  # type: ignore[arg-type]
    faulty.fail_at("auth", "535 5.7.8 Username and Password not accepted")
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    daemon = deployment.start_daemon()
    engine = open_engine(f"sqlite:///{tmp_path / 'dispatchd.db'}")
    try:
        wait_for(lambda: notify.saw("READY=1"), what="READY=1")
        deployment.deliver(make_mail("[Acme] - Content - First"))
        wait_for(lambda: read_hold(engine) is not None, what="the sender's hold")
        deployment.deliver(make_mail("[Acme] - Content - Second"))  # a pass: the daemon reports its status
        wait_for(lambda: notify.saw("sending held until"), what="STATUS with the hold")
        status = next(m for m in reversed(notify.messages) if "sending held" in m)
        assert "(login): AUTH: 535 5.7.8" in status and "queued in outbox" in status
        assert len(deployment.tasks()) == 2
    finally:
        assert stop_process(daemon) == 0
        notify.close()
        engine.dispose()
    assert faulty.counts.connections == 1 and faulty.counts.auth_attempts == 1, faulty.counts
    assert {(r.status, r.attempts) for r in deployment.outbox()} == {("pending", 0)}
    log = (tmp_path / "daemon.log").read_text()
    assert log.count('"smtp.unavailable"') == 1, "told once"
