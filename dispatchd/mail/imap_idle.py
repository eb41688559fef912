"""Waiting for new mail on a selected IMAP folder: IDLE (RFC 2177) or NOOP polling.

The rule that keeps an idle daemon idle: new mail is decided from the folder's message count
(the EXISTS responses against the count the SELECT and SEARCH saw, minus EXPUNGEs), never from
whether some EXISTS entry happens to sit in imaplib's response dict — SELECT leaves its own
there, and treating it as news ended every IDLE at once (issue 19).
"""

from __future__ import annotations

import imaplib
import os
import select
import socket
import threading
import time
from collections.abc import Iterable

from imapclient import IMAPClient
from imapclient.imapclient import _parse_untagged_response

from dispatchd.errors import MailServerError

PROTOCOL_ERRORS = (imaplib.IMAP4.error, imaplib.IMAP4.abort, OSError, socket.timeout)


class StopFlag:
    """A threading.Event that a ``poll()`` can wait on too (an eventfd), so a thread blocked in
    IDLE wakes the moment the daemon stops instead of looking at a flag every half second."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._fd: int | None = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._fd_lock = threading.Lock()  # a closed descriptor's number may be reused at once

    def set(self) -> None:
        self._event.set()
        with self._fd_lock:
            if self._fd is not None:
                os.eventfd_write(self._fd, 1)  # stays readable: the flag is never cleared

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def fileno(self) -> int | None:
        return self._fd

    def close(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def count_after(count: int, responses: Iterable[object]) -> tuple[int, bool]:
    """The folder's message count after ``responses`` (parsed untagged responses, in order),
    and whether one of them announced more messages than there were: new mail."""
    grew = False
    for response in responses:
        if not (isinstance(response, tuple) and len(response) > 1 and isinstance(response[0], int)):
            continue
        number, kind = response[0], response[1]
        if kind == b"EXISTS":
            grew = grew or number > count
            count = number
        elif kind == b"EXPUNGE":
            count = max(0, count - 1)
    return count, grew


def take_filed_responses(client: IMAPClient) -> list[tuple[int, bytes]]:
    """EXISTS and EXPUNGE responses imaplib filed (by kind, order lost) during the last commands,
    removed from its dict. Expunges first: that can only make a later EXISTS look like news, so a
    doubt costs one extra pass, never a missed message."""
    filed = client._imap.untagged_responses  # imaplib's dict: a long-stable attribute
    expunged = filed.pop("EXPUNGE", [])
    exists = filed.pop("EXISTS", [])
    filed.pop("RECENT", None)
    return [(int(n), b"EXPUNGE") for n in expunged] + [(int(n), b"EXISTS") for n in exists]


def start_idle(client: IMAPClient) -> None:
    """Send IDLE and read up to its continuation. (IMAPClient.idle() refuses an untagged response
    that a server sends before "+ idling"; here it is filed like any other and counted.)"""
    imap = client._imap
    tag = imap._command("IDLE")
    while imap._get_response() is not None:
        if imap.tagged_commands.get(tag):
            _, data = imap.tagged_commands.pop(tag)
            raise MailServerError(f"IMAP IDLE refused: {data[0]!r}")
    client._idle_tag = tag  # for idle_done()


def read_waiting(client: IMAPClient) -> list[object]:
    """Every complete response line that can be read now without waiting, parsed.

    imaplib reads through a buffered file: when "+ idling" and "* N EXISTS" come in one packet
    (Dovecot does that for mail that landed just before IDLE), the EXISTS is already out of the
    socket and in that buffer, where poll() never sees it (issue 21, 6). So read first, poll after.
    """
    sock = client.socket()
    sock.setblocking(False)
    lines = []
    try:
        while True:
            try:
                lines.append(client._imap._get_line())
            except OSError:
                # Nothing more to read now: BlockingIOError on a plain socket, SSLWantReadError
                # (not an EAGAIN, so it is raised, not swallowed by the socket file) over TLS.
                break
            except imaplib.IMAP4.abort as exc:
                if "EOF" in str(exc):  # what imaplib says when a non-blocking read found nothing
                    break
                raise
    finally:
        sock.setblocking(True)
        client._set_read_timeout()
    responses = [_parse_untagged_response(line) for line in lines if line.startswith(b"* ")]
    if any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses):
        raise MailServerError(f"IMAP server said goodbye: {responses}")
    return responses


def wait_readable(client: IMAPClient, stop: StopFlag, seconds: float) -> bool:
    """Until the server sends something (True), ``stop`` is set or ``seconds`` pass (False)."""
    poller = select.poll()
    poller.register(client.socket().fileno(), select.POLLIN)
    stop_fd = stop.fileno() if hasattr(stop, "fileno") else None
    if stop_fd is not None:
        poller.register(stop_fd, select.POLLIN)
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        # Without a pollable stop flag, look at it every second.
        timeout = remaining if stop_fd is not None else min(remaining, 1.0)
        events = poller.poll(timeout * 1000)
        if any(fd != stop_fd for fd, _ in events):
            return True
    return False
