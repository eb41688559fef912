"""Mail from before go-live: ``dispatchd import``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date

from dispatchd.cli.common import EXIT_CONFIG, emit, progress_bar
from dispatchd.config import Config
from dispatchd.errors import DispatchdError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    imports = sub.add_parser(
        "import", parents=[common],
        help="turn mail that was in the mailbox before go-live into tasks, from a day on")
    imports.add_argument("--since", required=True, type=_day, metavar="DAY",
                         help="take in messages that arrived on or after DAY (2026-11-01, business time zone)")
    imports.add_argument("--quiet", action="store_true",
                         help="create the tasks without mailing anyone (no confirmations, no staff notices)")
    imports.add_argument("--mailbox", action="append", metavar="NAME",
                         help="only this [[mailbox]] (repeatable; default: all of them)")
    imports.add_argument("--json", action="store_true")
    imports.set_defaults(handler=_import)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a day such as 2026-11-01") from None


def _import(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import build_deps
    from dispatchd.flows.golive import day_start, import_before_go_live
    from dispatchd.mail.imap import ImapSource

    chosen = [m for m in config.mailboxes if not args.mailbox or m.name in args.mailbox]
    unknown = set(args.mailbox or ()) - {m.name for m in config.mailboxes}
    if unknown:
        print(f"dispatchd: no [[mailbox]] named {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_CONFIG
    deps = build_deps(config)
    since = day_start(args.since, deps)
    results = []
    for mailbox in chosen:
        source = ImapSource(mailbox, config.intake.max_message_bytes)
        source.connect()
        try:
            progress = progress_bar(f"import {mailbox.name}") if sys.stderr.isatty() and not args.json else None
            report = import_before_go_live(source, deps, since, args.quiet, progress)
        finally:
            source.close()
        results.append({"mailbox": mailbox.name, "since": since.isoformat(), "quiet": args.quiet,
                        "waiting": report.waiting, "tasks": len(report.tasks), "outcomes": dict(report.outcomes),
                        "gone_from_server": report.gone, "failed": report.failed})
    sent = None if args.quiet else _send_now(config, deps)
    deps.coordinator.close()
    if args.json:
        emit({"mailboxes": results, "sent": sent}, True)
        return 0
    for result in results:
        outcomes = ", ".join(f"{n} {what}" for what, n in sorted(result["outcomes"].items()))
        print(f"{result['mailbox']}: {result['waiting']} messages from before go-live arrived since {args.since}"
              + (f"; {outcomes}" if outcomes else "; nothing to import")
              + (f"; {result['gone_from_server']} no longer on the server" if result["gone_from_server"] else "")
              + (f"; {result['failed']} failed (see the log), left as they were" if result["failed"] else ""))
    if args.quiet:
        print("quiet: nobody was mailed; the tasks' history says they were imported")
    elif sent is None:
        print("the running dispatchd sends the confirmations (within 30 s)")
    else:
        print(f"sent {sent} emails")
    return 0


def _send_now(config: Config, deps) -> int | None:  # type: ignore[no-untyped-def]
    """Send what the import queued, unless a running dispatchd does (it holds the instance lock)."""
    from dispatchd.daemon import build_outbox, instance_guard

    try:
        with instance_guard(config):
            return asyncio.run(build_outbox(deps).drain()).sent
    except DispatchdError:
        return None
