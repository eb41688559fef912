"""Periodic mail: the weekly client digest, the daily staff digest and the daily health report.

Each (job, period, recipient) is recorded in ``job_run`` with its outbox row, so a digest
goes out once per period whatever restarts or extra runs happen.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from dispatchd.clock import as_utc
from dispatchd.domain.models import Status
from dispatchd.domain.states import allowed_actions
from dispatchd.domain.trust import digest_recipients, is_clients_task
from dispatchd.flows.history import events_of
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.notices import digest_mail
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.reports import health_report, report_dict
from dispatchd.mail.compose import OutboundMail
from dispatchd.store.tables import JobRun, Task

log = structlog.get_logger("dispatchd.digests")
CLOSED = (Status.CLOSED.value, Status.CANCELLED.value)


def client_digests(deps: IntakeDeps) -> Counter[str]:
    """Weekly, per client: delivered this week, in progress, coming next (with expected dates) and
    what we are still reviewing (triage: no date yet, it is not a delivery promise). Each contact
    is greeted by the name they write under."""
    now = deps.clock.now()
    period = f"{now.isocalendar().year}-W{now.isocalendar().week:02d}"
    sent: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        for client in deps.config.clients:
            stored = list(session.exec(select(Task).where(Task.client == client.name)).all())
            history = events_of(session, [t.id for t in stored])  # type: ignore[misc]
            tasks = [t for t in stored if is_clients_task(
                t.sender, client, deps.config.staff_by_email(t.sender) is not None,
                any(e.kind == "rerouted" for e in history[t.id]))]  # type: ignore[index]
            week_ago = now - timedelta(days=7)
            delivered = [t for t in tasks if any(e.to_status == Status.DELIVERED.value and as_utc(e.at) >= week_ago
                                                 for e in history[t.id])]  # type: ignore[index]
            in_progress = [t for t in tasks if t.status in (Status.IN_PROGRESS.value, Status.IN_REVIEW.value,
                                                             Status.REVISIONS_NEEDED.value,
                                                             Status.READY_FOR_DELIVERY.value)]
            waiting = [t for t in tasks if t.status in (Status.RECEIVED.value, Status.QUEUED.value)]
            reviewing = [t for t in waiting if _in_triage(t, deps)]
            coming = [t for t in waiting if not _in_triage(t, deps)]
            if not (delivered or in_progress or coming or reviewing):
                continue
            recent = {t.sender for t in tasks if as_utc(t.created_at) >= now - timedelta(days=90) and t.sender}  # type: ignore[operator]
            values = {"client": client.name, "delivered": delivered, "in_progress": in_progress, "coming": coming,
                      "reviewing": reviewing, "period": period}
            for address in digest_recipients(client, recent):
                greeting = {"contact_name": contact_name(address, tasks)}
                sent["client-digest"] += _once(session, "client-digest", period, address, deps, now,
                                               digest_mail("client-digest", address, {**values, **greeting},
                                                           deps.notices))
    log.info("job.digest_done", period=period, **sent)
    return +sent


def _in_triage(task: Task, deps: IntakeDeps) -> bool:
    return task.status == Status.RECEIVED.value or task.queue == deps.rulebook.triage_queue


def contact_name(address: str, tasks: list[Task]) -> str:
    """The first name ``address`` signs its requests with ('Bob Stone' -> 'Bob'); '' if none."""
    named = [t for t in tasks if t.sender == address and t.sender_name.strip()]
    if not named:
        return ""
    latest = max(named, key=lambda t: t.id or 0)
    words = latest.sender_name.replace('"', "").split()
    return words[0] if words and "@" not in words[0] else ""


def staff_digests(deps: IntakeDeps) -> Counter[str]:
    """Daily, per person: their work with the commands to reply with, and what they could take."""
    now = deps.clock.now()
    period = now.date().isoformat()
    sent: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        open_tasks = list(session.exec(select(Task).where(col(Task.status).not_in(CLOSED))
                                       .order_by(col(Task.priority), col(Task.due_at), col(Task.id))).all())
        for person in deps.config.staff:
            mine = [(t, allowed_actions(Status(t.status))) for t in open_tasks if t.assignee == person.email]
            free = [t for t in open_tasks if t.assignee is None and t.queue in person.queues
                    and t.status in (Status.QUEUED.value, Status.REVISIONS_NEEDED.value)]
            if not (mine or free):
                continue
            values = {"person": person, "mine": mine, "free": free[:20], "period": period}
            sent["staff-digest"] += _once(session, "staff-digest", period, person.email, deps, now,
                                          digest_mail("staff-digest", person.email, values, deps.notices))
    log.info("job.staff_digest_done", period=period, **sent)
    return +sent


def health_reports(deps: IntakeDeps) -> Counter[str]:
    """Daily to managers and leads: queue health, triage share, suggestions and the forecast."""
    now = deps.clock.now()
    period = now.date().isoformat()
    report = report_dict(health_report(deps))
    sent: Counter[str] = Counter()
    with Session(deps.engine) as session, session.begin():
        for person in deps.config.staff:
            if person.role in ("manager", "lead"):
                sent["health"] += _once(session, "health", period, person.email, deps, now,
                                        digest_mail("owner-health", person.email, {"report": report},
                                                    deps.notices))
    log.info("job.health_done", period=period, **sent)
    return +sent


def _once(session: Session, job: str, period: str, recipient: str, deps: IntakeDeps, now: datetime,
          mail: OutboundMail) -> int:
    try:
        with session.begin_nested():
            session.add(JobRun(job=job, period=period, recipient=recipient, ran_at=now))
    except IntegrityError:
        return 0
    enqueue(session, [mail], deps.notices, now)
    return 1
