"""What an SMTP server's faults cost (issue 21, 2 and 3): ``python -m bench.smtp_faults [--seconds S]``.

Queues emails in a throw-away SQLite database and runs the daemon's send loop (``SendLoop``,
woken every 0.25 s as intake would) against the fault-injecting SMTP server of the tests
(``tests/integration/faultsmtp.py``) for S seconds per scenario: a refused login (535), a server
that resets every connection, ``421`` at MAIL FROM, Gmail's daily quota (``550 5.4.5``).
Prints the connections and AUTH attempts the server saw, the attempts charged to emails and the
emails parked. Runs against whatever ``dispatchd`` is importable (PYTHONPATH picks a version).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import Session, select

from dispatchd.config import load_config
from dispatchd.daemon import build_deps, build_outbox
from dispatchd.logging import configure_logging
from dispatchd.sending import SendLoop
from dispatchd.store.tables import Outbox
from tests.conftest import write_config
from tests.integration.faultsmtp import FaultySmtp

SCENARIOS = [  # (name, emails, stage, reply)
    ("535 at AUTH", 60, "auth", "535 5.7.8 Username and Password not accepted"),
    ("535 at AUTH", 200, "auth", "535 5.7.8 Username and Password not accepted"),
    ("connection reset", 200, "connect", ""),
    ("421 at MAIL FROM", 200, "mail", "421 4.7.0 Try again later, closing connection."),
    ("550 5.4.5 quota at DATA", 200, "data", "550 5.4.5 Daily user sending quota exceeded."),
]


async def serve(loop: SendLoop, seconds: float) -> None:
    stop = asyncio.Event()
    serving = asyncio.ensure_future(loop.serve(stop))
    for _ in range(int(seconds / 0.25)):
        await asyncio.sleep(0.25)
        loop.wake()
    stop.set()
    await serving


def scenario(emails: int, stage: str, reply: str, seconds: float) -> tuple[int, int, int, int]:
    server = FaultySmtp(password="secret").start()
    try:
        root = Path(tempfile.mkdtemp(prefix="dispatchd-smtp-bench-"))
        path = write_config(root, smtp_port=server.port)
        path.write_text(path.read_text().replace(
            "timeout = 5\n", 'timeout = 5\nusername = "agent"\npassword_env = "DISPATCHD_SMTP_TEST_PASSWORD"\n', 1))
        deps = build_deps(load_config(path))
        now = datetime.now(timezone.utc)
        with Session(deps.engine) as session, session.begin():
            for n in range(emails):
                raw = f"From: a@agency.test\r\nTo: p{n}@acme.test\r\nMessage-ID: <b{n}@agency.test>\r\n\r\nhi\r\n"
                session.add(Outbox(message_id=f"<b{n}@agency.test>", kind="staff-status", envelope_from="a@agency.test",
                                   recipients=f"p{n}@acme.test", subject=str(n), raw=raw.encode(),
                                   next_attempt_at=now, created_at=now))
        server.fail_at(stage, reply)
        asyncio.run(serve(SendLoop(build_outbox(deps)), seconds))
        with Session(deps.engine) as session:
            rows = session.exec(select(Outbox)).all()
        deps.engine.dispose()
        return (server.counts.connections, server.counts.auth_attempts, sum(r.attempts for r in rows),
                sum(r.status == "parked" for r in rows))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", "unused")
    os.environ.setdefault("DISPATCHD_SMTP_TEST_PASSWORD", "secret")
    configure_logging("error", "json")
    print(f"{'scenario':26} {'emails':>6} {'connections':>11} {'AUTH':>5} {'charged':>7} {'parked':>6}  ({args.seconds:g} s)")
    for name, emails, stage, reply in SCENARIOS:
        connections, auths, charged, parked = scenario(emails, stage, reply, args.seconds)
        print(f"{name:26} {emails:>6} {connections:>11} {auths:>5} {charged:>7} {parked:>6}")


if __name__ == "__main__":
    main()
