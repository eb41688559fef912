"""When the outbox is drained, and where: the sender's loop, and the process it runs in.

``SendLoop`` drains the outbox whenever it is woken (intake committed mail) and on a timer
(retries falling due). ``dispatchd run`` runs it in a process of its own (``SenderProcess``):
intake and sending then use a core each instead of taking turns in one interpreter. The two
share nothing but the database, so the exactly-once rules of ``flows.outbox`` hold unchanged:
the child claims what it sends, and a child killed mid-batch leaves claims that the next
sender returns to the queue and resends with the same Message-IDs.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import threading
from collections.abc import Callable
from typing import NoReturn, Protocol

import structlog

from dispatchd.clock import SystemClock
from dispatchd.config import Config
from dispatchd.flows.ingest import INFRASTRUCTURE_ERRORS
from dispatchd.flows.integrations import IntegrationSender
from dispatchd.flows.outbox import DrainReport, OutboxSender, outbox_sender
from dispatchd.store.coordination import coordinator_for
from dispatchd.store.db import open_engine

log = structlog.get_logger("dispatchd.sending")
EX_TEMPFAIL = 75
_PR_SET_PDEATHSIG = 1


class Sender(Protocol):
    def wake(self) -> None:
        """Mail was queued; callable from any thread."""

    async def serve(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set."""

    async def until_idle(self, intake: asyncio.Future[object]) -> int:
        """Send while ``intake`` runs and then everything due; 0, or 75 if mail waits for a retry."""


class SendLoop:
    """The outbox drained in this process's event loop."""

    def __init__(self, outbox: OutboxSender):
        self.outbox = outbox
        self.mail_arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None:  # before the loop runs there is nothing to wake: it drains first
            self._loop.call_soon_threadsafe(self.mail_arrived.set)

    async def serve(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                # Cleared before draining, so mail queued during the drain wakes the next round.
                self.mail_arrived.clear()
                try:
                    await self.outbox.drain(stop)
                    wait = await asyncio.to_thread(self.outbox.next_look)
                except INFRASTRUCTURE_ERRORS as exc:
                    log.error("outbox.unavailable", reason=str(exc))
                    wait = 5.0
                timeout = 30.0 if wait is None else min(30.0, max(0.2, wait))
                await _first_of(self.mail_arrived, stop, timeout=timeout)
        finally:
            await self.outbox.close()

    async def until_idle(self, intake: asyncio.Future[object], stop: asyncio.Event | None = None) -> int:
        self._loop = asyncio.get_running_loop()
        total = DrainReport()
        try:
            # Send while reading: a long backlog gets its confirmations as it goes.
            while stop is None or not stop.is_set():
                self.mail_arrived.clear()
                # Sampled before the drain: a drain takes what was due when it began, so only one
                # that began after intake ended has seen all of intake's mail.
                intake_ended = intake.done()
                drained = await self.outbox.drain(stop, keep_open=not intake_ended)
                total.sent, total.deferred, total.parked = (total.sent + drained.sent, total.deferred + drained.deferred,
                                                            total.parked + drained.parked)
                if intake_ended and not drained.sent:
                    break
                if not intake.done():
                    await _first_of(intake, self.mail_arrived, timeout=0.25)
        finally:
            await self.outbox.close()
        left = await asyncio.to_thread(self.outbox.next_due)
        log.info("outbox.drained", sent=total.sent, deferred=total.deferred, parked=total.parked,
                 waiting=left is not None)
        return EX_TEMPFAIL if left is not None else 0


class SenderProcess:
    """``SendLoop`` in a child process. It is forked before the parent opens the database (SQLite
    keeps per-process state about open files that must never cross a fork) and waits for its
    first wake-up, which the parent sends once the schema is migrated. The parent wakes it
    through a pipe; closing the pipe means "intake is done" (``--once``) or "stop". The child
    dies with its parent (PR_SET_PDEATHSIG), so a SIGKILLed daemon leaves no sender behind."""

    def __init__(self, pid: int, pipe: int):
        self.pid = pid
        self.pipe: int | None = pipe
        self.exit_code: int | None = None
        self._pipe_lock = threading.Lock()  # a closed descriptor's number may be reused at once

    @classmethod
    def fork(cls, config: Config, once: bool, role: str = "sender") -> SenderProcess:
        """``role`` "sender": the outbox; "integrations": webhooks, Slack and Teams (forked by the
        sender, see ``_serve_integrations``)."""
        reading, writing = os.pipe()
        os.set_blocking(writing, False)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(writing)
            _child(config, reading, parent, once, role)
        os.close(reading)
        log.info(f"{role}.started", pid=pid)
        return cls(pid, writing)

    def close(self) -> None:
        """Whatever happened in the parent: end the child's input and wait for it to exit.
        (A child that never got its go-ahead exits at once, having opened nothing.)"""
        self._close_pipe()
        if self.exit_code is None:
            self._reap()

    def wake(self) -> None:
        with self._pipe_lock:
            if self.pipe is None:
                return  # stopping: the child drains what is due before it exits
            try:
                os.write(self.pipe, b".")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the child has not read yet

    async def serve(self, stop: asyncio.Event) -> None:
        """Until ``stop``, or until the child exits: cleanly if it was signalled with the rest of
        the service (systemd signals every process of the unit); otherwise ``SenderFailed``."""
        exited = asyncio.ensure_future(self._exit_code())
        await _first_of(stop, exited)
        if not exited.done():
            await self._finish(exited)
            return
        if exited.result() != 0:
            log.error("sender.exited", pid=self.pid, code=exited.result())
            raise SenderFailed(f"the outbox sender (pid {self.pid}) exited with {exited.result()}")
        log.info("sender.stopped", pid=self.pid)

    async def until_idle(self, intake: asyncio.Future[object]) -> int:
        exited = asyncio.ensure_future(self._exit_code())
        await asyncio.wait({intake, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            raise SenderFailed(f"the outbox sender (pid {self.pid}) exited with {exited.result()} before intake ended")
        return await self._finish(exited)

    def _close_pipe(self) -> None:
        with self._pipe_lock:
            if self.pipe is not None:
                os.close(self.pipe)
                self.pipe = None

    async def _finish(self, exited: asyncio.Future[int]) -> int:
        self._close_pipe()  # end of input: the child sends what is due and exits
        try:
            # Within systemd's TimeoutStopSec (30 s): the unsent rest of a batch is resent later.
            return await asyncio.wait_for(asyncio.shield(exited), timeout=20)
        except asyncio.TimeoutError:
            log.error("sender.killed", pid=self.pid, reason="did not finish within 20 s")
            os.kill(self.pid, signal.SIGKILL)
            return await exited

    async def _exit_code(self) -> int:
        """Waits without a thread: a pidfd becomes readable when the process exits."""
        pidfd = os.pidfd_open(self.pid)
        loop = asyncio.get_running_loop()
        exited = loop.create_future()
        loop.add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self._reap()

    def _reap(self) -> int:
        """Collect the child's exit status (waiting for it if it still runs)."""
        self.exit_code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.exit_code


class SenderFailed(Exception):
    pass


def _child(config: Config, wake: int, parent: int, once: bool, role: str) -> NoReturn:
    code = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before we asked to die with it
            os._exit(1)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        structlog.contextvars.bind_contextvars(process=role)
        if role == "integrations":
            os.nice(INTEGRATIONS_NICENESS)
        # Forked before this process opens the database (and before its event loop exists).
        integrations = (SenderProcess.fork(config, once, "integrations")
                        if role == "sender" and config.destinations else None)
        try:
            if os.read(wake, 1):  # the go-ahead: the database is ready (end of input: the parent gave up)
                serve = _serve_child if role == "sender" else _serve_integrations
                code = asyncio.run(serve(config, wake, once, integrations))
            else:
                code = 0
        finally:
            if integrations is not None:
                integrations.close()
    except BaseException:  # noqa: B036 - whatever happens, the child must not return into the parent's code
        log.exception(f"{role}.failed")
    finally:
        os._exit(code)


# Webhooks, Slack and Teams run in a process of their own below the sender, at a lower CPU
# priority: posting thousands of events costs CPU (HTTP, JSON, HMAC) that must never delay
# intake or the mail; the kernel gives it what they leave. They share only the database.
INTEGRATIONS_NICENESS = 10


async def _serve_child(config: Config, wake: int, once: bool, integrations: SenderProcess | None = None) -> int:
    engine = open_engine(config.database_url)
    coordinator = coordinator_for(engine)
    sender = SendLoop(outbox_sender(config.smtp, engine, SystemClock(), coordinator))
    if integrations is not None:
        integrations.wake()  # its go-ahead: the database is ready

    def woken() -> None:
        sender.wake()
        if integrations is not None:
            integrations.wake()
    stop, parent_done = _follow_parent(wake, once, woken)
    try:
        if once:
            code = await sender.until_idle(parent_done, stop)
            if integrations is not None:
                await integrations.until_idle(parent_done)
            return code
        try:
            await asyncio.gather(sender.serve(stop), *([integrations.serve(stop)] if integrations else []))
        finally:
            # The integrations process died (SenderFailed): the mail loop must end too. Being
            # cancelled is not enough: Python 3.11's asyncio.wait_for can swallow a cancellation
            # that meets a finished reply (aiosmtplib waits so), and the loop then slept its 30 s.
            stop.set()
        return 0
    finally:
        await asyncio.to_thread(coordinator.close)
        engine.dispose()


async def _serve_integrations(config: Config, wake: int, once: bool, _: SenderProcess | None = None) -> int:
    """The integrations process: fan out and post events until its pipe closes (or SIGTERM)."""
    engine = open_engine(config.database_url)
    coordinator = coordinator_for(engine)
    integrations = IntegrationSender(config, engine, SystemClock(), coordinator)
    stop, parent_done = _follow_parent(wake, once, integrations.wake)
    try:
        if once:
            await integrations.until_idle(parent_done, stop)
        else:
            await integrations.serve(stop)
        return 0
    finally:
        await asyncio.to_thread(coordinator.close)
        engine.dispose()


def _follow_parent(wake: int, once: bool, woken: Callable[[], None]) -> tuple[asyncio.Event, asyncio.Future[None]]:
    """A child's link to its parent: SIGTERM/SIGINT set ``stop``; bytes on the ``wake`` pipe call
    ``woken``; the pipe's end (the parent is gone or done) completes ``parent_done`` and, unless
    the run is ``once`` (finish what is left first), sets ``stop`` too."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    parent_done: asyncio.Future[None] = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloading is the parent's business

    def readable() -> None:
        if os.read(wake, 4096):
            woken()
        else:
            loop.remove_reader(wake)
            parent_done.set_result(None)
            if not once:
                stop.set()
    loop.add_reader(wake, readable)
    return stop, parent_done


async def _first_of(*awaited: asyncio.Event | asyncio.Future[object], timeout: float | None = None) -> None:
    """Until one of the events is set or one of the futures is done (or ``timeout``)."""
    waiting_for_events = [asyncio.ensure_future(e.wait()) for e in awaited if isinstance(e, asyncio.Event)]
    futures = [f for f in awaited if not isinstance(f, asyncio.Event)]
    try:
        await asyncio.wait([*waiting_for_events, *futures], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiting_for_events:
            waiter.cancel()
