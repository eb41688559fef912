"""How many requests in plain words dispatchd routes right (issue 23), on day one and after history.

    python -m bench.triage_accuracy [--history 400] [--seed 23] [--json] [--keep] [--list]
                                    [--phase both|day-one|history] [--items OTHER.jsonl] [--half dev|test]

For each phase it builds a throw-away deployment (a temp dir, the project's rules and templates
copied in, a config with the evaluation's clients and staff, SQLite; no IMAP or SMTP: mail goes
through ``ingest_run``/``ingest`` as bytes, the outbox is never sent), then:

- day one: ``dispatchd triage train --config …`` on an empty database (the rules' examples only);
- after history: the well-formed past mail of ``bench/triage_eval/history.py`` ingested first,
  then ``dispatchd triage train --config …``;

and ingests every item of ``bench/triage_eval/freeform.jsonl``. What happened to each is read
from the database only (the task's type and queue; no task at all counts as held for a person).
The model is reached only through that CLI and the database, so this runs unchanged before the
model exists (everything goes to triage; the train step reports "not available") and after.

An item is *right* when it was auto-routed to its labelled type, or held for a person when it is
labelled "triage"; *routed wrong* when it was auto-routed to any other type; *sent to triage*
when it waits for a person (triage queue, the Urgent type's queue, or no task).
"""

from __future__ import annotations

import argparse
import email.utils
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import structlog
from sqlmodel import Session, select

from bench.triage_eval.clients import CLIENTS_TOML, STAFF_TOML
from bench.triage_eval.history import PastRequest, generate
from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.ingest import IntakeDeps, ingest, ingest_run
from dispatchd.store.tables import Task

PROJECT = Path(__file__).resolve().parent.parent
FREEFORM = PROJECT / "bench" / "triage_eval" / "freeform.jsonl"
INTAKE = "requests@agency.test"
PASSWORD_ENV = "DISPATCHD_EVAL_PASSWORD"
HISTORY_START = datetime(2026, 9, 1, 8, tzinfo=timezone.utc)  # a Tuesday; history runs to late November
EVAL_START = datetime(2026, 11, 30, 8, tzinfo=timezone.utc)  # a Monday after all of it
RUN = 20  # messages per intake transaction, as the daemon takes them


@dataclass
class Item:
    id: str
    lang: str
    label: str
    sender: str
    subject: str
    body: str | None
    html: str | None
    headers: dict[str, str]
    notes: str = ""


@dataclass
class Result:
    item: Item
    disposition: str
    task_id: int | None
    type: str | None
    queue: str | None
    held_queues: frozenset[str]  # where work waits for a person: triage, and the Urgent type's queue

    @property
    def held(self) -> bool:
        return self.type is None or self.queue is None or self.queue in self.held_queues

    @property
    def got(self) -> str:
        return "triage" if self.held else str(self.type)

    @property
    def right(self) -> bool:
        return self.got == self.item.label

    @property
    def wrong(self) -> bool:
        return not self.held and not self.right


@dataclass
class Phase:
    name: str
    history: int
    history_typed: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    intake_ms: float = 0.0


def half_of(item_id: str) -> str:
    """The half of the free-form set an item belongs to, fixed by its id: settings are looked at on
    ``dev``; ``test`` is read at the end only (it measures what tuning on ``dev`` did not fit)."""
    return "dev" if zlib.crc32(item_id.encode()) % 2 == 0 else "test"


def load_items(path: Path = FREEFORM) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            items.append(Item(raw["id"], raw["lang"], raw["label"], raw["from"], raw["subject"], raw.get("body"),
                              raw.get("html"), raw.get("headers", {}), raw.get("notes", "")))
    return items


def message_bytes(sender: str, subject: str, body: str | None, html: str | None, message_id: str,
                  when: datetime, headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, INTAKE, subject
    message["Date"] = email.utils.format_datetime(when)
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body or "")
    return message.as_bytes()


def deployment(root: Path, evaluated: list[Item] | None = None) -> Path:
    """A config for a deployment that is only ever fed bytes: the servers named are never reached.
    Its rules' example mail leaves out the ``evaluated`` mail (see leave_out)."""
    shutil.copytree(PROJECT / "rules", root / "rules")
    left_out = leave_out(root / "rules" / "example-mail", evaluated or [])
    if left_out:
        print(f"left out {left_out} of the rules' example mail: the same mail is evaluated", file=sys.stderr)
    shutil.copytree(PROJECT / "templates", root / "templates")
    path = root / "config.toml"
    path.write_text(f"""\
[mailbox]
host = "127.0.0.1"
port = 9
tls = "none"
username = "{INTAKE}"
password_env = "{PASSWORD_ENV}"

[smtp]
host = "127.0.0.1"
port = 9
tls = "none"
from = "Eval Agency <{INTAKE}>"

[database]
url = "sqlite:///dispatchd.db"

[paths]
rules = "rules"
templates = "templates"

[intake]
max_replies_per_hour = 1000000
max_replies_per_sender_per_hour = 100000
max_replies_per_thread_per_hour = 100000

[calendar]
timezone = "Europe/London"
holidays_country = "GB"
holidays_subdivision = "ENG"

[logging]
level = "warning"
format = "json"

[schedule]
sla = ""
redispatch = ""
digest = ""
staff-digest = ""
health = ""

{CLIENTS_TOML}
{STAFF_TOML}""")
    return path


def ingest_history(deps: IntakeDeps, history: list[PastRequest], clock: FrozenClock) -> tuple[int, int]:
    """The past mail, spread over the weeks before the evaluation; returns the next free UID and
    how many of it became a task of the type it was written as (all of it, unless the rules or
    the subject parser changed)."""
    step = (EVAL_START - HISTORY_START) / max(1, len(history))
    uid, typed = 1, 0
    for start in range(0, len(history), RUN):
        raws = []
        for request in history[start:start + RUN]:
            clock.at = HISTORY_START + step * (uid - 1)
            data = message_bytes(request.sender, request.subject, request.body, None,
                                 f"<history-{uid}@eval.test>", clock.at)
            raws.append(RawMail("INBOX", 1, uid, data, len(data)))
            uid += 1
        outcomes = ingest_run(raws, deps, deps.config.mailbox)
        with Session(deps.engine) as session:
            types = dict(session.exec(select(Task.id, Task.type).where(
                Task.id.in_([o.task_id for o in outcomes if o.task_id is not None]))).all())  # type: ignore[union-attr]
        typed += sum(types.get(o.task_id) == r.type for o, r in zip(outcomes, history[start:start + RUN]))
    return uid, typed


def train(config_path: Path) -> dict[str, Any]:
    """``dispatchd triage train`` as an owner would run it; what it said and whether it exists.
    Run from this checkout's code (PYTHONPATH), the same code that ingests the mail here."""
    command = [sys.executable, "-m", "dispatchd", "triage", "train", "--config", str(config_path), "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=config_path.parent,
                          env=os.environ | {PASSWORD_ENV: "unused", "PYTHONPATH": os.pathsep.join(
                              filter(None, (str(PROJECT), os.environ.get("PYTHONPATH"))))})
    outcome: dict[str, Any] = {"exit": done.returncode, "seconds": round(time.perf_counter() - started, 2)}
    if done.returncode == 2 and "invalid choice: 'triage'" in done.stderr:
        outcome["available"] = False
        return outcome
    outcome["available"] = True
    try:
        outcome["report"] = json.loads(done.stdout)
    except json.JSONDecodeError:
        outcome["output"] = (done.stdout + done.stderr).strip()[-2000:]
    return outcome


def leave_out(directory: Path, evaluated: list[Item]) -> int:
    """Remove from the example mail in ``directory`` every mail that is also evaluated (same
    subject and body): the evaluation sets are part of the rules' example mail, and a model is
    measured only on mail it never learnt from. Evaluating one set is then leave-one-set-out."""
    texts = {(item.subject, item.body or "") for item in evaluated}
    removed = 0
    for path in sorted(directory.glob("*.jsonl")):
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line) if line.strip() else {}
            if (raw.get("subject"), raw.get("body")) in texts:
                removed += 1
            else:
                kept.append(line)
        path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
    return removed


def run_phase(name: str, items: list[Item], history: list[PastRequest], keep: bool) -> Phase:
    phase = Phase(name, len(history))
    root = Path(tempfile.mkdtemp(prefix=f"dispatchd-triage-{name.replace(' ', '-')}-"))
    try:
        config_path = deployment(root, items)
        clock = FrozenClock(HISTORY_START)
        uid = 1
        if history:
            deps = build_deps(load_config(config_path), clock=clock)
            uid, phase.history_typed = ingest_history(deps, history, clock)
            deps.engine.dispose()
        phase.train = train(config_path)
        # Built after training, as a daemon started (or reloaded) then would be.
        config = load_config(config_path)
        deps = build_deps(config, clock=clock)
        held = frozenset({config.intake.triage_queue, deps.rulebook.triage_queue}
                         | {t.queue for t in deps.rulebook.types if t.name == "Urgent"})
        outcomes, took = [], []
        for n, item in enumerate(items):
            clock.at = EVAL_START + timedelta(minutes=7 * n)
            data = message_bytes(item.sender, item.subject, item.body, item.html, f"<{item.id}@eval.test>",
                                 clock.at, item.headers)
            started = time.perf_counter()
            outcomes.append(ingest(RawMail("INBOX", 1, uid + n, data, len(data)), deps))
            took.append((time.perf_counter() - started) * 1000)
        phase.intake_ms = statistics.median(took) if took else 0.0
        with Session(deps.engine) as session:
            ids = [o.task_id for o in outcomes if o.task_id is not None]
            tasks = {t.id: t for t in session.exec(select(Task).where(Task.id.in_(ids)))}  # type: ignore[union-attr]
        for item, outcome in zip(items, outcomes):
            task = tasks.get(outcome.task_id) if outcome.task_id is not None else None
            phase.results.append(Result(item, outcome.disposition.value, outcome.task_id,
                                        task.type if task else None, task.queue if task else None, held))
        deps.engine.dispose()
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return phase


def shares(results: list[Result]) -> dict[str, Any]:
    n = len(results)
    def share(count: int) -> float:
        return round(count / n, 4) if n else 0.0
    return {"count": n, "right": share(sum(r.right for r in results)),
            "routed_wrong": share(sum(r.wrong for r in results)),
            "to_triage": share(sum(r.held for r in results))}


def summary(phase: Phase) -> dict[str, Any]:
    by_type: dict[str, list[Result]] = defaultdict(list)
    by_lang: dict[str, list[Result]] = defaultdict(list)
    for result in phase.results:
        by_type[result.item.label].append(result)
        by_lang[result.item.lang].append(result)
    return {
        "phase": phase.name, "history": phase.history, "history_typed": phase.history_typed, "train": phase.train,
        "intake_ms_median": round(phase.intake_ms, 2),
        **shares(phase.results),
        "by_type": {label: shares(rs) for label, rs in sorted(by_type.items())},
        "by_language": {lang: shares(rs) for lang, rs in sorted(by_lang.items())},
        "dispositions": dict(Counter(r.disposition for r in phase.results)),
        "wrong": [{"id": r.item.id, "label": r.item.label, "got": r.got, "lang": r.item.lang,
                   "subject": r.item.subject, "notes": r.item.notes} for r in phase.results if r.wrong],
        "missed": [{"id": r.item.id, "label": r.item.label, "subject": r.item.subject}
                   for r in phase.results if r.held and not r.right],
        "items": [{"id": r.item.id, "label": r.item.label, "got": r.got, "disposition": r.disposition,
                   "task": r.task_id, "queue": r.queue} for r in phase.results],
    }


def _pct(value: float) -> str:
    return f"{value * 100:5.1f} %"


def _train_line(train_outcome: dict[str, Any]) -> str:
    if not train_outcome.get("available"):
        return "dispatchd triage train: not available on this version (rules only, no model)"
    report = train_outcome.get("report")
    said = json.dumps(report, ensure_ascii=False)[:300] if report is not None else train_outcome.get("output", "")
    return f"dispatchd triage train: exit {train_outcome['exit']} in {train_outcome['seconds']} s: {said}"


def print_report(summaries: list[dict[str, Any]], source: Path, items: int, list_missed: bool) -> None:
    print(f"Triage accuracy on {items} free-form requests ({source})\n")
    print(f"{'phase':16} {'history':>8} {'right':>8} {'wrong':>8} {'triage':>8} {'intake ms':>10}")
    print(f"{'':16} {'':8} {'':8} {'':8} {'':8} {'(median)':>10}")
    for s in summaries:
        print(f"{s['phase']:16} {s['history']:8} {_pct(s['right']):>8} {_pct(s['routed_wrong']):>8} "
              f"{_pct(s['to_triage']):>8} {s['intake_ms_median']:10.2f}")
    for s in summaries:
        print(f"\n== {s['phase']} ==")
        if s["history"]:
            print(f"history: {s['history']} well-formed requests, {s['history_typed']} became tasks of their type")
        print(_train_line(s["train"]))
        print(f"dispositions: {s['dispositions']}")
        for title, key in (("type", "by_type"), ("language", "by_language")):
            print(f"\n  {'by ' + title:14} {'n':>4} {'right':>8} {'wrong':>8} {'triage':>8}")
            for name, row in s[key].items():
                print(f"  {name:14} {row['count']:4} {_pct(row['right']):>8} {_pct(row['routed_wrong']):>8} "
                      f"{_pct(row['to_triage']):>8}")
        print(f"\n  routed wrong ({len(s['wrong'])}):")
        for w in s["wrong"]:
            print(f"    {w['id']} [{w['lang']}] {w['label']:>9} -> {w['got']:<9} {w['subject'][:60]!r}")
        if list_missed:
            print(f"\n  held for a person although typed ({len(s['missed'])}):")
            for m in s["missed"]:
                print(f"    {m['id']} {m['label']:>9} {m['subject'][:60]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=400, help="well-formed past requests (default 400)")
    parser.add_argument("--seed", type=int, default=23, help="seed of the history generator")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--keep", action="store_true", help="keep the deployments' temp dirs for inspection")
    parser.add_argument("--list", action="store_true", help="also list typed requests that were held")
    parser.add_argument("--phase", choices=("both", "day-one", "history"), default="both")
    parser.add_argument("--half", choices=("dev", "test"), help="only one half of the items (see half_of)")
    parser.add_argument("--items", type=Path, default=FREEFORM,
                        help="labelled free-form mail in the same JSON Lines form (default: triage_eval/freeform.jsonl)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    os.environ.setdefault(PASSWORD_ENV, "unused")
    items = [i for i in load_items(args.items) if args.half is None or half_of(i.id) == args.half]
    phases = []
    if args.phase in ("both", "day-one"):
        phases.append(run_phase("day one", items, [], args.keep))
    if args.phase in ("both", "history"):
        phases.append(run_phase("after history", items, generate(args.history, args.seed), args.keep))
    summaries = [summary(p) for p in phases]
    if args.json:
        print(json.dumps({"items": len(items), "source": str(args.items), "phases": summaries}, indent=2,
                         ensure_ascii=False))
    else:
        print_report(summaries, args.items, len(items), args.list)


if __name__ == "__main__":
    main()
