"""A small SMTP server on 127.0.0.1 that fails on demand, and counts what clients did.

Written out on asyncio rather than on aiosmtpd because the faults live where aiosmtpd has no
hook: a reset before the greeting, a 421 greeting, a refused EHLO. ``fail_at(stage, reply)``
makes every session fail at that stage ('connect' resets the connection at once; 'greeting',
'ehlo', 'auth', 'mail', 'rcpt' or 'data' answer ``reply``); ``refuse(address, reply)`` refuses
one recipient. It runs in a thread of its own with its own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from dataclasses import dataclass, field

from dispatchd.devservers import free_port


@dataclass
class Counts:
    connections: int = 0
    auth_attempts: int = 0
    transactions: int = 0  # MAIL FROM commands received
    accepted: list[bytes] = field(default_factory=list)  # the DATA of each email taken


class FaultySmtp:
    def __init__(self, username: str = "agent", password: str = "secret"):
        self.port = free_port()
        self.credentials = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        self.counts = Counts()
        self.stage: str | None = None
        self.reply = ""
        self.refused: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def fail_at(self, stage: str | None, reply: str = "") -> None:
        with self._lock:
            self.stage, self.reply = stage, reply

    def refuse(self, address: str, reply: str) -> None:
        with self._lock:
            self.refused[address.lower()] = reply

    def start(self) -> FaultySmtp:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._session, "127.0.0.1", self.port))
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="faulty-smtp", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None

    def _fault(self, stage: str) -> str | None:
        with self._lock:
            return self.reply if self.stage == stage else None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts.connections += 1
        try:
            if self._fault("connect") is not None:
                writer.transport.abort()  # a reset: the client sees the connection die unanswered
                return
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        greeting = self._fault("greeting")
        if greeting:
            await say(greeting)
            return
        await say("220 faulty.test ESMTP")
        while line := (await reader.readline()).decode(errors="replace").rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            stage = {"EHLO": "ehlo", "HELO": "ehlo", "AUTH": "auth", "MAIL": "mail", "RCPT": "rcpt",
                     "DATA": "data"}.get(verb)
            if stage == "auth":
                self.counts.auth_attempts += 1
            if stage == "mail":
                self.counts.transactions += 1
            fault = self._fault(stage) if stage and stage != "data" else None
            if fault:
                await say(fault)
                if fault.startswith("421"):
                    return
                continue
            if verb == "EHLO":
                await say("250-faulty.test\r\n250-AUTH PLAIN\r\n250 8BITMIME")
            elif verb == "HELO" or verb in ("NOOP", "RSET"):
                await say("250 OK")
            elif verb == "AUTH":
                given = line.split(" ", 2)[2] if line.count(" ") >= 2 else ""
                await say("235 2.7.0 accepted" if given == self.credentials else "535 5.7.8 credentials invalid")
            elif verb == "MAIL":
                await say("250 2.1.0 OK")
            elif verb == "RCPT":
                address = line.split(":", 1)[1].strip().strip("<>").split(">")[0].lower()
                await say(self.refused.get(address, "250 2.1.5 OK"))
            elif verb == "DATA":
                await say("354 go ahead")
                data = await reader.readuntil(b"\r\n.\r\n")
                fault = self._fault("data")
                if fault:
                    await say(fault)
                    if fault.startswith("421"):
                        return
                else:
                    self.counts.accepted.append(data[:-5])
                    await say("250 2.0.0 queued")
            elif verb == "QUIT":
                await say("221 bye")
                return
            else:
                await say("502 5.5.2 not implemented")
