"""A counting IMAP proxy on 127.0.0.1 for the tests and benchmarks: it forwards bytes both ways
and records every command a client sends (tag and name, one entry per line), so a test can count
what an idle daemon says to its server. It can run a hook just before a command reaches the
server (to land mail in a race window deterministically) and rewrite server bytes (to play a
server that lacks a capability). Threads of its own; ``stop`` closes every socket and joins them.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


@dataclass(frozen=True)
class Command:
    at: float  # time.monotonic()
    connection: int
    name: str  # upper case: "IDLE", "UID SEARCH", "DONE", ...
    line: str  # as sent, without CRLF (LOGIN and AUTHENTICATE: the name only)


class ImapProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        """``tls``: a server context; clients then speak IMAP over TLS (port 993 style) to the proxy."""
        self.upstream = (upstream_host, upstream_port)
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.commands: list[Command] = []
        self.hooks: dict[str, Callable[[], None]] = {}
        self.rewrites: list[tuple[bytes, bytes]] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections = 0
        self._stopped = False

    def start(self) -> ImapProxy:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stopped = True
        try:  # wakes the thread blocked in accept() (close alone does not, and join waited 5 s)
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self) -> ImapProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def before(self, command: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` once, in the proxy's thread, just before ``command`` reaches the server."""
        self.hooks[command.upper()] = hook

    @property
    def connections(self) -> int:
        """How many connections clients have opened through the proxy."""
        return self._connections

    def since(self, moment: float) -> list[Command]:
        with self._lock:
            return [c for c in self.commands if c.at >= moment]

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
                if self.tls is not None:
                    client = self.tls.wrap_socket(client, server_side=True)
            except OSError:
                if self._stopped:
                    return
                continue  # a client that gave up during the TLS handshake
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
                self._connections += 1
                number = self._connections
            self._spawn(self._client_to_server, client, server, number)
            self._spawn(self._server_to_client, server, client)

    def _client_to_server(self, client: socket.socket, server: socket.socket, number: int) -> None:
        reader = client.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    break
                name = _command_name(line)
                shown = name if name in ("LOGIN", "AUTHENTICATE") else line.rstrip(b"\r\n").decode(errors="replace")
                with self._lock:
                    self.commands.append(Command(time.monotonic(), number, name, shown))
                hook = self.hooks.pop(name, None)
                if hook is not None:
                    hook()
                literal = _LITERAL.search(line)
                if literal:  # the literal's bytes are data, not commands
                    line += reader.read(int(literal.group(1)))
                server.sendall(line)
        except OSError:
            pass
        finally:
            _close_both(client, server)

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                for old, new in self.rewrites:
                    data = data.replace(old, new)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close_both(client, server)


def _command_name(line: bytes) -> str:
    """``a1 UID SEARCH ...`` -> ``UID SEARCH``; ``DONE`` (IDLE's end has no tag) -> ``DONE``."""
    words = line.strip().split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0].decode(errors="replace").upper()
    name = words[1].decode(errors="replace").upper()
    if name == "UID" and len(words) > 2:
        name += " " + words[2].decode(errors="replace").upper()
    return name


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
