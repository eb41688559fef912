"""A real HTTP receiver on 127.0.0.1 for integration tests: records every request and answers
as told (200, 429 with Retry-After, 500, 410, a redirect, or never); ``loopback_http`` serves it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.integration.loopback_http import LoopbackServer


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
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self._server = LoopbackServer(self._handle, "receiver", self.port).start()
        self.port = self._server.port
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.path, dict(request.headers), await request.read(), time.monotonic())
        with self._lock:
            number = len(self.requests)
            self.requests.append(received)
        status, headers = self.answer(number, received)
        if status == 0:  # hang until the test ends (the sender's timeout must end it first)
            assert self._server is not None and self._server.release is not None
            await self._server.release.wait()
            status = 503
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver answering 200 until the test says otherwise (``receiver.answer``)."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
