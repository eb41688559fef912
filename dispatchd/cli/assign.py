"""``dispatchd explain-assign TASK``: who was considered for a task and why each was or was not
chosen (the eligibility of ``domain/eligibility.py``, read against the database now)."""

from __future__ import annotations

import argparse

from sqlmodel import Session

from dispatchd.cli.common import EXIT_NOT_FOUND, emit, engine
from dispatchd.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    explain = sub.add_parser("explain-assign", parents=[common],
                             help="who could take a task, who would get it now, and what happened when it was assigned")
    explain.add_argument("task", type=int, metavar="TASK")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(handler=_explain, read_only=True)


def _explain(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.calendars import business_calendar
    from dispatchd.clock import SystemClock
    from dispatchd.flows.assignment import explain_assignment
    from dispatchd.rulebook import load_rulebook
    from dispatchd.store.tables import Task

    rulebook = load_rulebook(config.rules_dir, config)
    with Session(engine(config)) as session:
        task = session.get(Task, args.task)
        if task is None:
            print(f"no task #{args.task}")
            return EXIT_NOT_FOUND
        found = explain_assignment(session, task, config, rulebook.queues, SystemClock().now(),
                                   business_calendar(config.calendar))
    if args.json:
        emit(found, True)
        return 0
    needs = found["needs"]
    asked = [*(f"'{s}'" for s in needs["skills"]), *([f"region {needs['region']}"] if needs["region"] else [])]  # type: ignore[index]
    print(f"task #{found['task']} in {found['queue']} ({found['strategy']}), assigned to {found['assignee'] or 'nobody'}")
    print(f"needs: {', '.join(asked) or 'nothing special'}"
          + (f"; prefers {', '.join(needs['prefer'])}" if needs["prefer"] else ""))  # type: ignore[index]
    print("considered now:")
    emit([{"person": c["name"], "eligible": "yes" if c["eligible"] else "no", "why": c["why"]}
          for c in found["considered"]], False, ["person", "eligible", "why"])  # type: ignore[union-attr]
    now = found["now"]
    print(f"now it would go to: {now['assignee'] or 'nobody'} ({now['reason']})")  # type: ignore[index]
    for event in found["history"]:  # type: ignore[union-attr]
        print(f"{event['at'][:16]} {event['kind']} by {event['actor']}:")
        for line in event["detail"].splitlines():
            print(f"    {line}")
    return 0
