"""Real servers: a private Dovecot for the session (each test gets its own mailbox user) and an
aiosmtpd capture per test. Each fixture stops what it started, by pid."""

from __future__ import annotations

import contextlib
import email
import email.policy
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from dispatchd.cli import main as cli
from dispatchd.devservers import Dovecot, Postgres, SmtpCapture
from dispatchd.store.db import open_engine
from dispatchd.store.tables import InboundMessage, Outbox, Task
from tests.conftest import write_config

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    """A fresh database in the session's cluster for one test."""
    return postgres.create_database(f"t{next(_ids)}_{os.getpid()}")


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    server = SmtpCapture().start()
    try:
        yield server
    finally:
        server.stop()


def make_mail(subject: str, sender: str = "Bob Stone <bob@acme.test>", body: str = "Please.", *,
              message_id: str | None = None, html: str | None = None,
              attachments: tuple[tuple[str, bytes], ...] = (), to: str = "requests@agency.test",
              headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<t{next(_ids)}.{time.monotonic_ns()}@client.test>"
    message["Date"] = email.utils.format_datetime(email.utils.localtime())
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    for filename, payload in attachments:
        message.add_attachment(payload, maintype="application", subtype="octet-stream", filename=filename)
    return message.as_bytes()


@dataclass
class Deployment:
    """One dispatchd installation under test: its config, mailbox and servers."""

    path: Path
    dovecot: Dovecot
    smtp: SmtpCapture
    user: str
    database_url: str | None = None  # None: the SQLite file next to config.toml

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        self.dovecot.append(self.user, list(messages), folder)

    def run_once(self) -> int:
        return cli(["run", "--once", "--config", str(self.config)])

    def cli(self, *args: str) -> int:
        return cli([*args, "--config", str(self.config)])

    @contextmanager
    def session(self) -> Iterator[Session]:
        engine = open_engine(self.database_url or f"sqlite:///{self.path / 'dispatchd.db'}")
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()

    def tasks(self) -> list[Task]:
        with self.session() as session:
            return list(session.exec(select(Task).order_by(col(Task.id))).all())

    def inbound(self) -> list[InboundMessage]:
        with self.session() as session:
            return list(session.exec(select(InboundMessage).order_by(col(InboundMessage.id))).all())

    def outbox(self) -> list[Outbox]:
        with self.session() as session:
            return list(session.exec(select(Outbox).order_by(col(Outbox.id))).all())

    def received(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(m.data, policy=email.policy.default)  # type: ignore[misc]
                for m in self.smtp.messages]

    def received_by(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m, raw in zip(self.received(), self.smtp.messages) if address in raw.rcpt_tos]

    def folder_count(self, folder: str = "INBOX") -> int:
        return self.dovecot.count(self.user, folder)

    def start_daemon(self, *args: str, log_name: str = "daemon.log") -> subprocess.Popen[bytes]:
        """``dispatchd run`` as a real child process (for signals and crashes)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.path / log_name, "ab") as log:
            return subprocess.Popen([sys.executable, "-m", "dispatchd", "run", *args, "--config", str(self.config)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal the process's whole group, also when its leader has exited: a daemon's sender
    process may outlive a daemon that a test killed alone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(timeout=timeout)


@pytest.fixture
def deployment(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, request: pytest.FixtureRequest) -> Deployment:
    user = f"requests{next(_ids)}@agency.test"
    marker = request.node.get_closest_marker("config")
    extra = marker.kwargs.get("extra", "") if marker else ""
    mode = marker.kwargs.get("mode", "idle") if marker else "idle"
    write_config(tmp_path, dovecot.port, smtp.port, mailbox=user, extra=extra, mode=mode)
    return Deployment(tmp_path, dovecot, smtp, user)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module (starting one takes about a second)."""
    from tests.integration.webtools import chromium

    with chromium() as driver:
        yield driver
