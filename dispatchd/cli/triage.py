"""The triage model's commands: status, train, restore."""

from __future__ import annotations

import argparse
from typing import Any

from dispatchd.cli.common import EXIT_CONFIG, EXIT_NOT_FOUND, emit
from dispatchd.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    triage = sub.add_parser("triage", help="the triage model that reads requests in plain words")
    actions = triage.add_subparsers(dest="triage_command", metavar="ACTION", required=True)
    status = actions.add_parser("status", parents=[common],
                                help="model version, examples per type, accuracy, confusion matrix, errors")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)
    train = actions.add_parser("train", parents=[common], help="train now (also the scheduled job 'train')")
    train.add_argument("--force", action="store_true", help="use the new model even if it is less accurate")
    train.add_argument("--json", action="store_true")
    train.set_defaults(handler=_train)
    restore = actions.add_parser("restore", parents=[common], help="make an earlier model the one in use")
    restore.add_argument("version", type=int)
    restore.set_defaults(handler=_restore)


def _status(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.cli.common import engine
    from dispatchd.flows.training import model_status
    from dispatchd.rulebook import load_rulebook

    report = model_status(engine(config), load_rulebook(config.rules_dir, config))
    if args.json:
        emit(report, True)
    else:
        print(status_text(report))
    return 0


def status_text(report: dict[str, Any]) -> str:
    active = report["active"]
    if active is None:
        lines = ["triage model: none trained yet (requests in plain words go to triage); run: dispatchd triage train"]
    else:
        lines = [f"triage model {active['version']}, trained {active['trained_at']} on {active['examples']} examples",
                 f"accuracy {active['accuracy']:.1%} ({active['method']}, {active['measured_on']} examples)"
                 + (f"  -- {active['note']}" if active["note"] else ""),
                 f"threshold {report['threshold']:.2f}, margin {report['margin']:.2f}"
                 + ("" if report["enabled"] else "  (turned off: [triage] model = false)")]
        lines.append("examples per type:")
        lines += [f"  {name:20} {count:6}" for name, count in active["examples_per_type"].items()]
        if active["confusion"]:
            labels = sorted({*active["confusion"], *(p for row in active["confusion"].values() for p in row)})
            lines.append("confusion (rows: true type, columns: predicted):")
            lines.append("  " + " " * 18 + "".join(f"{label[:9]:>10}" for label in labels))
            for truth in labels:
                row = active["confusion"].get(truth, {})
                lines.append(f"  {truth[:18]:18}" + "".join(f"{row.get(p, 0):>10}" for p in labels))
    if report["never_predicted"]:
        lines.append(f"types with no examples (never predicted): {', '.join(report['never_predicted'])}")
    routed, errors = report["model_routed"], report["model_errors"]
    lines.append(f"routed by the model: {routed}; corrected by a person (model errors): {len(errors)}")
    lines += [f"  task #{e['task']}: model said {e['predicted']}, a person made it {e['corrected_to']}"
              for e in errors[:10]]
    opinion = report["second_opinion"]
    if opinion["routed"] or opinion["held"] or opinion["failed_calls"]:
        lines.append(f"second opinion (chat endpoint): routed {opinion['routed']}, answered but left in triage "
                     f"{opinion['held']}, failed calls {opinion['failed_calls']}; re-routed by a person since: "
                     f"{len(opinion['corrected'])}")
        lines += [f"  task #{c['task']}: a person made it {c['type_now'] or '-'} (queue {c['queue_now']})"
                  for c in opinion["corrected"][:10]]
    if report["history"]:
        lines.append("models (newest first):")
        lines += [f"  {'*' if m['active'] else ' '} {m['version']:4}  {m['trained_at']}  accuracy {m['accuracy']:.1%}"
                  f"  on {m['examples']} examples" for m in report["history"]]
    return "\n".join(lines)


def _train(args: argparse.Namespace, config: Config) -> int:
    from datetime import datetime, timezone

    from dispatchd.cli.common import engine
    from dispatchd.flows.training import train
    from dispatchd.rulebook import load_rulebook

    try:
        result = train(engine(config), config, load_rulebook(config.rules_dir, config), datetime.now(timezone.utc),
                       force=args.force)
    except ValueError as exc:
        print(f"dispatchd: not trained: {exc}")
        return EXIT_CONFIG
    if args.json:
        emit(result.__dict__, True)
        return 0
    verdict = "now in use" if result.activated else "kept aside (the model in use stays)"
    previous = f", the model in use: {result.previous_accuracy:.1%}" if result.previous_accuracy is not None else ""
    print(f"triage model {result.version}: accuracy {result.accuracy:.1%} on {result.measured_on} examples"
          f"{previous}; {verdict}; {sum(result.examples.values())} examples, {result.seconds:.1f} s")
    if result.note:
        print(f"  {result.note}")
    if result.dropped:
        print(f"  examples of types no longer in the rules dropped: {result.dropped}")
    return 0


def _restore(args: argparse.Namespace, config: Config) -> int:
    from sqlmodel import Session

    from dispatchd.cli.common import engine
    from dispatchd.store.triage import activate

    with Session(engine(config)) as session, session.begin():
        if not activate(session, args.version):
            print(f"dispatchd: no triage model {args.version}")
            return EXIT_NOT_FOUND
    print(f"triage model {args.version} is in use (running daemons pick it up within a minute)")
    return 0
