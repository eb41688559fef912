"""The sender-wide backoff: while the SMTP server refuses everyone, nobody sends.

A fault of the server (``mail.smtp_faults``) starts a hold. The hold is kept in the ``meta``
table, so every sender shares it: the daemon's sender process, a ``run --once`` from cron, the
other instances on PostgreSQL, and the sender that systemd starts after a crash. Probes are
spaced by a capped exponential backoff with jitter, chosen per kind of fault: an unreachable
server is asked again within seconds to minutes, a refused login only every several minutes to
an hour (a burst of failed logins gets an account locked). The owners are told once per
outage (one error; the daemon's ``systemctl status`` line shows the hold); each further probe
is a debug line. The first email that goes out ends the hold.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Engine

from dispatchd.clock import Clock
from dispatchd.mail.smtp_faults import Fault, ServerFault
from dispatchd.store.db import write_turn

log = structlog.get_logger("dispatchd.outbox")
HOLD_KEY = "smtp.hold"
JITTER = 0.25  # a wait is shortened by up to a quarter, so instances and restarts spread out


@dataclass(frozen=True)
class Spacing:
    first: float
    ceiling: float

    def delay(self, failures: int, draw: float) -> float:
        """Seconds before probe number ``failures`` + 1; ``draw`` in [0, 1) is the jitter."""
        nominal = min(self.ceiling, self.first * 2 ** max(0, failures - 1))
        return nominal * (1 - JITTER * draw)


SPACING = {
    Fault.UNREACHABLE: Spacing(30, 15 * 60),
    Fault.BUSY: Spacing(60, 15 * 60),
    Fault.QUOTA: Spacing(5 * 60, 60 * 60),
    Fault.LOGIN: Spacing(5 * 60, 60 * 60),
}


@dataclass(frozen=True)
class Hold:
    kind: str
    reason: str
    since: str       # ISO instants: the row is JSON text
    until: str
    failures: int

    @property
    def until_at(self) -> datetime:
        return datetime.fromisoformat(self.until)

    def describe(self) -> str:
        """For ``systemctl status`` and ``dispatchd outbox``: why nothing is sent, and until when."""
        return f"sending held until {self.until_at:%H:%M:%S} UTC ({self.kind}): {self.reason[:120]}"


class SenderHold:
    def __init__(self, engine: Engine, clock: Clock, draw: random.Random | None = None):
        self.engine = engine
        self.clock = clock
        self.random = draw or random.Random()
        self.told: str | None = None  # the kind of fault this process has reported as an error

    def current(self) -> Hold | None:
        return read_hold(self.engine)

    def remaining(self) -> float:
        """Seconds the sender must still wait (0 if it may send)."""
        hold = self.current()
        if hold is None:
            return 0.0
        return max(0.0, (hold.until_at - self.clock.now()).total_seconds())

    def fault(self, fault: ServerFault) -> Hold:
        """The server refused us again: the next probe waits longer."""
        now = self.clock.now()
        previous = self.current()
        failures = previous.failures + 1 if previous is not None and previous.kind == fault.kind else 1
        wait = SPACING[fault.kind].delay(failures, self.random.random())
        hold = Hold(kind=fault.kind.value, reason=fault.detail[:500],
                    since=previous.since if previous is not None else now.isoformat(),
                    until=(now + timedelta(seconds=wait)).isoformat(), failures=failures)
        self._write(hold)
        if previous is None or previous.kind != hold.kind or self.told != hold.kind:
            # Once per outage (and when its cause changes), not once per probe or per email.
            self.told = hold.kind
            log.error("smtp.unavailable", kind=hold.kind, reason=hold.reason, retry_at=hold.until,
                      since=hold.since)
        else:
            log.debug("smtp.still_unavailable", kind=hold.kind, reason=hold.reason, retry_at=hold.until,
                      failures=failures)
        return hold

    def recovered(self) -> None:
        """Mail went out: end the hold (if there was one)."""
        hold = self.current()
        self.told = None
        if hold is None:
            return
        with write_turn(self.engine), self.engine.begin() as connection:
            connection.execute(text("DELETE FROM meta WHERE key = :key"), {"key": HOLD_KEY})
        log.info("smtp.recovered", after=hold.reason, since=hold.since, probes=hold.failures)

    def _write(self, hold: Hold) -> None:
        with write_turn(self.engine), self.engine.begin() as connection:
            connection.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value) "
                                    "ON CONFLICT (key) DO UPDATE SET value = :value"),
                               {"key": HOLD_KEY, "value": json.dumps(asdict(hold))})


def read_hold(engine: Engine) -> Hold | None:
    """The hold in force or last in force (its ``until`` may have passed), or None."""
    with engine.connect() as connection:
        value = connection.execute(text("SELECT value FROM meta WHERE key = :key"), {"key": HOLD_KEY}).scalar()
    if not value:
        return None
    try:
        return Hold(**json.loads(value))
    except (TypeError, ValueError):
        return None  # written by another version: ignore it, the next fault writes a new one
