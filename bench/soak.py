"""The long run: the real daemon under IDLE for hours against Dovecot and an SMTP sink (on demand):

    .venv/bin/python -m bench.soak --minutes 120 --out soak-run/   # 10 for a quick run

Starts a private Dovecot behind a proxy (dispatchd/devproxy.py) and an SMTP sink on 127.0.0.1,
starts ``dispatchd run`` (IDLE, with its outbox sender) and feeds it a steady mix by IMAP APPEND
(bench/soak_mail.py): requests in the convention and in plain words, staff replies with commands,
client replies, auto-replies, bounces, list mail. Meanwhile it drops the IMAP connections at
the proxy every few minutes, restarts the SMTP sink, reloads the daemon (SIGHUP) every 15
minutes, runs the scheduled jobs on fast schedules, and runs ``dispatchd backup``/``prune``
when this build has them. Every ~30 s it appends a sample (memory, descriptors, threads, DB,
WAL and blob sizes, APPEND→confirmation latency) to OUT/samples.csv, so a cut-short run still
has its data; at the end it prints a verdict (bench/soak_verdict.py). Every server it starts it
stops by pid, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.soak_mail import Mix
from bench.soak_verdict import percentile, verdict
from dispatchd.demo import INTAKE, write_config
from dispatchd.devproxy import ImapProxy
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture

SETTINGS = """
[[clients]]
name = "Tyler"
senders = ["*@tyler-seo.test"]

[[staff]]
name = "Dev"
email = "dev@agency.test"
queues = ["dev"]

[[staff]]   # closes work out (bench/soak_mail.CLOSER)
name = "Lee"
email = "lee@agency.test"
role = "lead"
queues = ["content", "design", "dev", "strategy", "triage"]

[schedule]   # much faster than in production, so that hours see hundreds of job runs
sla = "*/2 * * * *"
redispatch = "*/3 * * * *"
digest = "*/10 * * * *"
staff-digest = "*/7 * * * *"
health = "*/11 * * * *"
"""


def settings(lifecycle: dict[str, bool]) -> str:
    """SETTINGS, and the scheduled backup and prune jobs when this build has them. Retention
    periods are a day at least: in a soak, prune walks everything and finds nothing due."""
    text = SETTINGS
    text += 'backup = "*/13 * * * *"\n' if lifecycle["backup"] else ""
    text += 'prune = "*/17 * * * *"\n' if lifecycle["prune"] else ""
    text += '\n[backup]\ndir = "scheduled-backups"\nkeep = 3\n' if lifecycle["backup"] else ""
    if lifecycle["prune"]:
        text += "\n[retention]\n" + "".join(f'{kind} = "1 day"\n' for kind in
                                             ("raw_mail", "attachments", "closed_tasks", "quarantine", "outbox_sent"))
    return text


COLUMNS = ("elapsed_s", "requests", "answered", "daemon_rss_kb", "daemon_pss_kb", "daemon_fds", "daemon_threads",
           "sender_rss_kb", "sender_pss_kb", "sender_fds", "sender_threads", "db_kb", "wal_kb", "blobs_kb",
           "latency_p50_s", "latency_p99_s", "imap_connections", "open_tasks")


class Stopped(Exception):
    """SIGTERM/SIGINT reached the soak: stop everything it started, keep what it measured."""


def _stop(signum: int, frame: object) -> None:
    for number in (signal.SIGTERM, signal.SIGINT):  # a second signal must not interrupt the cleanup
        signal.signal(number, signal.SIG_IGN)
    raise Stopped(signal.Signals(signum).name)


class Soak:
    def __init__(self, out: Path, minutes: float, interval: float, sample_every: float, arenas: int = 2):
        self.out, self.minutes, self.interval, self.sample_every = out, minutes, interval, sample_every
        self.arenas = arenas
        self.root = out / "daemon"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "config.toml"
        self.mix = Mix(ledger=out / "ledger.jsonl")
        self.window: list[float] = []  # latencies since the last sample
        self.samples: list[dict[str, float]] = []
        self.events = open(out / "events.jsonl", "a")
        self.started = time.monotonic()
        self.daemon: subprocess.Popen[bytes] | None = None
        self.final: dict[str, float] | None = None
        self.failures: list[str] = []  # backup, verify-backup or prune that did not succeed

    def event(self, name: str, **fields: object) -> None:
        line = {"elapsed_s": round(time.monotonic() - self.started, 1), "event": name, **fields}
        self.events.write(json.dumps(line) + "\n")
        self.events.flush()
        print(json.dumps(line), flush=True)

    def run(self) -> int:
        os.environ["DISPATCHD_DEMO_PASSWORD"] = PASSWORD
        with Dovecot() as dovecot, SmtpCapture() as smtp, ImapProxy(dovecot.port) as proxy:
            self.lifecycle = {name: _has_command(name) for name in ("backup", "verify-backup", "prune")}
            write_config(self.root, proxy.port, smtp.port, mode="idle", extra=settings(self.lifecycle)).chmod(0o600)
            self.event("start", minutes=self.minutes, root=str(self.root), **{
                name: "available" if ok else "not available in this build" for name, ok in self.lifecycle.items()})
            # As systemd/dispatchd.service runs it; 0 leaves glibc's default (an arena per thread).
            environment = {**os.environ, "MALLOC_ARENA_MAX": str(self.arenas)} if self.arenas else None
            with open(self.root / "daemon.log", "ab") as log:
                self.daemon = subprocess.Popen([sys.executable, "-m", "dispatchd", "run", "--config", str(self.config)],
                                               cwd=self.root, stdout=subprocess.DEVNULL, stderr=log,
                                               start_new_session=True, env=environment)
            stopped = None
            try:
                self._loop(dovecot, smtp, proxy)
            except Stopped as reason:
                stopped = str(reason)
                self.event("stopped", reason=stopped)
            finally:
                self._stop_daemon()
                self._sample(smtp, proxy, final=True)
        self.events.close()
        report = verdict(self.samples, self.mix, self.root, self.final)
        text = report.text + "".join(f"\n  - {failure}" for failure in self.failures)
        if stopped is not None:
            text += f"\n(cut short: {stopped})"
        (self.out / "summary.txt").write_text(text + "\n")
        print(text)
        return 0 if report.ok and not self.failures and stopped is None else 1

    def _loop(self, dovecot: Dovecot, smtp: SmtpCapture, proxy: ImapProxy) -> None:
        end = self.started + self.minutes * 60
        # A short run does each disturbance at least three times.
        span = self.minutes * 60
        every = {"drop": min(240, span / 4), "smtp": min(660, span / 3), "reload": min(900, span / 3),
                 "backup": min(1200, span / 3), "prune": min(1200, span / 3)}
        due = {"mail": self.started + 10, "sample": self.started + 30, "drop": self.started + every["drop"],
               "smtp": self.started + every["smtp"] * 0.6, "reload": self.started + every["reload"],
               "backup": self.started + every["backup"] * 0.5, "prune": self.started + every["prune"] * 0.8}
        while time.monotonic() < end:
            self._alive()
            now = time.monotonic()
            if now >= due["mail"]:
                appended = time.perf_counter()
                dovecot.append(INTAKE, [self.mix.next_mail(appended)])
                due["mail"] = now + self.interval
            if now >= due["sample"]:
                self._sample(smtp, proxy)
                due["sample"] = now + self.sample_every
            if now >= due["drop"]:
                self.event("imap.dropped", connections=_drop_connections(proxy))
                due["drop"] = now + every["drop"]
            if now >= due["smtp"]:
                smtp.stop()
                time.sleep(5)
                smtp.start()
                self.event("smtp.restarted", down_s=5)
                due["smtp"] = now + every["smtp"]
            if now >= due["reload"]:
                assert self.daemon is not None
                self.daemon.send_signal(signal.SIGHUP)
                self.event("reload", signal="SIGHUP")
                due["reload"] = now + every["reload"]
            for name in ("backup", "prune"):
                if now >= due[name]:
                    self._lifecycle(name)
                    due[name] = now + every[name]
            self.window += self.mix.read_sink(smtp.messages)
            time.sleep(0.2)
        self._drain(smtp)

    def _drain(self, smtp: SmtpCapture, quiet: float = 120.0, limit: float = 600.0) -> None:
        """Mail stops; wait until every request is answered, or nothing new came for ``quiet`` s."""
        self.event("drain.start", requests=len(self.mix.requests), answered=len(self.mix.answers))
        deadline, count, since = time.monotonic() + limit, len(smtp.messages), time.monotonic()
        while time.monotonic() < deadline and len(self.mix.answers) < len(self.mix.requests):
            self._alive()
            time.sleep(1)
            self.window += self.mix.read_sink(smtp.messages)
            if len(smtp.messages) != count:
                count, since = len(smtp.messages), time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        time.sleep(10)  # a late duplicate would arrive now
        self.window += self.mix.read_sink(smtp.messages)
        self.event("drain.done", requests=len(self.mix.requests), answered=len(self.mix.answers))

    def _alive(self) -> None:
        if self.daemon is not None and self.daemon.poll() is not None:
            self.event("daemon.died", returncode=self.daemon.returncode)
            raise Stopped(f"the daemon exited with {self.daemon.returncode}")

    def _lifecycle(self, name: str) -> None:
        if not self.lifecycle[name]:
            self.event(name, result="not available in this build")
            return
        args = [name, str(self.out / "backups"), "--keep", "3", "--json"] if name == "backup" else [name, "--json"]
        done, seconds = self._cli(args)
        self.event(name, returncode=done.returncode, seconds=seconds, output=_brief(done))
        if done.returncode != 0:
            self.failures.append(f"{name} exited with {done.returncode} at {seconds} s")
        if name == "backup" and done.returncode == 0 and self.lifecycle.get("verify-backup"):
            snapshot = json.loads(done.stdout)["snapshot"]
            checked, seconds = self._cli(["verify-backup", snapshot, "--json"])
            self.event("verify-backup", returncode=checked.returncode, seconds=seconds, output=_brief(checked))
            if checked.returncode != 0:
                self.failures.append(f"verify-backup {snapshot} exited with {checked.returncode}")

    def _cli(self, args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
        began = time.monotonic()
        command = [sys.executable, "-m", "dispatchd", *args, "--config", str(self.config)]
        try:
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as exc:  # run() has killed it
            done = subprocess.CompletedProcess(command, -9, str(exc.stdout or ""), "timed out after 600 s")
        return done, round(time.monotonic() - began, 2)

    def _sample(self, smtp: SmtpCapture, proxy: ImapProxy, final: bool = False) -> None:
        self.window += self.mix.read_sink(smtp.messages)
        row: dict[str, float] = {"elapsed_s": round(time.monotonic() - self.started, 1),
                                 "requests": len(self.mix.requests), "answered": len(self.mix.answers),
                                 "imap_connections": proxy.connections}
        daemon_pid = self.daemon.pid if self.daemon is not None and self.daemon.poll() is None else None
        children = _children(daemon_pid) if daemon_pid else []
        for role, pids in (("daemon", [daemon_pid] if daemon_pid else []), ("sender", children)):
            stats = [_process(pid) for pid in pids]
            for key in ("rss_kb", "pss_kb", "fds", "threads"):
                row[f"{role}_{key}"] = sum(s.get(key, 0) for s in stats)
        row["db_kb"] = _size(self.root / "dispatchd.db")
        row["wal_kb"] = _size(self.root / "dispatchd.db-wal")
        row["blobs_kb"] = _tree_size(self.root / "data")
        row["open_tasks"] = _open_tasks(self.root / "dispatchd.db")  # what the jobs' working sets grow with
        row["latency_p50_s"] = round(percentile(self.window, 50), 3) if self.window else ""  # type: ignore[assignment]
        row["latency_p99_s"] = round(percentile(self.window, 99), 3) if self.window else ""  # type: ignore[assignment]
        self.window = []
        if final:
            row["final"] = 1
            self.final = row
            return
        self.samples.append(row)
        path = self.out / "samples.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        with open(self.out / "samples.jsonl", "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def _stop_daemon(self) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait(timeout=10)
        self.event("daemon.stopped", returncode=self.daemon.returncode)


def _brief(done: subprocess.CompletedProcess[str]) -> object:
    """A command's --json answer without its per-table counts (but the task count), else its last words."""
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return (done.stdout + done.stderr)[-300:]
    if isinstance(answer, dict) and isinstance(answer.get("counts"), dict):
        answer["counts"] = {"task": answer["counts"].get("task")}
    return answer


def _has_command(name: str) -> bool:
    """Whether this checkout's CLI has ``dispatchd NAME`` (helpers add commands while we run)."""
    done = subprocess.run([sys.executable, "-m", "dispatchd", name, "--help"], capture_output=True, text=True)
    return done.returncode == 0


def _drop_connections(proxy: ImapProxy) -> int:
    """Cut every connection through the proxy, as a server restart or a NAT timeout would."""
    with proxy._lock:
        sockets, proxy._sockets = list(proxy._sockets), []
        proxy._threads = [t for t in proxy._threads if t.is_alive()]
        proxy.commands = proxy.commands[-1000:]
    for sock in sockets:
        try:
            sock.shutdown(2)
        except OSError:
            pass
        sock.close()
    return len(sockets) // 2


def _open_tasks(database: Path) -> int | str:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT count(*) FROM task WHERE status NOT IN ('closed', 'cancelled')").fetchone()[0])
    except sqlite3.Error:
        return ""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        direct = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, direct):
        found += [child, *_children(child)]
    return found


def _process(pid: int) -> dict[str, int]:
    stats: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss"):
                stats[f"{key.lower()}_kb"] = int(value.split()[0])
        stats["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                stats["threads"] = int(line.split()[1])
    except OSError:
        pass
    return stats


def _size(path: Path) -> int:
    try:
        return path.stat().st_size // 1024
    except OSError:
        return 0


def _tree_size(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file()) // 1024 if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("soak-run"))
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between inbound emails")
    parser.add_argument("--sample-every", type=float, default=30.0)
    parser.add_argument("--malloc-arena-max", type=int, default=2,
                        help="MALLOC_ARENA_MAX for the daemon, as the systemd unit sets it (0: glibc's default)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if (args.out / "samples.jsonl").exists() or (args.out / "ledger.jsonl").exists():
        parser.error(f"{args.out} holds an earlier run: give a new directory")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    soak = Soak(args.out.resolve(), args.minutes, args.interval, args.sample_every, args.malloc_arena_max)
    try:
        code = soak.run()
    except Stopped as reason:
        print(f"stopped: {reason}; every server it started is stopped; samples in {args.out}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
