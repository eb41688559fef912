"""Commands that run or set up the service: run, job, init, migrate, check, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from dispatchd.cli.common import EXIT_CONFIG, EXIT_SERVER, emit, progress_bar
from dispatchd.config import DEFAULT_SCHEDULE, Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run the daemon (IDLE or polling)")
    run.add_argument("--once", action="store_true", help="process the mailbox and the outbox, then exit")
    run.add_argument("--mailbox", action="append", metavar="NAME",
                     help="read only this [[mailbox]] (repeatable; default: all of them)")
    run.set_defaults(handler=_run)
    job = sub.add_parser("job", parents=[common], help="run one scheduled job now, then send its mail")
    job.add_argument("name", choices=tuple(DEFAULT_SCHEDULE))
    job.add_argument("--json", action="store_true")
    job.set_defaults(handler=_job)
    check = sub.add_parser("check", parents=[common], help="validate config, rules and templates")
    check.add_argument("--explain", metavar="SUBJECT", help="show how SUBJECT would be parsed and routed")
    check.add_argument("--from", dest="sender", metavar="ADDRESS", help="sender for --explain")
    check.add_argument("--connect", action="store_true",
                       help="also log in to IMAP and SMTP (and fetch OAuth2 tokens); nothing is sent")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_check)
    init = sub.add_parser("init", help="write a commented config.toml, default rules and templates into DIR")
    init.add_argument("directory", type=Path)
    init.add_argument("--force", action="store_true", help="overwrite what is there")
    migrate = sub.add_parser("migrate", parents=[common], help="upgrade the database schema (also done at start)")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(handler=_migrate)
    demo = sub.add_parser("demo", help="run against a throw-away local Dovecot and SMTP capture")
    demo.add_argument("--keep", action="store_true", help="keep the demo directory")


def _run(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.checks import check_all
    from dispatchd.daemon import Daemon, build_deps, instance_guard
    from dispatchd.sending import SenderProcess

    rulebook = check_all(config)  # what `dispatchd check` refuses, run refuses too (exit 2: systemd does not restart)
    with instance_guard(config):
        # Forked first: before this process opens the database or starts a thread.
        sender = SenderProcess.fork(config, once=args.once)
        try:
            deps = build_deps(config, rulebook=rulebook)
            progress = progress_bar("intake") if args.once and sys.stderr.isatty() else None
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
        emit({"job": args.name, "result": dict(result), "sent": drained.sent, "deferred": drained.deferred,
               "parked": drained.parked}, True)
        return 0
    print(f"{args.name}: " + (", ".join(f"{k}={v}" for k, v in sorted(result.items())) or "nothing to do")
          + f"; sent {drained.sent}" + (f", {drained.deferred} deferred" if drained.deferred else ""))
    return 0


def init(args: argparse.Namespace) -> int:
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
        emit(result, True)
    else:
        print(f"schema version {before} -> {SCHEMA_VERSION}" + ("" if applied else " (already up to date)"))
    return 0


def _check(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.checks import check_all, explain, owner_warnings

    rulebook = check_all(config)
    warnings = owner_warnings(config, rulebook)
    probes = _probes(config) if args.connect else []
    failed = any(not p.ok for p in probes)
    model = _triage_model(config) if args.explain is not None else None
    if args.json:
        result: dict[str, Any] = {"ok": not failed, "config": str(config.path), "clients": len(config.clients),
                                  "staff": len(config.staff), "types": len(rulebook.types),
                                  "rules": len(rulebook.rules), "warnings": warnings}
        if args.connect:
            result["connect"] = [{"what": p.what, "ok": p.ok, "detail": p.detail} for p in probes]
        if args.explain is not None:
            result["explain"] = explain(config, rulebook, args.explain, args.sender, model=model).splitlines()
        emit(result, True)
        return EXIT_SERVER if failed else 0
    print(f"ok: {config.path} ({len(config.clients)} clients, {len(config.staff)} staff, "
          f"{len(rulebook.types)} request types, {len(rulebook.rules)} rules)")
    for warning in warnings:
        print(f"warning: {warning}")
    for probe in probes:
        print(f"{'ok' if probe.ok else 'FAILED'}: {probe.what}: {probe.detail}")
    if args.explain is not None:
        print(explain(config, rulebook, args.explain, args.sender, model=model))
    return EXIT_SERVER if failed else 0


def _probes(config: Config):  # type: ignore[no-untyped-def]
    from dispatchd.probes import probe_all

    return probe_all(config)


def _triage_model(config: Config):  # type: ignore[no-untyped-def]
    """The triage model in use, for --explain; None when there is none (or no database yet)."""
    from dispatchd.cli.common import engine
    from dispatchd.flows.triage import ModelSlot

    return ModelSlot(engine(config)).refresh()
