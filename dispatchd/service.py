"""The systemd notify protocol (sd_notify), written out: it is one datagram per message.

READY=1 once the database is open and every mailbox is reachable (login and SELECT), or has
failed its first attempt (``Daemon._settle``); STATUS= lines for ``systemctl status``; WATCHDOG=1 from the event loop; RELOADING=1/READY=1 around a reload;
STOPPING=1 on the way out. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, address: str | None = None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None
        self.last_status = ""

    def notify(self, *fields: str) -> None:
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
            except OSError:
                pass  # systemd went away; nothing useful to do about it

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")
        self.last_status = status

    def status(self, status: str) -> None:
        if status != self.last_status:
            self.notify(f"STATUS={status}")
            self.last_status = status

    def reloading(self) -> None:
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec, if it asked for pings (and they are meant for us)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2
