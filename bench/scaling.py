"""Scaling out on PostgreSQL (run on demand): one vs two instances, and failover time.

    python -m bench.scaling            # 2,000 requests per figure
    python -m bench.scaling --requests 10000

All against a private PostgreSQL (fsync on, as in production), Dovecot and an aiosmtpd sink on
127.0.0.1. Each figure starts the daemons first, waits until they read their mailboxes, then
appends the whole backlog and times it until the last confirmation is accepted by the sink.
Prints a table and writes bench/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import confirmations, requests
from dispatchd.devservers import PASSWORD, Dovecot, Postgres, SmtpCapture
from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import wait_for

ROOT = Path(__file__).resolve().parent
NO_CAPS = ("[intake]\nmax_replies_per_hour = 1000000\nmax_replies_per_sender_per_hour = 100000\n"
           "max_replies_per_thread_per_hour = 100000\n")


class Setup:
    """A config with one [[mailbox]] per user, on a fresh database of the cluster."""

    def __init__(self, dovecot: Dovecot, postgres: Postgres, sink: SmtpCapture, users: list[str], name: str):
        self.dovecot, self.sink, self.users = dovecot, sink, users
        self.root = Path(tempfile.mkdtemp(prefix=f"dispatchd-scaling-{name}-"))
        tables = "".join(mailbox_table(u, dovecot.port, header="[[mailbox]]", more=f'name = "{u.split("@")[0]}"')
                         for u in users)
        write_config(self.root, dovecot.port, sink.port, mailbox=users[0], extra=NO_CAPS,
                     database_url=postgres.create_database(name), mailboxes=tables)
        text = (self.root / "config.toml").read_text().replace('format = "json"', 'format = "json"\nlevel = "info"')
        (self.root / "config.toml").write_text(text)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "DISPATCHD_TEST_PASSWORD": PASSWORD}
        log = open(self.root / f"daemon{len(self.processes)}.log", "ab")  # noqa: SIM115 (kept by the child)
        process = subprocess.Popen([sys.executable, "-m", "dispatchd", "run", *args, "--config",
                                    str(self.root / "config.toml")], env=env, stderr=log, start_new_session=True)
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        path = self.root / f"daemon{index}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def readers(self) -> int:
        return sum(self.log(i).count('"event": "mailbox.reading"') for i in range(len(self.processes)))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def backlog(setup: Setup, count: int) -> float:
    """Append ``count`` requests spread over the setup's mailboxes; requests/s to the last confirmation."""
    per_mailbox = count // len(setup.users)
    wait_for(lambda: setup.readers() >= len(setup.users), 30, "every mailbox to have a reader")
    started = time.perf_counter()
    for index, user in enumerate(setup.users):
        setup.dovecot.append(user, requests(per_mailbox, start=index * per_mailbox))
    wait_for(lambda: len(confirmations(setup.sink)) >= per_mailbox * len(setup.users), 600, "confirmations")
    return per_mailbox * len(setup.users) / (time.perf_counter() - started)


def failover(setup: Setup, kills: int) -> list[float]:
    """Seconds from SIGKILL of the reader to the standby reading the mailbox, ``kills`` times."""
    times = []
    for _ in range(kills):
        wait_for(lambda: any(p.poll() is None for p in setup.processes) and setup.readers() > len(times), 30,
                 "a reader")
        reader = next(i for i, p in enumerate(setup.processes)
                      if p.poll() is None and setup.log(i).count('"event": "mailbox.reading"')
                      > setup.log(i).count('"event": "mailbox.released"'))
        before = setup.readers()
        time.sleep(random.random() * 2)  # not in step with the standby's retry interval
        killed = time.perf_counter()
        os.killpg(setup.processes[reader].pid, signal.SIGKILL)
        setup.processes[reader].wait()
        wait_for(lambda: setup.readers() > before, 30, "takeover")
        times.append(time.perf_counter() - killed)
        setup.start()  # a new standby, as systemd's Restart= would give
        index = len(setup.processes) - 1
        wait_for(lambda: '"event": "daemon.started"' in setup.log(index), 30, "the new standby")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    count = args.requests
    results: dict[str, object] = {"requests": count}
    with Postgres(durable=True) as postgres, Dovecot() as dovecot:
        figures = [
            ("one instance, one mailbox", ["one-a"], [()]),
            ("two instances, one mailbox (one reads, both send)", ["two-a"], [(), ()]),
            ("one instance, two mailboxes", ["m1-a", "m1-b"], [()]),
            ("two instances, two mailboxes (one each)", ["m2-a", "m2-b"], [("--mailbox", "m2-a"),
                                                                          ("--mailbox", "m2-b")]),
        ]
        for label, users, instances in figures:
            print(f"{label} ...", flush=True)
            with SmtpCapture() as sink:
                setup = Setup(dovecot, postgres, sink, [f"{u}@agency.test" for u in users], users[0].replace("-", "_"))
                try:
                    for instance_args in instances:
                        setup.start(*instance_args)
                    results[label] = {"requests_per_s": backlog(setup, count)}
                finally:
                    setup.stop()
        print("failover ...", flush=True)
        with SmtpCapture() as sink:
            setup = Setup(dovecot, postgres, sink, ["failover@agency.test"], "failover")
            try:
                setup.start()
                setup.start()
                wait_for(lambda: all('"event": "daemon.started"' in setup.log(i) for i in (0, 1)), 30,
                         "both instances")
                times = failover(setup, args.kills)
            finally:
                setup.stop()
        results["failover"] = {"kills": len(times), "mean_s": sum(times) / len(times), "max_s": max(times)}
    (ROOT / "scaling.json").write_text(json.dumps(results, indent=2))
    print()
    for label, values in results.items():
        if isinstance(values, dict):
            print(f"{label}: " + "  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in values.items()))
    print(f"\nwritten to {ROOT / 'scaling.json'}")


if __name__ == "__main__":
    main()
