"""Read-only views and operator actions on stored work: tasks, show, queues, quarantine, report, replay
(the outbox has its own group: ``cli.outbox``)."""

from __future__ import annotations

import argparse
import difflib
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dispatchd.cli.common import EXIT_CONFIG, EXIT_NOT_FOUND, due_in_words, emit, engine, period, progress_bar
from dispatchd.config import Config
from dispatchd.domain.duewords import due_reasons
from dispatchd.domain.models import Status
from dispatchd.errors import DispatchdError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    replay = sub.add_parser("replay", parents=[common],
                            help="route stored mail again under candidate rules and show what would change")
    replay.add_argument("message_id", nargs="?", help="only this Message-ID")
    replay.add_argument("--rules", type=Path, help="candidate rules directory (default: the rules in force)")
    replay.add_argument("--since", default="30d", help="period, e.g. 30d, 12h, 2w (default 30d)")
    replay.add_argument("--all", action="store_true", help="list unchanged requests too")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(handler=_replay, read_only=True)
    tasks = sub.add_parser("tasks", parents=[common], help="list tasks, newest first")
    tasks.add_argument("--queue")
    tasks.add_argument("--status", choices=tuple(s.value for s in Status))
    tasks.add_argument("--client", help="a client's name or alias")
    tasks.add_argument("--assignee", help="a staff member's name or email, or 'nobody'")
    tasks.add_argument("--text", help="words in the subject or description (any case)")
    tasks.add_argument("--since", metavar="DAY|PERIOD", help="created on or after 2026-11-01, or in the last 7d")
    tasks.add_argument("--until", metavar="DAY", help="created before the end of this day")
    tasks.add_argument("--limit", type=int, metavar="N",
                       help="at most N tasks (the table's default: 100; --json: all of them unless given)")
    tasks.add_argument("--before", type=int, metavar="ID",
                       help="the next page: tasks older than this id (the cursor the last page named)")
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(handler=_tasks, read_only=True)
    show = sub.add_parser("show", parents=[common], help="one task with its events and messages")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_show, read_only=True)
    queues = sub.add_parser("queues", parents=[common], help="depth of each queue by status")
    queues.add_argument("--json", action="store_true")
    queues.set_defaults(handler=_queues, read_only=True)
    quarantine = sub.add_parser("quarantine", parents=[common], help="messages that could not be processed")
    quarantine.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    quarantine.add_argument("id", nargs="?", type=int, help="message row id for retry")
    quarantine.add_argument("--json", action="store_true")
    quarantine.set_defaults(handler=_quarantine)
    report = sub.add_parser("report", parents=[common], help="queue health, SLA and routing figures")
    report.add_argument("--days", type=int, default=30, help="period for rates (default 30)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_report, read_only=True)


def _replay(args: argparse.Namespace, config: Config) -> int:
    from dataclasses import asdict

    from dispatchd.daemon import build_deps
    from dispatchd.flows.replay import replay
    from dispatchd.rulebook import load_rulebook

    deps = build_deps(config)
    candidate = load_rulebook(args.rules.resolve(), config) if args.rules else deps.rulebook
    since = None if args.message_id else deps.clock.now() - period(args.since)
    progress = progress_bar("replay") if sys.stderr.isatty() and not args.json else None
    replayed = list(replay(deps, candidate, since, args.message_id, progress))
    results = [r for r in replayed if args.all or r.changed or args.message_id]
    if args.json:
        emit([{**asdict(r), "changed": list(r.changed)} for r in results], True)
        return 0 if replayed or not args.message_id else EXIT_NOT_FOUND
    if args.message_id and not replayed:
        print(f"dispatchd: no stored request has the Message-ID {args.message_id} (replies, bounces and "
              f"mail from before go-live are not requests)", file=sys.stderr)
        return EXIT_NOT_FOUND
    if not results:
        print(f"nothing would change: {len(replayed)} requests since {since:%Y-%m-%d %H:%M} replayed, "
              f"each routed as before" if since else "nothing would change")
        return 0
    rows = [{"task": r.task_id, "changed": ",".join(r.changed) or "-",
             "before": " / ".join(r.before), "after": " / ".join(r.after), "subject": r.subject} for r in results]
    emit(rows, False, ["task", "changed", "before", "after", "subject"])
    if args.message_id:
        if not results[0].changed:
            print(f"\nnothing would change for task {results[0].task_id}: same queue, priority and SLA")
        print("\nbecause:\n" + "\n".join(f"  - {reason}" for reason in results[0].reasons))
    elif not args.all:
        print(f"\n{len(results)} of {len(replayed)} requests would be routed differently")
    return 0


def _report(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import build_deps
    from dispatchd.flows.reports import health_report, report_dict

    report = report_dict(health_report(build_deps(config), args.days))
    if args.json:
        emit(report, True)
        return 0
    rows = [{"queue": q["queue"], "health": q["colour"], "depth": q["depth"], "avg_wait_days": q["avg_wait_days"],
             "breach_rate": f"{q['breach_rate']:.0%}", "forecast_late": len(q["forecast"])} for q in report["queues"]]
    emit(rows, False, ["queue", "health", "depth", "avg_wait_days", "breach_rate", "forecast_late"])
    print(f"\n{report['requests']} requests in {report['period_days']} days; {report['triaged']} needed manual "
          f"triage ({report['triage_share']:.0%}, {report['triage_colour']})")
    for suggestion in report["suggestions"]:
        print(f"suggestion: {suggestion}")
    for gap in report["skill_gaps"]:
        print(f"skill gap: {gap}")
    for person in report["over_capacity"]:
        print(f"over capacity: {person}")
    if report.get("prune_runs"):
        print(f"retention: {report['prune_runs']} pruning run(s) freed {report['pruned_bytes'] / 1e6:.1f} MB")
    if report["parked_mail"] or report["quarantined"]:
        print(f"needs a person: {report['parked_mail']} parked outgoing emails, {report['quarantined']} quarantined "
              f"incoming messages, {report['bounced_mail']} bounces in the period")
        if report["parked_mail"]:
            print("  (dispatchd outbox --status parked shows why; dispatchd outbox requeue ID|--all-parked sends again)")
    from dispatchd.clock import SystemClock
    from dispatchd.flows.sender_hold import read_hold

    hold = read_hold(engine(config))
    if hold is not None and hold.until_at > SystemClock().now():
        print(f"needs a person: {hold.describe()} (since {hold.since[:16]} UTC, {hold.failures} probes)")
    return 0


def _tasks(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.queries import TaskFilter, count_tasks, known_queues, list_tasks
    from dispatchd.views import task_dict

    if args.limit is not None and args.limit < 1:
        raise DispatchdError("--limit must be at least 1 (leave it out for every task with --json)")
    # A script's JSON is complete unless it asks for a page; people read a screenful.
    limit = args.limit if args.limit is not None or args.json else TABLE_ROWS
    with Session(engine(config)) as session:
        wanted = TaskFilter(queue=args.queue, status=args.status, client=_client_named(args.client, config),
                            assignee=_assignee_named(args.assignee, config), text=args.text,
                            since=_since(args.since, config), until=_until(args.until, config), before=args.before)
        if args.queue and args.queue not in (queues := known_queues(session) | _configured_queues(config)):
            raise DispatchdError(f"--queue {args.queue}: no such queue{_did_you_mean(args.queue, queues)} "
                                 f"(known: {', '.join(sorted(queues))})")
        rows = [task_dict(t) for t in list_tasks(session, wanted, limit)]
        total = len(rows) if limit is None or len(rows) < limit else count_tasks(session, wanted)
    if args.json:  # JSON keeps the instant (ISO 8601 UTC); people read it in the words of every email
        emit(rows, True)
    else:
        words = due_in_words(config)
        emit([{**row, "due": words(row["due_at"])} for row in rows], False,
             ["id", "queue", "priority", "status", "client", "type", "assignee", "due", "description"])
    if total > len(rows):
        # Said on stderr, so the JSON on stdout stays a plain list a script can parse.
        print(f"{len(rows):,} of {total:,} shown; next page: --before {rows[-1]['id']}"
              + ("" if args.json else ", or --json for all"), file=sys.stderr if args.json else sys.stdout)
    return 0


TABLE_ROWS = 100


def _client_named(name: str | None, config: Config) -> str | None:
    if name is None:
        return None
    wanted = name.strip().lower()
    client = next((c for c in config.clients if wanted in {n.lower() for n in (c.name, *c.aliases)}), None)
    if client is None:
        names = {c.name for c in config.clients}
        raise DispatchdError(f"--client {name}: no such client{_did_you_mean(name, names)} "
                             f"(known: {', '.join(sorted(names)) or 'none configured'})")
    return client.name


def _assignee_named(name: str | None, config: Config) -> str | None:
    if name is None or name.lower() in ("nobody", "none", "-"):
        return None if name is None else ""
    person = config.staff_by_name(name)
    if person is None:
        names = {s.name for s in config.staff}
        raise DispatchdError(f"--assignee {name}: no [[staff]] of that name or email{_did_you_mean(name, names)}")
    return person.email


def _since(text: str | None, config: Config) -> datetime | None:
    if text is None:
        return None
    if text[:1].isdigit() and "-" in text:
        return _day_start(text, config, "--since")
    return datetime.now(timezone.utc) - period(text)


def _until(text: str | None, config: Config) -> datetime | None:
    return None if text is None else _day_start(text, config, "--until") + timedelta(days=1)


def _day_start(text: str, config: Config, option: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DispatchdError(f"{option} {text!r}: write a day such as 2026-11-01") from None
    # In UTC, as stored (SQLite keeps no offset)
    return datetime.combine(day, time(), ZoneInfo(config.calendar.timezone)).astimezone(timezone.utc)


def _configured_queues(config: Config) -> set[str]:
    from dispatchd.rulebook import load_rulebook

    rulebook = load_rulebook(config.rules_dir, config)
    return ({queue for person in config.staff for queue in person.queues} | {q.name for q in config.queues}
            | {t.queue for t in rulebook.types} | {rulebook.triage_queue})


def _did_you_mean(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _show(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.tables import Attachment, InboundMessage, Outbox, Task, TaskEvent
    from dispatchd.views import event_dict, inbound_dict, outbox_dict, task_dict

    with Session(engine(config)) as session:
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
        emit(data, True)
        return 0
    data["due"] = due_in_words(config)(data["due_at"])
    data["why due"] = due_reasons(data["due_explanation"] or "")  # the date is said once, in "due"
    for key in ("id", "status", "queue", "priority", "client", "claimed_client", "type", "assignee", "sender",
                "description", "due", "why due", "message_id"):
        if key == "claimed_client" and data[key] is None:
            continue
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

    with Session(engine(config)) as session:
        depths = queue_depths(session)
    by_queue: dict[str, dict[str, int]] = {}
    for queue, status, count in depths:
        by_queue.setdefault(queue, {})[status] = count
    rows = [{"queue": q, "open": sum(n for s, n in st.items() if s not in ("closed", "cancelled")),
             "total": sum(st.values()), "by_status": st} for q, st in sorted(by_queue.items())]
    if args.json:
        emit(rows, True)
    else:
        emit([{**r, "by_status": " ".join(f"{s}={n}" for s, n in sorted(r["by_status"].items()))}
               for r in rows], False, ["queue", "open", "total", "by_status"])
    return 0


def _quarantine(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.store.tables import InboundMessage
    from dispatchd.views import inbound_dict

    if args.action == "retry":
        if args.id is None:
            print("dispatchd: quarantine retry needs a message id", file=sys.stderr)
            return EXIT_CONFIG
        from dispatchd.daemon import build_deps
        from dispatchd.flows.reingest import retry_quarantined
        from dispatchd.flows.mailbox import release_unmovable

        deps = build_deps(config)
        if release_unmovable(deps, args.id):
            print(f"message {args.id}: will be moved again on the next pass (new mail, or a restart)")
            return 0
        outcome = retry_quarantined(args.id, deps)
        if outcome is None:
            print(f"dispatchd: no quarantined message {args.id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"message {args.id}: {outcome.disposition.value}"
              + (f", task {outcome.task_id}" if outcome.task_id else "") + (f" ({outcome.reason})" if outcome.reason else ""))
        return 0 if outcome.disposition.value != "quarantined" else EXIT_NOT_FOUND
    with Session(engine(config)) as session:
        rows = [_stuck(inbound_dict(r), r.unmovable) for r in session.exec(
            select(InboundMessage).where((InboundMessage.disposition == "quarantined")
                                         | col(InboundMessage.unmovable).is_not(None))
            .order_by(col(InboundMessage.id)))]
    emit(rows, args.json, ["id", "at", "sender", "subject", "reason"])
    return 0


def _stuck(row: dict[str, Any], unmovable: str | None) -> dict[str, Any]:
    """A message the server refused to move is processed but still in the intake folder."""
    if unmovable:
        row["unmovable"] = unmovable
        row["reason"] = f"left in {row['folder']}: {unmovable}" + (f" ({row['reason']})" if row["reason"] else "")
    return row
