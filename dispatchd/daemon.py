"""The long-running service: builds the adapters from config and runs intake and outbox.

Each mailbox is read in its own worker thread (blocking imapclient and database calls) while
this instance owns it; the outbox is sent by a ``sending.Sender`` (``dispatchd run``: a process
of its own), woken after every committed run of messages. SIGTERM/SIGINT finish the current run
of messages, let the sender finish its batch and return; a lost server is retried with capped
exponential backoff, logged once.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeVar

import structlog
from sqlalchemy.engine import Engine

from dispatchd.calendars import business_calendar
from dispatchd.clock import Clock, SystemClock
from dispatchd.checks import check_all
from dispatchd.config import Config, MailboxConfig, SecurityConfig, load_config
from dispatchd.errors import ConfigError, DispatchdError, MailServerError
from dispatchd.flows.ingest import INFRASTRUCTURE_ERRORS, IntakeDeps
from dispatchd.flows.mailbox import CycleReport, poll_mailbox
from dispatchd.flows.outbox import OutboxSender, RetryPolicy, outbox_sender, outbox_status
from dispatchd.flows.triage import ModelSlot
from dispatchd.jobs import build_scheduler
from dispatchd.mail.imap import ImapSource
from dispatchd.mail.imap_idle import StopFlag
from dispatchd.render import Renderer
from dispatchd.rulebook import load_rulebook
from dispatchd.sending import Sender, SenderFailed
from dispatchd.service import Notifier, watchdog_interval
from dispatchd.store.blobs import BlobStore
from dispatchd.store.coordination import coordinator_for
from dispatchd.store.db import migrate, open_engine, stored_secret, with_integration_events

if TYPE_CHECKING:
    from dispatchd.calendar.caldav_server import CaldavCalendars
    from dispatchd.domain.routing import Rulebook

log = structlog.get_logger("dispatchd.daemon")
T = TypeVar("T")


@dataclass
class Backoff:
    first: float = 1.0
    ceiling: float = 60.0
    persistent: ClassVar[float] = 16.0  # the delay after 15 s of failing
    current: float = 0.0

    def next(self) -> float:
        self.current = self.first if not self.current else min(self.ceiling, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0

    @property
    def log_level(self) -> str:
        """Servers drop idle connections routinely and the next try usually works: a warning
        for the first failure, one error once it has gone on for a quarter of a minute."""
        return "warning" if self.current == self.first else "error" if self.current == self.persistent else "debug"


class InstanceLock:
    """One daemon per SQLite data directory: a second one would race for the same messages."""

    def __init__(self, path: Path):
        self.path = path
        self.handle: int | None = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise DispatchdError(f"another dispatchd is already running on {self.path.parent}") from None
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None


def build_deps(config: Config, clock: Clock | None = None, rulebook: Rulebook | None = None) -> IntakeDeps:
    """Open the database (migrating it) and load rules and templates. ``rulebook``: the rules
    as ``check_all`` just loaded them (loading them again took 45 ms of each start)."""
    engine = with_integration_events(open_engine(config.database_url), bool(config.destinations))
    migrate(engine)
    triage = ModelSlot(engine)
    triage.refresh()  # loaded once at start; a newer version is picked up by ModelSlot.current
    return IntakeDeps(
        config=config, rulebook=rulebook or load_rulebook(config.rules_dir, config),
        renderer=Renderer(config.templates_dir), calendar=business_calendar(config.calendar),
        clock=clock or SystemClock(), blobs=BlobStore(config.data_dir / "blobs"), engine=engine,
        secret=_reply_secret(config.security, engine), coordinator=coordinator_for(engine), triage=triage,
        web_secret=web_secret(config, engine),
        calendars=_calendars(config),
    )


def _calendars(config: Config) -> CaldavCalendars | None:
    """The CalDAV client when [booking] is set. Imported only then: caldav and its HTTP stack
    were a fifth of every start's imports (0.2 s), for a feature most installations leave off."""
    if config.booking is None:
        return None
    from dispatchd.calendar.caldav_server import CaldavCalendars

    return CaldavCalendars(config.booking)


def _reply_secret(security: SecurityConfig, engine: Engine) -> bytes:
    configured = security.secret.reveal()
    if configured:
        return configured.encode()
    legacy = security.legacy_secret_file
    candidate = legacy.read_text().strip() if legacy.exists() else secrets.token_hex(32)
    return stored_secret(engine, "reply_secret", candidate).encode()


def web_secret(config: Config, engine: Engine) -> bytes:
    """[web] secret_env/secret_file, or one generated once and kept in the database (replaced
    by ``dispatchd web rotate``): it signs client links, so changing it ends every link."""
    configured = config.web.secret.reveal()
    if configured:
        return configured.encode()
    return stored_secret(engine, WEB_SECRET_KEY, secrets.token_hex(32)).encode()


WEB_SECRET_KEY = "web_secret"


def build_outbox(deps: IntakeDeps, policy: RetryPolicy | None = None) -> OutboxSender:
    return outbox_sender(deps.config.smtp, deps.engine, deps.clock, deps.coordinator, policy)


def reload_deps(deps: IntakeDeps) -> IntakeDeps:
    """Config, rules and templates read again and checked as a whole; raises ConfigError if
    anything is wrong, so the caller keeps what it has. Connections stay as they are."""
    config = load_config(deps.config.path)
    rulebook = check_all(config)
    for field in ("mailboxes", "smtp", "database_url", "data_dir"):
        if getattr(config, field) != getattr(deps.config, field):
            log.warning("reload.needs_restart", setting=field)
    deps.triage.refresh()
    return replace(deps, config=config, rulebook=rulebook, renderer=Renderer(config.templates_dir),
                   calendar=business_calendar(config.calendar), web_secret=web_secret(config, deps.engine),
                   calendars=_calendars(config))


TAKEOVER_INTERVAL = 1.0  # seconds between asking for a mailbox another instance reads (one query)


STATUS_REFRESH = 60.0  # seconds between outbox counts for systemctl status when nothing else changes
LONG_PASS = 100  # a pass over more messages than this reports its progress in STATUS=


class MailboxReader:
    """One intake mailbox: its IMAP connection, whether this instance reads it now, and a thread
    of its own. An IDLE holds its thread for minutes; on the shared default executor a few
    mailboxes starved each other and the scheduled jobs (issue 21, 5)."""

    def __init__(self, mailbox: MailboxConfig, max_message_bytes: int):
        self.mailbox = mailbox
        self.source = ImapSource(mailbox, max_message_bytes)
        self.resource = f"mailbox:{mailbox.account}/{mailbox.folder}"
        self.owned = False
        self.settled = False  # reachable, standing by, or failed once: systemd may hear READY
        self.status_at = 0.0  # when a long pass last reported its progress
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mailbox-{mailbox.name}")

    async def call(self, func: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.thread, func, *args)


class Daemon:
    def __init__(self, deps: IntakeDeps, sender: Sender, notifier: Notifier | None = None,
                 progress: Callable[[int, int], None] | None = None, only: tuple[str, ...] = ()):
        """``only``: names of the [[mailbox]] entries this instance reads (default: all)."""
        self.deps = deps
        self.progress = progress
        self.sender = sender
        self.notifier = notifier or Notifier()
        unknown = set(only) - {m.name for m in deps.config.mailboxes}
        if unknown:
            raise DispatchdError(f"no [[mailbox]] named {', '.join(sorted(unknown))} in {deps.config.path}")
        self.readers = [MailboxReader(m, deps.config.intake.max_message_bytes)
                        for m in deps.config.mailboxes if not only or m.name in only]
        self.stop_thread = StopFlag()  # the worker threads' view of ``stop``; IDLE polls it
        self.stop = asyncio.Event()
        self.ready = False
        self._ready_lock = threading.Lock()
        self.failed = False  # the sender died: exit non-zero so that systemd restarts the service
        self.went_live: dict[str, str] = {}  # mailbox -> what its first start left alone (for STATUS)

    def request_stop(self) -> None:
        if not self.stop.is_set():
            log.info("daemon.stopping")
        self.stop.set()
        self.stop_thread.set()

    async def run_once(self) -> int:
        """Process the mailboxes and the outbox, then exit; 75 if mail is left to retry."""
        intake = asyncio.ensure_future(asyncio.to_thread(self._cycle_all))
        try:
            code = await self.sender.until_idle(intake)
            report = await intake
        finally:
            if not intake.done():
                self.request_stop()
                await asyncio.wait({intake})
            await asyncio.to_thread(self._close)
        log.info("run.once_done", fetched=report.fetched, outcomes=dict(report.outcomes))
        return code

    def _cycle_all(self) -> CycleReport:
        total = CycleReport()
        for reader in self.readers:
            if self.stop_thread.is_set():
                break
            if not self._own(reader):
                log.warning("mailbox.busy", mailbox=reader.mailbox.name, reason="another instance reads it")
                continue
            report = self._cycle(reader)
            total.fetched += report.fetched
            total.outcomes.update(report.outcomes)
            total.gaps.extend(report.gaps)
        return total

    def _close(self) -> None:
        for reader in self.readers:
            reader.source.close()
            reader.thread.shutdown(wait=False)
        self.deps.coordinator.close()
        self.stop_thread.close()

    def request_reload(self) -> None:
        """SIGHUP: new config, rules and templates, all or nothing; a bad edit changes nothing."""
        self.notifier.reloading()
        try:
            self.deps = reload_deps(self.deps)
        except ConfigError as exc:
            log.error("reload.refused", problems=[str(p) for p in exc.problems])
        else:
            log.info("reload.done", rules=len(self.deps.rulebook.rules), types=len(self.deps.rulebook.types))
        self.notifier.ready(self.notifier.last_status or "reloaded")

    async def run_forever(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        log.info("daemon.started", mailboxes=[r.mailbox.name for r in self.readers],
                 instance=await asyncio.to_thread(self.deps.coordinator.instance_id))
        web = self._web()  # binds its port first: a port in use stops the start, not the web side alone
        scheduler = build_scheduler(lambda: self.deps, self.sender.wake)
        scheduler.start()
        try:
            await asyncio.gather(*(self._intake_loop(r) for r in self.readers), self._send(), self._watchdog_loop(),
                                 self._status_loop(), web)
        finally:
            self.notifier.stopping()
            scheduler.shutdown(wait=False)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await asyncio.to_thread(self._close)  # frees our mailboxes for the other instances now
            log.info("daemon.stopped")

    def _web(self) -> Awaitable[None]:
        """The web side when ``[web] listen`` is set (its routes call flows in worker threads and
        wake the sender after they queue mail); else nothing to await."""
        listen = self.deps.config.web.listen
        if not listen:
            return asyncio.sleep(0)
        from dispatchd.web.app import create_app
        from dispatchd.web.server import bind, serve

        return serve(create_app(lambda: self.deps, self.sender.wake), bind(listen), self.stop)

    async def _send(self) -> None:
        try:
            await self.sender.serve(self.stop)
        except SenderFailed:
            self.failed = True  # exit non-zero: systemd restarts the whole service
        self.request_stop()  # without a sender nothing taken in would be answered

    async def _watchdog_loop(self) -> None:
        interval = watchdog_interval()
        while interval and not self.stop.is_set():
            self.notifier.watchdog()
            await self._sleep(interval)

    async def _status_loop(self) -> None:
        """The outbox count for ``systemctl status`` on a slow timer: the sender changes it
        without telling us. (Nothing to do outside systemd.)"""
        while self.notifier.address and not self.stop.is_set():
            await self._sleep(STATUS_REFRESH)
            if self.ready and not self.stop.is_set():
                await self._report_status()

    async def _report_status(self) -> None:
        """STATUS= after a pass (a database query, so only when something changed)."""
        if self.ready and self.notifier.address:
            self.notifier.status(await asyncio.to_thread(self._status_text))

    def _status_text(self) -> str:
        # The sender is a child process, which systemd does not hear (NotifyAccess=main): a hold it
        # put in the database is how `systemctl status` learns why no mail goes out.
        outbox = outbox_status(self.deps.engine, self.deps.clock.now())
        owned = [r.mailbox.name for r in self.readers if r.owned]
        reading = f"reading {', '.join(owned)}" if owned else "standing by (other instances read the mailboxes)"
        return "; ".join([f"{reading}; {outbox}", *self.went_live.values()])

    def _settle(self, reader: MailboxReader, status: str | None = None) -> None:
        """READY=1 once every mailbox is reachable (logged in and selected), read by another
        instance, or has failed its first attempt (it keeps retrying; STATUS= says why). Never
        after a whole first pass: a backlog of 20,000 messages must not meet TimeoutStartSec.
        Any thread."""
        with self._ready_lock:
            reader.settled = True
            if self.ready or not all(r.settled for r in self.readers):
                return
            self.ready = True
        self.notifier.ready(status or (self._status_text() if self.notifier.address else ""))

    def _progress(self, reader: MailboxReader, done: int, total: int) -> None:
        """From poll_mailbox, in the reader's thread: settles the reader, and shows a long pass."""
        if self.progress is not None:
            self.progress(done, total)  # run --once's progress bar
        long_pass = total > LONG_PASS and done < total
        status = f"reading {reader.mailbox.name}: {done:,} of {total:,} messages" if long_pass else None
        if not reader.settled:
            self._settle(reader, status)
        elif long_pass and time.monotonic() - reader.status_at >= 1.0:
            reader.status_at = time.monotonic()
            self.notifier.status(status)  # type: ignore[arg-type]

    def _own(self, reader: MailboxReader) -> bool:
        """Ask for the mailbox (PostgreSQL: its advisory lock); log when that changes."""
        owned = self.deps.coordinator.try_own(reader.resource)
        if owned != reader.owned:
            log.info("mailbox.reading" if owned else "mailbox.released", mailbox=reader.mailbox.name)
            if not owned:
                reader.source.close()
        reader.owned = owned
        return owned

    def _cycle(self, reader: MailboxReader, committed: Callable[[], None] | None = None) -> CycleReport:
        if not reader.source.connected:
            reader.source.connect()
        report = poll_mailbox(reader.source, self.deps, self.stop_thread, partial(self._progress, reader), committed)
        if report.went_live is not None and report.went_live.skipped:
            self.went_live[reader.mailbox.name] = report.went_live.summary()
        return report

    async def _intake_loop(self, reader: MailboxReader) -> None:
        """Read the mailbox whenever the server announces mail; between announcements only the
        IDLE (or the poll's NOOP) goes to the server, and the ownership check to the database."""
        backoff = Backoff()
        mail_announced = True  # the first pass reads whatever is there
        while not self.stop.is_set():
            try:
                if not await reader.call(self._own, reader):
                    if not reader.settled:  # a standby is ready too: systemd must not wait for it
                        await reader.call(self._settle, reader)
                    await self._sleep(TAKEOVER_INTERVAL)
                    mail_announced = True  # once it is ours, read it
                    continue
                if mail_announced or not reader.source.connected:
                    # Each committed run wakes the sender: confirmations go out while a backlog is read.
                    await reader.call(self._cycle, reader, self.sender.wake)
                    if backoff.current:
                        log.info("imap.recovered", mailbox=reader.mailbox.name)
                    backoff.reset()
                    await self._report_status()
                mail_announced = await reader.call(reader.source.wait_for_mail, self.stop_thread)
            except (MailServerError, *INFRASTRUCTURE_ERRORS) as exc:
                mail_announced = True
                delay = backoff.next()
                getattr(log, backoff.log_level)("intake.unavailable", mailbox=reader.mailbox.name,
                                                reason=str(exc), retry_in=delay)
                status = f"{reader.mailbox.name}: reconnecting in {delay:.0f}s: {str(exc)[:80]}"
                if not reader.settled:  # systemd killing a service that retries by itself helps nobody
                    await reader.call(self._settle, reader, status)
                self.notifier.status(status)
                await reader.call(reader.source.close)
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def instance_guard(config: Config) -> AbstractContextManager[object]:
    """SQLite serves one instance (a file lock says so); PostgreSQL serves any number, which
    share the work through ``store.coordination``."""
    if config.database_url.startswith("sqlite"):
        return InstanceLock(config.data_dir / "dispatchd.lock")
    return nullcontext()
