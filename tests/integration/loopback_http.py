"""An aiohttp app served on 127.0.0.1 from a thread with its own event loop, for the fake
servers of the integration tests (a webhook receiver, a chat endpoint): ``start`` returns once
it listens, ``stop`` ends the server, its loop and its thread. ``release`` is set at stop, so a
handler told to hang ("never answer") returns then instead of holding the stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web


class LoopbackServer:
    def __init__(self, handle: Callable[[web.Request], Awaitable[web.StreamResponse]], name: str, port: int = 0):
        self.handle = handle
        self.name = name
        self.port = port
        self.release: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> LoopbackServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            started.set()
            self._loop.run_forever()
        self._thread = threading.Thread(target=run, daemon=True, name=self.name)
        self._thread.start()
        assert started.wait(10), f"the {self.name} did not start"
        return self

    async def _serve(self) -> None:
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self.release is not None and self._runner is not None
            self.release.set()
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None
