"""A real OpenAI-compatible chat endpoint on 127.0.0.1 for the second opinion's tests: it records
every request and answers as told: a canned verdict, a slow answer, a 500, garbage; served by
``loopback_http``, started and stopped by the fixture."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.integration.loopback_http import LoopbackServer


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
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatEndpoint:
        self._server = LoopbackServer(self._handle, "chat endpoint").start()
        self.port = self._server.port
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.path, dict(request.headers), json.loads(await request.read() or b"{}"))
        with self._lock:
            number = len(self.calls)
            self.calls.append(call)
        reply = self.answer(number, call)
        if reply.delay:
            assert self._server is not None and self._server.release is not None
            try:  # a slow model; the fixture's stop ends the wait
                await asyncio.wait_for(self._server.release.wait(), reply.delay)
            except asyncio.TimeoutError:
                pass
        return web.Response(status=reply.status, text=reply.body, content_type="application/json")

    def count(self) -> int:
        with self._lock:
            return len(self.calls)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


@pytest.fixture
def chat_endpoint() -> Iterator[ChatEndpoint]:
    """An endpoint that answers "none" until the test says otherwise (``chat_endpoint.answer``)."""
    server = ChatEndpoint().start()
    try:
        yield server
    finally:
        server.stop()
