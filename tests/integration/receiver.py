"""A real HTTP receiver on 127.0.0.1 for integration tests: records every request and answers
as told (200, 429 with Retry-After, 500, 410, a redirect, or never). It runs an aiohttp server
in a thread of its own with its own event loop; ``stop`` ends both."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """``answer(request_number, received) -> (status, headers)``; status 0 means: never answer."""

    answer: Callable[[int, Received], tuple[int, dict[str, str]]] = lambda n, r: (200, {})
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            started.set()
            self._loop.run_forever()
        self._thread = threading.Thread(target=run, daemon=True, name="receiver")
        self._thread.start()
        started.wait(10)
        return self

    async def _serve(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.path, dict(request.headers), await request.read(), time.monotonic())
        with self._lock:
            number = len(self.requests)
            self.requests.append(received)
        status, headers = self.answer(number, received)
        if status == 0:  # hang until the test ends (the sender's timeout must end it first)
            assert self._release is not None
            await self._release.wait()
            status = 503
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self._release is not None and self._runner is not None
            self._release.set()
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200 until the test says otherwise (``receiver.answer``)."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
