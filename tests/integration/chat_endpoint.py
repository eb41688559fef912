"""A real OpenAI-compatible chat endpoint on 127.0.0.1 for the second opinion's tests: it records
every request and answers as told: a canned verdict, a slow answer, a 500, garbage. An aiohttp
server in a thread of its own with its own event loop, started and stopped by the fixture."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self.body["messages"])


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = ""
    delay: float = 0.0  # seconds before answering (longer than the client's timeout: a slow model)


def verdict(kind: str, confidence: float, reason: str = "") -> Reply:
    """A chat completion whose message is the JSON verdict the second opinion asks for."""
    return completion(json.dumps({"type": kind, "confidence": confidence, "reason": reason}))


def completion(content: str) -> Reply:
    return Reply(200, json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": content}}]}))


@dataclass
class ChatEndpoint:
    """``answer(call_number, call) -> Reply``; every call is kept in ``calls``."""

    answer: Callable[[int, Call], Reply] = lambda n, call: verdict("none", 0.5)
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _release: asyncio.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatEndpoint:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            started.set()
            self._loop.run_forever()
        self._thread = threading.Thread(target=run, daemon=True, name="chat-endpoint")
        self._thread.start()
        assert started.wait(10), "the chat endpoint did not start"
        return self

    async def _serve(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.path, dict(request.headers), json.loads(await request.read() or b"{}"))
        with self._lock:
            number = len(self.calls)
            self.calls.append(call)
        reply = self.answer(number, call)
        if reply.delay:
            assert self._release is not None
            try:  # a slow model; the fixture's stop ends the wait
                await asyncio.wait_for(self._release.wait(), reply.delay)
            except asyncio.TimeoutError:
                pass
        return web.Response(status=reply.status, text=reply.body, content_type="application/json")

    def count(self) -> int:
        with self._lock:
            return len(self.calls)

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
def chat_endpoint() -> Iterator[ChatEndpoint]:
    """An endpoint that answers "none" until the test says otherwise (``chat_endpoint.answer``)."""
    server = ChatEndpoint().start()
    try:
        yield server
    finally:
        server.stop()
