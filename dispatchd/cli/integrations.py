"""Webhooks, Slack and Teams: ``dispatchd integrations`` (list, test NAME, retry [NAME]) and
``dispatchd events schema`` (the JSON schema of the events, as shipped)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dispatchd.cli.common import EXIT_NOT_FOUND, emit, engine
from dispatchd.config import Config

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "events.schema.json"


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("integrations", parents=[common], help="webhook, Slack and Teams destinations",
                            description="list destinations with their last delivery, failures and parked events; "
                                        "'test NAME' posts a test event now; 'retry [NAME]' re-queues parked "
                                        "events (same event ids) and re-enables a disabled destination")
    parser.add_argument("action", nargs="?", choices=("list", "test", "retry"), default="list")
    parser.add_argument("name", nargs="?", help="a destination's name (test: required; retry: default all)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_integrations)
    events = sub.add_parser("events", parents=[common], help="the integration events' JSON schema",
                            description="print the JSON schema (version 1) of the events posted to webhooks")
    events.add_argument("action", choices=("schema",))
    events.set_defaults(read_only=True)


def print_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(SCHEMA_PATH.read_text(encoding="utf-8"))
    return 0


def _integrations(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows import integration_admin as admin

    if args.action in ("test", "retry") and args.name is not None and config.destination_named(args.name) is None:
        known = ", ".join(d.name for d in config.destinations) or "none configured"
        print(f"dispatchd: no destination {args.name!r} (known: {known})", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.action == "test":
        if args.name is None:
            print("dispatchd: integrations test needs a destination's name", file=sys.stderr)
            return EXIT_NOT_FOUND
        answer = admin.send_test(config, args.name, SystemClock())
        emit({"destination": args.name, "status": answer.status, "detail": answer.detail}, args.json,
             ["destination", "status", "detail"])
        return 0 if answer.status is not None and 200 <= answer.status < 300 else 3
    if args.action == "retry":
        count = admin.retry(engine(config), args.name, SystemClock().now())
        if not args.json:
            print(f"{count} parked event(s) queued again; the running sender posts them within 30 s",
                  file=sys.stderr)
        else:
            emit({"requeued": count}, True)
        return 0
    emit(admin.destinations_overview(config, engine(config)), args.json,
         ["name", "kind", "audience", "sent", "pending", "parked", "last_delivery", "disabled", "last_error"])
    return 0
