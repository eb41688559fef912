"""Benchmarks against a private Dovecot and an aiosmtpd sink on 127.0.0.1 (run on demand):

    python -m bench            # quick sizes, a few minutes
    python -m bench --full     # the sizes of issue 7: 10k backlog, 60 s latency, 50k memory

Prints a table and writes bench/results.json. Raw limits of each stage are measured first, in
the same run, and the pipeline's figures are compared with them.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiosmtplib
import mailparser

from dispatchd.devproxy import ImapProxy
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture
from tests.conftest import write_config
from tests.integration.conftest import make_mail

ROOT = Path(__file__).resolve().parent
USER = "requests@agency.test"


def requests(count: int, start: int = 0) -> list[bytes]:
    kinds = ["Content", "Design", "Technical", "Strategy"]
    mails = []
    for n in range(start, start + count):
        subject = f"[Acme] - {kinds[n % 4]} - Benchmark request {n}"
        if n % 5 == 0:
            mails.append(make_mail(subject, sender=f"c{n % 97}@acme.test", html=f"<p>Request <b>{n}</b></p>",
                                   message_id=f"<bench-{n}@client.test>"))
        elif n % 7 == 0:
            mails.append(make_mail(subject, sender=f"c{n % 97}@acme.test", attachments=(("brief.pdf", b"%PDF" * 500),),
                                   message_id=f"<bench-{n}@client.test>"))
        else:
            mails.append(make_mail(subject, sender=f"c{n % 97}@acme.test", body="Please. " * 40,
                                   message_id=f"<bench-{n}@client.test>"))
    return mails


def deployment(dovecot: Dovecot, smtp: SmtpCapture, user: str, imap_port: int | None = None) -> Path:
    root = Path(tempfile.mkdtemp(prefix="dispatchd-bench-"))
    write_config(root, imap_port or dovecot.port, smtp.port, mailbox=user, extra=(
        "[intake]\nmax_replies_per_hour = 1000000\nmax_replies_per_sender_per_hour = 100000\n"
        "max_replies_per_thread_per_hour = 100000\n"))
    text = (root / "config.toml").read_text().replace('format = "json"', 'format = "json"\nlevel = "warning"')
    (root / "config.toml").write_text(text)
    return root


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def raw_limits(dovecot: Dovecot, smtp: SmtpCapture, count: int) -> dict[str, float]:
    user = "raw@agency.test"
    mails = requests(count)
    dovecot.append(user, mails)
    client = dovecot.client(user)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    started = time.perf_counter()
    fetched = []
    for index in range(0, len(uids), 200):
        fetched.extend(v[b"BODY[]"] for v in client.fetch(uids[index:index + 200], ["BODY.PEEK[]"]).values())
    fetch = rate(len(fetched), time.perf_counter() - started)
    client.logout()
    started = time.perf_counter()
    for data in fetched:
        mailparser.parse_from_bytes(data)
    parse = rate(len(fetched), time.perf_counter() - started)

    async def send() -> float:
        connection = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, start_tls=False)
        await connection.connect()
        message = b"From: a@agency.test\r\nTo: b@acme.test\r\nSubject: x\r\n\r\nhello\r\n"
        begun = time.perf_counter()
        for _ in range(count):
            await connection.sendmail("a@agency.test", ["b@acme.test"], message)
        elapsed = time.perf_counter() - begun
        await connection.quit()
        return rate(count, elapsed)
    sent = asyncio.run(send())
    store, store_batched = store_limit(count, per_commit=1), store_limit(count, per_commit=500)
    composed = 1 / sum(1 / r for r in (fetch, parse, store, sent / 2))  # two emails per request
    # The same with the store stage committing 500 rows at a time: a higher, stricter ceiling.
    composed_batched = 1 / sum(1 / r for r in (fetch, parse, store_batched, sent / 2))
    return {"imap_fetch_per_s": fetch, "mailparser_per_s": parse, "sqlmodel_insert_per_s": store,
            "sqlmodel_insert_500_per_commit_per_s": store_batched, "smtp_send_per_s": sent,
            "composed_limit_requests_per_s": composed, "composed_limit_batched_store_requests_per_s": composed_batched}


def store_limit(count: int, per_commit: int) -> float:
    from datetime import datetime, timezone

    from sqlmodel import Session

    from dispatchd.store.db import migrate, open_engine
    from dispatchd.store.tables import Task

    path = Path(tempfile.mkdtemp()) / "store.db"
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    for first in range(0, count, per_commit):
        with Session(engine) as session, session.begin():
            session.add_all(Task(queue="content", priority="P2", status="queued", description=f"d{n}", subject="s",
                                 sender="b@acme.test", sla="5 business days", message_id=f"<{n}@x>", created_at=now,
                                 updated_at=now) for n in range(first, min(count, first + per_commit)))
    return rate(count, time.perf_counter() - started)


def run_once(root: Path) -> tuple[float, int, int]:
    """Seconds for `dispatchd run --once`, and the peak RSS in KB of the daemon and of its sender
    process (VmHWM, read while they run). Not wait4's ru_maxrss: exec keeps the peak of the
    memory it replaces, so that figure includes this benchmark's own size at the fork."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "dispatchd", "run", "--once", "--config",
                              str(root / "config.toml")],
                             stderr=subprocess.DEVNULL, env={**os.environ, "DISPATCHD_TEST_PASSWORD": PASSWORD})
    peaks = {"daemon": 0, "sender": 0}
    watcher = threading.Thread(target=_watch_peaks, args=(child.pid, peaks), daemon=True)
    watcher.start()
    child.wait()
    elapsed = time.perf_counter() - started
    watcher.join()
    if child.returncode != 0:
        raise RuntimeError(f"dispatchd run --once exited with {child.returncode}")
    return elapsed, peaks["daemon"], peaks["sender"]


def _watch_peaks(pid: int, peaks: dict[str, int]) -> None:
    """The VmHWM (peak resident set) of ``pid`` and of its children, while ``pid`` runs."""
    while Path(f"/proc/{pid}").exists():
        try:
            peaks["daemon"] = max(peaks["daemon"], _hwm(pid))
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                peaks["sender"] = max(peaks["sender"], _hwm(int(child)))
        except (FileNotFoundError, ProcessLookupError):
            pass  # exited between two reads
        time.sleep(0.2)


def _hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0  # a zombie has no memory left


def backlog(dovecot: Dovecot, count: int, user: str) -> dict[str, float]:
    with SmtpCapture() as sink:
        root = deployment(dovecot, sink, user)
        dovecot.append(user, requests(count))
        seconds, rss, sender_rss = run_once(root)
        confirmed = len(confirmations(sink))
        assert confirmed == count, (confirmed, count)
    return {"requests": count, "seconds": seconds, "requests_per_s": rate(count, seconds),
            "emails_sent": len(sink.messages), "peak_rss_mb": rss / 1024, "sender_peak_rss_mb": sender_rss / 1024}


def fixed_cost(dovecot: Dovecot) -> float:
    """Seconds of `run --once` with nothing to read: start-up and shutdown, paid once a run
    whatever its size (best of three)."""
    with SmtpCapture() as sink:
        root = deployment(dovecot, sink, "empty@agency.test")
        return min(run_once(root)[0] for _ in range(3))


IDLE_WINDOW = 10.0  # seconds of nothing arriving, before the load, to count what an idle daemon does


def latency(dovecot: Dovecot, per_second: float, seconds: float) -> dict[str, float]:
    """APPEND -> confirmation under IDLE at ``per_second``, with the IMAP commands the daemon sent
    (counted by a proxy in front of Dovecot) during the load and in an idle window before it."""
    user = "latency@agency.test"
    with SmtpCapture() as sink, ImapProxy(dovecot.port) as proxy:
        root = deployment(dovecot, sink, user, imap_port=proxy.port)
        env = {**os.environ, "DISPATCHD_TEST_PASSWORD": PASSWORD}
        daemon = subprocess.Popen([sys.executable, "-m", "dispatchd", "run", "--config", str(root / "config.toml")],
                                  env=env, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            while not any(c.name == "IDLE" for c in proxy.commands):  # start-up and the first pass done
                time.sleep(0.05)
            time.sleep(1.0)
            idle_from, cpu_before = time.monotonic(), _cpu_seconds(daemon.pid)
            time.sleep(IDLE_WINDOW)
            idle_cpu = _cpu_seconds(daemon.pid) - cpu_before
            idle_commands = len(proxy.since(idle_from))
            appended: dict[str, float] = {}
            client = dovecot.client(user)
            total = int(per_second * seconds)
            load_from = time.monotonic()
            begun = time.perf_counter()
            for n, mail in enumerate(requests(total, start=500_000)):
                target = begun + n / per_second
                time.sleep(max(0.0, target - time.perf_counter()))
                appended[f"<bench-{500_000 + n}@client.test>"] = time.perf_counter()
                client.append("INBOX", mail)
            client.logout()
            deadline = time.perf_counter() + 60
            while len(confirmations(sink)) < total and time.perf_counter() < deadline:
                time.sleep(0.05)
            load_commands = len(proxy.since(load_from))
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
        delays = sorted(arrived - appended[original] for original, arrived in confirmations(sink).items()
                        if original in appended)
    quantile = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    return {"sent_per_s": per_second, "seconds": seconds, "confirmed": len(delays), "p50_s": quantile(0.50),
            "p95_s": quantile(0.95), "p99_s": quantile(0.99), "max_s": delays[-1] if delays else float("nan"),
            "imap_commands_during_load": load_commands, "idle_window_s": IDLE_WINDOW,
            "imap_commands_idle": idle_commands, "cpu_s_idle_daemon_and_sender": idle_cpu}


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and of its live children, from /proc."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def confirmations(sink: SmtpCapture) -> dict[str, float]:
    """In-Reply-To of each client confirmation -> when the sink accepted it."""
    found = {}
    for received in list(sink.messages):
        if b"Received:" not in received.data[:2000]:
            continue
        parsed = email.message_from_bytes(received.data)
        if parsed["In-Reply-To"]:
            found[parsed["In-Reply-To"]] = received.at
    return found


def replies(dovecot: Dovecot, count: int) -> dict[str, float]:
    user = "replies@agency.test"
    with SmtpCapture() as sink:
        root = deployment(dovecot, sink, user)
        dovecot.append(user, [make_mail(f"[Acme] - Content - Reply bench {n}", sender=f"r{n % 50}@acme.test")
                              for n in range(count)])
        run_once(root)
        notices = [email.message_from_bytes(m.data) for m in sink.messages if "ben@agency.test" in m.rcpt_tos]
        answers = [make_mail(f"Re: {n['Subject']}", sender="ben@agency.test", body="take\nstart", to=n["Reply-To"],
                             headers={"In-Reply-To": n["Message-ID"]}) for n in notices]
        dovecot.append(user, answers)
        seconds, _, _ = run_once(root)
    return {"replies": len(answers), "seconds": seconds, "replies_per_s": rate(len(answers), seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--full", action="store_true", help="the sizes of issue 7 (takes long)")
    parser.add_argument("--latency-only", action="store_true", help="only the latency and idle figures")
    args = parser.parse_args()
    sizes = dict(raw=2000, backlog=10_000, latency=60.0, memory=(1000, 10_000, 50_000), replies=2000) if args.full \
        else dict(raw=1000, backlog=1000, latency=20.0, memory=(500, 2000), replies=300)
    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", PASSWORD)
    results: dict[str, object] = {"sizes": {k: v for k, v in sizes.items()}}
    if args.latency_only:
        with Dovecot() as dovecot:
            results["latency"] = latency(dovecot, 20.0, sizes["latency"])
        _print(results)
        return
    with Dovecot() as dovecot, SmtpCapture() as sink:
        print("measuring raw limits ...", flush=True)
        results["raw"] = raw = raw_limits(dovecot, sink, sizes["raw"])
    with Dovecot() as dovecot:
        print("backlog ...", flush=True)
        results["backlog"] = back = backlog(dovecot, sizes["backlog"], "backlog@agency.test")
        back["ratio_to_composed_limit"] = back["requests_per_s"] / raw["composed_limit_requests_per_s"]
        back["ratio_to_composed_limit_batched_store"] = \
            back["requests_per_s"] / raw["composed_limit_batched_store_requests_per_s"]
        print("latency ...", flush=True)
        results["latency"] = latency(dovecot, 20.0, sizes["latency"])
        print("memory and growth ...", flush=True)
        fixed = fixed_cost(dovecot)
        results["memory"] = [backlog(dovecot, n, f"memory{n}@agency.test") for n in sizes["memory"]]
        for row in results["memory"]:  # cost per request without the fixed start-up and shutdown
            row["fixed_seconds"] = fixed
            row["ms_per_request_after_startup"] = (row["seconds"] - fixed) / row["requests"] * 1000
        print("replies ...", flush=True)
        results["replies"] = replies(dovecot, sizes["replies"])
    (ROOT / "results.json").write_text(json.dumps(results, indent=2))
    _print(results)
    print(f"\nwritten to {ROOT / 'results.json'}")


def _print(results: dict[str, object]) -> None:
    print()
    for section, values in results.items():
        print(f"{section}:")
        for row in values if isinstance(values, list) else [values]:
            print("   " + "  ".join(f"{k}={v:.{3 if abs(v) < 10 else 1}f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
