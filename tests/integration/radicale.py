"""A real CalDAV server for the tests: Radicale on a free 127.0.0.1 port with a throw-away
collection root, one account (``dispatchd``) that may read and write every calendar, as a
delegate account does in production. Stopped by its pid."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from caldav import DAVClient

from dispatchd.devservers import free_port

USER, PASSWORD = "dispatchd", "calendar-secret"


class Radicale:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="radicale-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def calendar_url(self, name: str) -> str:
        return f"{self.url}{USER}/{name}/"

    def start(self, timeout: float = 20.0) -> Radicale:
        (self.root / "users").write_text(f"{USER}:{PASSWORD}\n")
        (self.root / "config").write_text(f"""\
[server]
hosts = 127.0.0.1:{self.port}
[auth]
type = htpasswd
htpasswd_filename = {self.root / 'users'}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {self.root / 'collections'}
[logging]
level = warning
""")
        with open(self.root / "radicale.log", "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(self.root / "config")],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"radicale exited: {(self.root / 'radicale.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"radicale did not answer on 127.0.0.1:{self.port}")

    def pause(self) -> None:
        """Stop answering (the process ends, the collections stay): a calendar server that is down."""
        self._end_process()

    def resume(self) -> Radicale:
        return self.start()

    def stop(self) -> None:
        """Stop the server we started, by its pid, and remove its collections."""
        self._end_process()
        shutil.rmtree(self.root, ignore_errors=True)

    def _end_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self) -> DAVClient:
        return DAVClient(url=self.url, username=USER, password=PASSWORD, enable_rfc6764=False)

    def make_calendar(self, name: str) -> str:
        with self.client() as client:
            client.principal().make_calendar(name=name, cal_id=name)
        return self.calendar_url(name)

    def add_busy(self, name: str, uid: str, start: datetime, end: datetime) -> None:
        """An event someone put in the calendar themselves."""
        stamp = datetime(2026, 1, 1, tzinfo=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        body = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
                f"DTSTAMP:{stamp}\r\nDTSTART:{start.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}\r\n"
                f"DTEND:{end.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}\r\nSUMMARY:Busy\r\n"
                "END:VEVENT\r\nEND:VCALENDAR\r\n")
        with self.client() as client:
            client.put(self.calendar_url(name) + f"{uid}.ics", body, {"Content-Type": "text/calendar"})

    def events(self, name: str) -> list[str]:
        """The raw iCalendar text of every event in the calendar ``name``."""
        with self.client() as client:
            return [event.data for event in client.calendar(url=self.calendar_url(name)).events()]
