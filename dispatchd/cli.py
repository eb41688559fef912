"""The ``dispatchd`` command: parses arguments, calls flows, prints. Nothing else.

Exit codes: 0 ok; 1 not found; 2 usage, refused configuration or already running;
3 a mail server or the database could not be reached; 75 run --once left mail to retry later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from dispatchd import __version__
from dispatchd.config import Config, load_config
from dispatchd.errors import ConfigError, DispatchdError, MailServerError
from dispatchd.logging import configure_logging
from dispatchd.store.db import close_engines

EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_SERVER = 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    if args.command == "demo":
        from dispatchd.demo import run_demo

        return run_demo(keep=args.keep)
    if args.command == "init":
        return _init(args)
    try:
        config = load_config(_config_path(args))
        configure_logging(args.log_level or config.log_level, config.log_format)
        return args.handler(args, config)
    except ConfigError as exc:
        if getattr(args, "json", False):
            _emit({"ok": False, "problems": [{"file": str(p.file), "line": p.line, "key": p.key,
                                              "reason": p.reason} for p in exc.problems]}, True)
            return EXIT_CONFIG
        print("dispatchd: configuration refused:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except MailServerError as exc:
        print(f"dispatchd: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except OperationalError as exc:
        print(f"dispatchd: database unavailable, nothing was lost, try again: {exc.orig}", file=sys.stderr)
        return EXIT_SERVER
    except OSError as exc:
        print(f"dispatchd: {exc.strerror or exc}: nothing was lost, try again", file=sys.stderr)
        return EXIT_SERVER
    except DispatchdError as exc:
        print(f"dispatchd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        close_engines()


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("DISPATCHD_CONFIG") or "config.toml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispatchd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dispatchd {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: $DISPATCHD_CONFIG or ./config.toml)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the daemon (IDLE or polling)")
    run.add_argument("--once", action="store_true", help="process the mailbox and the outbox, then exit")
    run.add_argument("--mailbox", action="append", metavar="NAME",
                     help="read only this [[mailbox]] (repeatable; default: all of them)")
    run.set_defaults(handler=_run)

    check = sub.add_parser("check", parents=[common], help="validate config, rules and templates")
    check.add_argument("--explain", metavar="SUBJECT", help="show how SUBJECT would be parsed and routed")
    check.add_argument("--from", dest="sender", metavar="ADDRESS", help="sender for --explain")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_check)

    init = sub.add_parser("init", help="write a commented config.toml, default rules and templates into DIR")
    init.add_argument("directory", type=Path)
    init.add_argument("--force", action="store_true", help="overwrite what is there")

    migrate = sub.add_parser("migrate", parents=[common], help="upgrade the database schema (also done at start)")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(handler=_migrate)

    replay = sub.add_parser("replay", parents=[common],
                            help="route stored mail again under candidate rules and show what would change")
    replay.add_argument("message_id", nargs="?", help="only this Message-ID")
    replay.add_argument("--rules", type=Path, help="candidate rules directory (default: the rules in force)")
    replay.add_argument("--since", default="30d", help="period, e.g. 30d, 12h, 2w (default 30d)")
    replay.add_argument("--all", action="store_true", help="list unchanged requests too")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_replay)

    tasks = sub.add_parser("tasks", parents=[common], help="list tasks")
    tasks.add_argument("--queue")
    tasks.add_argument("--status")
    tasks.add_argument("--limit", type=int, default=100)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(handler=_tasks)

    show = sub.add_parser("show", parents=[common], help="one task with its events and messages")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show)

    queues = sub.add_parser("queues", parents=[common], help="depth of each queue by status")
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=_queues)

    outbox = sub.add_parser("outbox", parents=[common], help="mail waiting, sent, parked")
    outbox.add_argument("--status", choices=("pending", "sending", "sent", "parked"))
    outbox.add_argument("--json", action="store_true")
    outbox.set_defaults(handler=_outbox)

    quarantine = sub.add_parser("quarantine", parents=[common], help="messages that could not be processed")
    quarantine.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    quarantine.add_argument("id", nargs="?", type=int, help="message row id for retry")
    quarantine.add_argument("--json", action="store_true")
    quarantine.set_defaults(handler=_quarantine)

    job = sub.add_parser("job", parents=[common], help="run one scheduled job now, then send its mail")
    job.add_argument("name", choices=("sla", "redispatch", "digest", "staff-digest", "health"))
    job.add_argument("--json", action="store_true")
    job.set_defaults(handler=_job)

    report = sub.add_parser("report", parents=[common], help="queue health, SLA and routing figures")
    report.add_argument("--days", type=int, default=30, help="period for rates (default 30)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_report)

    demo = sub.add_parser("demo", help="run against a throw-away local Dovecot and SMTP capture")
    demo.add_argument("--keep", action="store_true", help="keep the demo directory")
    return parser


def _emit(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    from dispatchd.views import table

    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif columns is not None:
        table(data, columns)


def _engine(config: Config):  # type: ignore[no-untyped-def]
    from dispatchd.store.db import migrate, open_engine

    engine = open_engine(config.database_url)
    migrate(engine)
    return engine


def _run(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import Daemon, build_deps, instance_guard
    from dispatchd.sending import SenderProcess

    with instance_guard(config):
        # Forked first: before this process opens the database or starts a thread.
        sender = SenderProcess.fork(config, once=args.once)
        try:
            deps = build_deps(config)
            progress = _progress_bar("intake") if args.once and sys.stderr.isatty() else None
            daemon = Daemon(deps, sender, progress=progress, only=tuple(args.mailbox or ()))
            sender.wake()  # the schema is migrated: the sender may open the database
            if args.once:
                return asyncio.run(daemon.run_once())
            asyncio.run(daemon.run_forever())
        finally:
            sender.close()  # also when an error escaped the event loop: never leave the child behind
    return 1 if daemon.failed else 0


def _job(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import build_deps, build_outbox, instance_guard
    from dispatchd.sending import EX_TEMPFAIL
    from dispatchd.jobs import run_job

    with instance_guard(config):
        deps = build_deps(config)
        result = run_job(args.name, deps)
        drained = asyncio.run(build_outbox(deps).drain())
        deps.coordinator.close()
    if result is None:
        print(f"{args.name}: running on another instance right now; nothing done", file=sys.stderr)
        return EX_TEMPFAIL
    if args.json:
        _emit({"job": args.name, "result": dict(result), "sent": drained.sent, "deferred": drained.deferred,
               "parked": drained.parked}, True)
        return 0
    print(f"{args.name}: " + (", ".join(f"{k}={v}" for k, v in sorted(result.items())) or "nothing to do")
          + f"; sent {drained.sent}" + (f", {drained.deferred} deferred" if drained.deferred else ""))
    return 0


def _init(args: argparse.Namespace) -> int:
    from dispatchd.init import init_directory

    try:
        written = init_directory(args.directory, args.force)
    except FileExistsError as exc:
        print(f"dispatchd: already there (use --force to overwrite): {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for path in written:
        print(f"wrote {path}")
    print(f"next: edit {written[0]}, then run: dispatchd check --config {written[0]}")
    return 0


def _migrate(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.db import SCHEMA_VERSION, migrate, open_engine, schema_version

    engine = open_engine(config.database_url)
    before = schema_version(engine)
    applied = migrate(engine)
    result = {"database": config.database_url, "from_version": before, "to_version": SCHEMA_VERSION,
              "applied": applied}
    if args.json:
        _emit(result, True)
    else:
        print(f"schema version {before} -> {SCHEMA_VERSION}" + ("" if applied else " (already up to date)"))
    return 0


def _replay(args: argparse.Namespace, config: Config) -> int:
    from dataclasses import asdict

    from dispatchd.daemon import build_deps
    from dispatchd.flows.replay import replay
    from dispatchd.rulebook import load_rulebook

    deps = build_deps(config)
    candidate = load_rulebook(args.rules.resolve(), config) if args.rules else deps.rulebook
    since = None if args.message_id else deps.clock.now() - _period(args.since)
    progress = _progress_bar("replay") if sys.stderr.isatty() and not args.json else None
    results = [r for r in replay(deps, candidate, since, args.message_id, progress) if args.all or r.changed
               or args.message_id]
    if args.json:
        _emit([{**asdict(r), "changed": list(r.changed)} for r in results], True)
        return 0
    rows = [{"task": r.task_id, "changed": ",".join(r.changed) or "-",
             "before": " / ".join(r.before), "after": " / ".join(r.after), "subject": r.subject} for r in results]
    _emit(rows, False, ["task", "changed", "before", "after", "subject"])
    if args.message_id and results:
        print("\nbecause:\n" + "\n".join(f"  - {reason}" for reason in results[0].reasons))
    return 0 if results or not args.message_id else EXIT_NOT_FOUND


def _period(text: str):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    units = {"h": "hours", "d": "days", "w": "weeks"}
    if not text or text[-1] not in units or not text[:-1].isdigit():
        raise DispatchdError(f"--since {text!r}: write e.g. 12h, 30d or 2w")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def _progress_bar(label: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _report(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import build_deps
    from dispatchd.flows.reports import health_report, report_dict

    report = report_dict(health_report(build_deps(config), args.days))
    if args.json:
        _emit(report, True)
        return 0
    rows = [{"queue": q["queue"], "health": q["colour"], "depth": q["depth"], "avg_wait_days": q["avg_wait_days"],
             "breach_rate": f"{q['breach_rate']:.0%}", "forecast_late": len(q["forecast"])} for q in report["queues"]]
    _emit(rows, False, ["queue", "health", "depth", "avg_wait_days", "breach_rate", "forecast_late"])
    print(f"\n{report['requests']} requests in {report['period_days']} days; {report['triaged']} needed manual "
          f"triage ({report['triage_share']:.0%}, {report['triage_colour']})")
    for suggestion in report["suggestions"]:
        print(f"suggestion: {suggestion}")
    if report["parked_mail"] or report["quarantined"]:
        print(f"needs a person: {report['parked_mail']} parked outgoing emails, {report['quarantined']} quarantined "
              f"incoming messages, {report['bounced_mail']} bounces in the period")
    return 0


def _check(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.checks import check_all, explain

    rulebook = check_all(config)
    if args.json:
        result: dict[str, Any] = {"ok": True, "config": str(config.path), "clients": len(config.clients),
                                  "staff": len(config.staff), "types": len(rulebook.types),
                                  "rules": len(rulebook.rules)}
        if args.explain is not None:
            result["explain"] = explain(config, rulebook, args.explain, args.sender).splitlines()
        _emit(result, True)
        return 0
    print(f"ok: {config.path} ({len(config.clients)} clients, {len(config.staff)} staff, "
          f"{len(rulebook.types)} request types, {len(rulebook.rules)} rules)")
    if args.explain is not None:
        print(explain(config, rulebook, args.explain, args.sender))
    return 0


def _tasks(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.queries import list_tasks
    from dispatchd.views import task_dict

    with Session(_engine(config)) as session:
        rows = [task_dict(t) for t in list_tasks(session, args.queue, args.status, args.limit)]
    _emit(rows, args.json, ["id", "queue", "priority", "status", "client", "type", "assignee",
                            "due_at", "description"])
    return 0


def _show(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.tables import Attachment, InboundMessage, Outbox, Task, TaskEvent
    from dispatchd.views import event_dict, inbound_dict, outbox_dict, task_dict

    with Session(_engine(config)) as session:
        task = session.get(Task, args.id)
        if task is None:
            print(f"dispatchd: no task {args.id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        data = task_dict(task)
        data["events"] = [event_dict(e) for e in session.exec(
            select(TaskEvent).where(TaskEvent.task_id == task.id).order_by(col(TaskEvent.id)))]
        data["messages"] = [inbound_dict(m) for m in session.exec(
            select(InboundMessage).where(InboundMessage.task_id == task.id).order_by(col(InboundMessage.id)))]
        data["messages"] += [outbox_dict(m) for m in session.exec(
            select(Outbox).where(Outbox.task_id == task.id).order_by(col(Outbox.id)))]
        data["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                                "sha256": a.sha256} for a in session.exec(
            select(Attachment).where(Attachment.task_id == task.id))]
    if args.json:
        _emit(data, True)
        return 0
    for key in ("id", "status", "queue", "priority", "client", "type", "assignee", "sender", "description",
                "due_at", "due_explanation", "message_id"):
        print(f"{key:>16}: {data[key] if data[key] is not None else '-'}")
    print("\nevents:")
    for event in data["events"]:
        move = f"  {event['from_status'] or '-'} -> {event['to_status']}" if event["to_status"] else ""
        print(f"  {event['at']}  {event['kind']:<10} {event['actor']}{move}")
        for line in (event["detail"] or "").splitlines():
            print(f"      {line}")
    print("\nmessages:")
    for message in data["messages"]:
        state = message.get("disposition") or message.get("status")
        print(f"  {message['direction']:<3} {state:<11} {message['message_id']}  {message['subject']}")
    for attachment in data["attachments"]:
        print(f"  file {attachment['filename']} ({attachment['size']} bytes, {attachment['content_type']})")
    return 0


def _queues(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.queries import queue_depths

    with Session(_engine(config)) as session:
        depths = queue_depths(session)
    by_queue: dict[str, dict[str, int]] = {}
    for queue, status, count in depths:
        by_queue.setdefault(queue, {})[status] = count
    rows = [{"queue": q, "open": sum(n for s, n in st.items() if s not in ("closed", "cancelled")),
             "total": sum(st.values()), "by_status": st} for q, st in sorted(by_queue.items())]
    if args.json:
        _emit(rows, True)
    else:
        _emit([{**r, "by_status": " ".join(f"{s}={n}" for s, n in sorted(r["by_status"].items()))}
               for r in rows], False, ["queue", "open", "total", "by_status"])
    return 0


def _outbox(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.tables import Outbox
    from dispatchd.views import outbox_dict

    with Session(_engine(config)) as session:
        query = select(Outbox).order_by(col(Outbox.id).desc()).limit(500)
        if args.status:
            query = query.where(Outbox.status == args.status)
        rows = [outbox_dict(r) for r in session.exec(query)]
    _emit(rows, args.json, ["id", "status", "attempts", "task_id", "to", "next_attempt_at", "last_error",
                            "subject"])
    return 0


def _quarantine(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.tables import InboundMessage
    from dispatchd.views import inbound_dict

    if args.action == "retry":
        if args.id is None:
            print("dispatchd: quarantine retry needs a message id", file=sys.stderr)
            return EXIT_CONFIG
        from dispatchd.daemon import build_deps
        from dispatchd.flows.ingest import retry_quarantined

        outcome = retry_quarantined(args.id, build_deps(config))
        if outcome is None:
            print(f"dispatchd: no quarantined message {args.id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"message {args.id}: {outcome.disposition.value}"
              + (f", task {outcome.task_id}" if outcome.task_id else "") + (f" ({outcome.reason})" if outcome.reason else ""))
        return 0 if outcome.disposition.value != "quarantined" else EXIT_NOT_FOUND
    with Session(_engine(config)) as session:
        rows = [inbound_dict(r) for r in session.exec(
            select(InboundMessage).where(InboundMessage.disposition == "quarantined")
            .order_by(col(InboundMessage.id)))]
    _emit(rows, args.json, ["id", "at", "sender", "subject", "reason"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
