"""The soak's verdict (``bench.soak``): trends over the second half, the WAL, exactly-once answers.

Again for a finished or cut-short run: ``.venv/bin/python -m bench.soak_verdict DIR`` (its
samples.jsonl, ledger.jsonl and daemon/ database).

A trend counts only when it is both real and large: the least-squares slope over the second half
must stand out of the noise (more than three standard errors from zero) AND add up, over that
half, to more than a tolerance (memory 5 %, descriptors 3, threads 2, latency 25 % and 0.5 s).
Either alone is not a leak: a steady +40 KB of allocator noise is significant over a thousand
samples, and a 10 % jump between two samples is noise when the rest are flat.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.soak_mail import Mix, read_ledger

# metric -> (relative tolerance of the mean, absolute tolerance) over the second half
TRENDS = {"daemon_rss_kb": (0.05, 2048), "daemon_pss_kb": (0.05, 2048), "sender_rss_kb": (0.05, 2048),
          "sender_pss_kb": (0.05, 2048), "daemon_fds": (0.0, 3), "sender_fds": (0.0, 3),
          "daemon_threads": (0.0, 2), "sender_threads": (0.0, 2), "latency_p50_s": (0.25, 0.5),
          "latency_p99_s": (0.25, 0.5)}
EXPECTED_ERRORS = {"intake.unavailable", "smtp.unavailable"}  # the soak cuts IMAP and restarts the sink
LOG_LINE = re.compile(r"^\S+ \[(\w+)\s*\] (\S+)")  # the console renderer: time [level   ] event ...
WAL_LIMIT_KB = 16 * 1024  # autocheckpoint keeps the WAL near 1000 pages (4 MB); far above that, it is stuck


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Trend:
    name: str
    first: float
    last: float
    change: float  # slope × duration of the second half
    stderr: float  # of that change
    tolerance: float

    @property
    def rising(self) -> bool:
        return self.change > 3 * self.stderr and self.change > self.tolerance


def trend(samples: list[dict[str, float]], name: str) -> Trend | None:
    points = [(float(s["elapsed_s"]), float(s[name])) for s in samples if s.get(name) not in (None, "")]
    half = points[len(points) // 2:]
    if len(half) < 4:
        return None
    n = len(half)
    mean_t, mean_y = sum(t for t, _ in half) / n, sum(y for _, y in half) / n
    sxx = sum((t - mean_t) ** 2 for t, _ in half)
    if sxx == 0:
        return None
    slope = sum((t - mean_t) * (y - mean_y) for t, y in half) / sxx
    residual = sum((y - (mean_y + slope * (t - mean_t))) ** 2 for t, y in half) / max(1, n - 2)
    span = half[-1][0] - half[0][0]
    relative, absolute = TRENDS[name]
    return Trend(name, points[0][1], points[-1][1], slope * span, math.sqrt(residual / sxx) * span,
                 max(relative * abs(mean_y), absolute))


@dataclass(frozen=True)
class Report:
    ok: bool
    text: str


def verdict(samples: list[dict[str, float]], mix: Mix, root: Path, final: dict[str, float] | None) -> Report:
    lines, problems = [], []
    duration = samples[-1]["elapsed_s"] if samples else 0
    lines.append(f"soak: {duration / 60:.1f} min, {len(samples)} samples; inbound by kind {dict(sorted(mix.counts.items()))}")
    latencies = [t - mix.requests[m][0] for m, times in mix.answers.items() for t in times[:1]]
    if latencies:
        lines.append(f"APPEND→confirmation: p50 {percentile(latencies, 50):.2f} s, p99 {percentile(latencies, 99):.2f} s, "
                     f"max {max(latencies):.2f} s over {len(latencies)} requests")
    lines.append(f"{'metric':<16}{'first':>10}{'last':>10}{'2nd-half Δ':>12}{'± 3σ':>10}{'tolerance':>11}  verdict")
    for name in TRENDS:
        found = trend(samples, name)
        if found is None:
            lines.append(f"{name:<16}  (too few samples)")
            continue
        lines.append(f"{name:<16}{found.first:>10.1f}{found.last:>10.1f}{found.change:>12.2f}{3 * found.stderr:>10.2f}"
                     f"{found.tolerance:>11.1f}  {'RISING' if found.rising else 'flat'}")
        if found.rising:
            problems.append(f"{name} rises by {found.change:.1f} over the second half")
    wal = [s["wal_kb"] for s in samples]
    if wal:
        wal_max = max(wal[len(wal) // 2:])
        lines.append(f"WAL: max {max(wal)} KB, second half max {wal_max} KB, at the end {wal[-1]} KB "
                     f"(after the daemon stopped: {final.get('wal_kb') if final else '?'} KB)")
        if wal_max > WAL_LIMIT_KB:
            problems.append(f"WAL reached {wal_max} KB in the second half: not checkpointed")
    if samples:
        lines.append(f"DB {samples[0]['db_kb']} → {samples[-1]['db_kb']} KB, blobs {samples[0]['blobs_kb']} → "
                     f"{samples[-1]['blobs_kb']} KB")
    unanswered = [m for m in mix.requests if m not in mix.answers]
    twice = {m: len(t) for m, t in mix.answers.items() if len(t) > 1}
    tasks = _task_count(root)
    lines.append(f"requests {len(mix.requests)}: answered once {len(mix.answers) - len(twice)}, more than once "
                 f"{len(twice)}, unanswered {len(unanswered)}; tasks in the database {tasks}")
    if unanswered:
        problems.append(f"{len(unanswered)} requests never answered, e.g. {unanswered[:3]}")
    if tasks is not None and tasks != len(mix.requests):
        problems.append(f"{tasks} tasks in the database for {len(mix.requests)} requests")
    if twice:
        problems.append(f"{len(twice)} requests answered more than once, e.g. {list(twice.items())[:3]}")
    events, unstructured = log_summary(root / "daemon.log")
    lines.append("daemon log: " + (", ".join(f"{n} {level} {name}" for (level, name), n in sorted(events.items()))
                                   or "empty") + (f"; {len(unstructured)} lines not ours" if unstructured else ""))
    unexpected = {name for level, name in events if level in ("error", "critical") and name not in EXPECTED_ERRORS}
    if unexpected:
        problems.append(f"errors in the daemon log: {sorted(unexpected)}")
    if unstructured:
        problems.append(f"{len(unstructured)} daemon log lines not from our logger, e.g. {unstructured[:2]}")
    integrity = _integrity(root)
    lines.append(f"integrity_check: {integrity}")
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    lines.append("VERDICT: " + ("PASS" if not problems else "FAIL\n  - " + "\n  - ".join(problems)))
    return Report(not problems, "\n".join(lines))


def log_summary(path: Path) -> tuple[dict[tuple[str, str], int], list[str]]:
    """(level, event) -> count over the daemon's log, and the lines that are not log lines at all
    (a traceback, a library printing on its own)."""
    events: dict[tuple[str, str], int] = {}
    unstructured = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        match = LOG_LINE.match(line)
        if match:
            key = (match.group(1), match.group(2))
            events[key] = events.get(key, 0) + 1
        elif line.strip() and not line.startswith((" ", "\t")):  # continuation lines of a rendered exception
            unstructured.append(line[:200])
    return events, unstructured


def _task_count(root: Path) -> int | None:
    try:
        with sqlite3.connect(f"file:{root / 'dispatchd.db'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM task").fetchone()[0])
    except sqlite3.Error:
        return None


def _integrity(root: Path) -> str:
    try:
        with sqlite3.connect(f"file:{root / 'dispatchd.db'}?mode=ro", uri=True) as db:
            return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    except sqlite3.Error as exc:
        return f"error: {exc}"


def main() -> None:
    out = Path(sys.argv[1])
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    report = verdict(samples, read_ledger(out / "ledger.jsonl"), out / "daemon", None)
    print(report.text)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
