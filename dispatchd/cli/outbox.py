"""The outgoing mail: ``dispatchd outbox`` lists it, ``dispatchd outbox requeue`` sends parked mail again."""

from __future__ import annotations

import argparse
import sys

from sqlmodel import Session, col, select

from dispatchd.cli.common import EXIT_CONFIG, EXIT_NOT_FOUND, emit, engine
from dispatchd.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    outbox = sub.add_parser("outbox", parents=[common], help="mail waiting, sent, parked; requeue parked mail",
                            description="list outgoing mail, or 'requeue ID' / 'requeue --all-parked' to send "
                                        "parked mail again (same bytes, same Message-ID)")
    outbox.add_argument("action", nargs="?", choices=("list", "requeue"), default="list")
    outbox.add_argument("id", nargs="?", type=int, help="outbox row id for requeue")
    outbox.add_argument("--all-parked", action="store_true", help="requeue every parked email")
    outbox.add_argument("--status", choices=("pending", "sending", "sent", "parked"))
    outbox.add_argument("--json", action="store_true")
    # Listing and requeueing need only the database, not the mail passwords.
    outbox.set_defaults(handler=_outbox, read_only=True)


def _outbox(args: argparse.Namespace, config: Config) -> int:
    if args.action == "requeue":
        return _requeue(args, config)
    from dispatchd.clock import SystemClock
    from dispatchd.flows.outbox import outbox_status
    from dispatchd.store.tables import Outbox
    from dispatchd.views import outbox_dict

    with Session(engine(config)) as session:
        query = select(Outbox).order_by(col(Outbox.id).desc()).limit(500)
        if args.status:
            query = query.where(Outbox.status == args.status)
        rows = [outbox_dict(r) for r in session.exec(query)]
    emit(rows, args.json, ["id", "status", "attempts", "task_id", "to", "next_attempt_at", "last_error",
                            "subject"])
    if not args.json:
        print(outbox_status(engine(config), SystemClock().now()), file=sys.stderr)
    return 0


def _requeue(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows.outbox import requeue

    if (args.id is None) == (not args.all_parked):
        print("dispatchd: outbox requeue needs an outbox id or --all-parked (not both)", file=sys.stderr)
        return EXIT_CONFIG
    rows = requeue(engine(config), SystemClock().now(), None if args.all_parked else [args.id])
    if args.id is not None and not rows:
        print(f"dispatchd: no parked email {args.id}", file=sys.stderr)
        return EXIT_NOT_FOUND
    emit([{"id": r.id, "message_id": r.message_id, "to": r.recipients, "subject": r.subject} for r in rows],
         args.json, ["id", "message_id", "to", "subject"])
    if not args.json:
        print(f"{len(rows)} email(s) queued again; the running sender sends them within 30 s", file=sys.stderr)
    return 0
