"""Going live on a mailbox with history, measured (run on demand):

    python -m bench.golive [--messages 5000]

Against a private Dovecot and an aiosmtpd sink: the first start over N old messages (recorded
as before go-live: headers only, nothing sent), then ``dispatchd import --quiet`` of half of them
and ``dispatchd import`` (with confirmations, sent) of the rest. Prints seconds and messages/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import datetime, timedelta, timezone

from bench.__main__ import deployment, rate, requests
from dispatchd.cli import main as cli
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture

USER = "golive@agency.test"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.golive")
    parser.add_argument("--messages", type=int, default=5000)
    count = parser.parse_args().messages
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", PASSWORD)
    with Dovecot() as dovecot, SmtpCapture() as smtp:
        root = deployment(dovecot, smtp, USER)
        config = root / "config.toml"
        config.write_text(config.read_text().replace('start_after = "2000-01-01"\n', ""))
        now = datetime.now(timezone.utc)
        client = dovecot.client(USER)
        for index, message in enumerate(requests(count)):  # spread over the last 100 days
            client.append("INBOX", message, msg_time=now - timedelta(days=100) * (1 - index / count))
        client.logout()
        figures = []
        started = time.perf_counter()
        assert cli(["run", "--once", "--config", str(config)]) == 0
        figures.append(("first start (recorded, nothing sent)", count, time.perf_counter() - started))
        assert not smtp.messages
        half = (now - timedelta(days=50)).date().isoformat()
        started = time.perf_counter()
        assert cli(["import", "--since", half, "--quiet", "--config", str(config)]) == 0
        quiet = count - sum(1 for i in range(count) if now - timedelta(days=100) * (1 - i / count) < now - timedelta(days=50))
        figures.append(("import --quiet (tasks, no mail)", quiet, time.perf_counter() - started))
        started = time.perf_counter()
        assert cli(["import", "--since", "2000-01-01", "--config", str(config)]) == 0
        figures.append(("import (tasks, confirmations sent)", count - quiet, time.perf_counter() - started))
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'step':<40} {'messages':>9} {'seconds':>8} {'messages/s':>11}")
    for step, messages, seconds in figures:
        print(f"{step:<40} {messages:>9} {seconds:>8.1f} {rate(messages, seconds):>11.0f}")


if __name__ == "__main__":
    main()
