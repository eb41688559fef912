"""Serving the app with uvicorn, under our signals and our stop event.

The daemon serves it beside intake when ``[web] listen`` is set; ``dispatchd web`` serves it
alone. The socket is bound here, so a port in use is an error we report, not uvicorn's exit.
uvicorn's main loop wakes ten times a second to refresh its Date header; ours waits for the
stop event instead (no Date header: the reverse proxy adds one), so an idle server does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import structlog
import uvicorn
from starlette.applications import Starlette

from dispatchd.config.web import parse_listen
from dispatchd.errors import DispatchdError

log = structlog.get_logger("dispatchd.web")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stop: asyncio.Event):
        super().__init__(config)
        self.stop = stop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon (or ``dispatchd web``) owns SIGTERM/SIGINT and sets ``stop``

    async def main_loop(self) -> None:
        await self.stop.wait()


def bind(listen: str) -> socket.socket:
    """A listening socket on ``listen`` (HOST:PORT); DispatchdError if it cannot be had."""
    address = parse_listen(listen)
    if address is None:
        raise DispatchdError(f"[web] listen = {listen!r}: write HOST:PORT")
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DispatchdError(f"[web] listen = {listen!r}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def serve(app: Starlette, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set, then finish the requests in flight."""
    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False, date_header=False,
                            lifespan="off", proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                            timeout_graceful_shutdown=10)
    host, port = sock.getsockname()[:2]
    log.info("web.listening", host=host, port=port)
    try:
        await _Server(config, stop).serve(sockets=[sock])
    finally:
        sock.close()
        log.info("web.stopped")
