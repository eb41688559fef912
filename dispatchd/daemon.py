"""The long-running service: builds the adapters from config and runs intake and outbox.

IMAP work (blocking imapclient and SQLite) runs in one worker thread at a time; the outbox
sender runs on the event loop. SIGTERM/SIGINT finish the current message, flush what can be
flushed and return; a lost server is retried with capped exponential backoff, logged once.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from dispatchd.calendars import business_calendar
from dispatchd.clock import Clock, SystemClock
from dispatchd.checks import check_all
from dispatchd.config import Config, load_config
from dispatchd.errors import ConfigError, DispatchdError, MailServerError
from dispatchd.flows.ingest import INFRASTRUCTURE_ERRORS, IntakeDeps
from dispatchd.flows.mailbox import CycleReport, poll_mailbox
from dispatchd.flows.outbox import OutboxSender, RetryPolicy
from dispatchd.jobs import build_scheduler
from dispatchd.mail.imap import ImapSource
from dispatchd.mail.smtp import SmtpSender
from dispatchd.render import Renderer
from dispatchd.rulebook import load_rulebook
from dispatchd.service import Notifier, watchdog_interval
from dispatchd.store.blobs import BlobStore
from dispatchd.store.db import migrate, open_engine

log = structlog.get_logger("dispatchd.daemon")
EX_TEMPFAIL = 75


@dataclass
class Backoff:
    first: float = 1.0
    ceiling: float = 60.0
    current: float = 0.0

    def next(self) -> float:
        self.current = self.first if not self.current else min(self.ceiling, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class InstanceLock:
    """One daemon per SQLite database: a second one would race for the same messages."""

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


def build_deps(config: Config, clock: Clock | None = None) -> IntakeDeps:
    """Open the database (migrating it) and load rules and templates."""
    engine = open_engine(config.database_url)
    migrate(engine)
    return IntakeDeps(
        config=config, rulebook=load_rulebook(config.rules_dir, config),
        renderer=Renderer(config.templates_dir), calendar=business_calendar(config.calendar),
        clock=clock or SystemClock(), blobs=BlobStore(config.data_dir / "blobs"), engine=engine,
        secret=config.security.reply_secret(),
    )


def build_outbox(deps: IntakeDeps, policy: RetryPolicy | None = None) -> OutboxSender:
    smtp = deps.config.smtp
    return OutboxSender(deps.engine, SmtpSender(smtp), deps.clock,
                        policy or RetryPolicy(max_attempts=smtp.max_attempts))


def reload_deps(deps: IntakeDeps) -> IntakeDeps:
    """Config, rules and templates read again and checked as a whole; raises ConfigError if
    anything is wrong, so the caller keeps what it has. Connections stay as they are."""
    config = load_config(deps.config.path)
    rulebook = check_all(config)
    for field in ("mailbox", "smtp", "database_url", "data_dir"):
        if getattr(config, field) != getattr(deps.config, field):
            log.warning("reload.needs_restart", setting=field)
    return replace(deps, config=config, rulebook=rulebook, renderer=Renderer(config.templates_dir),
                   calendar=business_calendar(config.calendar))


class Daemon:
    def __init__(self, deps: IntakeDeps, outbox: OutboxSender, notifier: Notifier | None = None,
                 progress: Callable[[int, int], None] | None = None):
        self.deps = deps
        self.progress = progress
        self.outbox = outbox
        self.notifier = notifier or Notifier()
        self.source = ImapSource(deps.config.mailbox, deps.config.intake.max_message_bytes)
        self.stop_thread = threading.Event()
        self.stop = asyncio.Event()
        self.mail_arrived = asyncio.Event()
        self.ready = False

    def request_stop(self) -> None:
        if not self.stop.is_set():
            log.info("daemon.stopping")
        self.stop.set()
        self.stop_thread.set()

    async def run_once(self) -> int:
        """Process the mailbox and the outbox, then exit; 75 if mail is left to retry."""
        self.outbox.release_claims(everything=True)
        intake = asyncio.ensure_future(asyncio.to_thread(self._cycle))
        sent = deferred = parked = 0
        try:
            # Send while reading: a long backlog gets its confirmations as it goes.
            while True:
                drained = await self.outbox.drain(self.stop, keep_open=not intake.done())
                sent, deferred, parked = sent + drained.sent, deferred + drained.deferred, parked + drained.parked
                if intake.done() and not drained.sent:
                    break
                if not intake.done():
                    await asyncio.wait({intake}, timeout=0.25)
            report = await intake
        finally:
            if not intake.done():
                self.request_stop()
                await asyncio.wait({intake})
            await self.outbox.smtp.close()
            await asyncio.to_thread(self.source.close)
        left = await asyncio.to_thread(self.outbox.next_due)
        log.info("run.once_done", fetched=report.fetched, outcomes=dict(report.outcomes),
                 sent=sent, deferred=deferred, parked=parked)
        return EX_TEMPFAIL if left is not None else 0

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
        self.outbox.release_claims(everything=True)
        log.info("daemon.started", mailbox=self.deps.config.mailbox.address,
                 mode=self.deps.config.mailbox.mode)
        scheduler = build_scheduler(lambda: self.deps, self.mail_arrived.set)
        scheduler.start()
        try:
            await asyncio.gather(self._intake_loop(), self._outbox_loop(), self._watchdog_loop())
        finally:
            self.notifier.stopping()
            scheduler.shutdown(wait=False)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await asyncio.to_thread(self.source.close)
            log.info("daemon.stopped")

    async def _watchdog_loop(self) -> None:
        interval = watchdog_interval()
        while interval and not self.stop.is_set():
            self.notifier.watchdog()
            await self._sleep(interval)

    async def _report_status(self, state: str) -> None:
        pending = await asyncio.to_thread(self.outbox.pending_count)
        status = f"{state}, {pending} queued in outbox"
        if not self.ready:
            self.ready = True
            self.notifier.ready(status)
        else:
            self.notifier.status(status)

    def _cycle(self) -> CycleReport:
        if not self.source.connected:
            self.source.connect()
        return poll_mailbox(self.source, self.deps, self.stop_thread, self.progress)


    async def _intake_loop(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                report = await asyncio.to_thread(self._cycle)
                if report.fetched:
                    self.mail_arrived.set()
                if backoff.current:
                    log.info("imap.recovered")
                backoff.reset()
                await self._report_status("idle" if self.deps.config.mailbox.mode == "idle" else "polling")
                await asyncio.to_thread(self.source.wait_for_mail, self.stop_thread)
            except (MailServerError, *INFRASTRUCTURE_ERRORS) as exc:
                delay = backoff.next()
                level = "error" if delay == backoff.first else "debug"
                getattr(log, level)("intake.unavailable", reason=str(exc), retry_in=delay)
                self.notifier.status(f"reconnecting in {delay:.0f}s: {str(exc)[:80]}")
                await asyncio.to_thread(self.source.close)
                await self._sleep(delay)

    async def _outbox_loop(self) -> None:
        while not self.stop.is_set():
            # Cleared before draining, so mail queued during the drain wakes the next round.
            self.mail_arrived.clear()
            try:
                await self.outbox.drain(self.stop)
                wait = await asyncio.to_thread(self.outbox.next_due)
            except INFRASTRUCTURE_ERRORS as exc:
                log.error("outbox.unavailable", reason=str(exc))
                wait = 5.0
            timeout = 30.0 if wait is None else min(30.0, max(0.2, wait))
            waiter = asyncio.ensure_future(self.mail_arrived.wait())
            stopper = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass


def lock_path(config: Config) -> Path:
    return config.data_dir / "dispatchd.lock"
