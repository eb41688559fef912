"""Every scheduled job with a controllable clock: no sleeps, no servers, a real database."""

from __future__ import annotations

import asyncio
from collections import Counter
import itertools
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import structlog
from sqlmodel import Session, col, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.digests import client_digests, health_reports, staff_digests
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.redispatch import redispatch
from dispatchd.flows.reports import health_report
from dispatchd.flows.sla import check_slas
from dispatchd.jobs import FIRST_TRAINING, JOBS, _in_daemon_thread, build_scheduler
from dispatchd.store.tables import Outbox, SlaNotice, StaffAway, Task, TaskEvent
from tests.conftest import write_config

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=(
        '[[staff]]\nname = "Dina"\nemail = "dina@agency.test"\nqueues = ["design"]\nwip_limit = 2\n'), scheduled=True))
    return build_deps(config, clock=FrozenClock(MONDAY_10))


def clock(deps: IntakeDeps) -> FrozenClock:
    return deps.clock  # type: ignore[return-value]


def submit(deps: IntakeDeps, subject: str, sender: str = "bob@acme.test", body: str = "Please.") -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<job-{uid}@client.test>"
    message.set_content(body)
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def mails(deps: IntakeDeps, kind: str) -> list[Outbox]:
    with Session(deps.engine) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == kind).order_by(col(Outbox.id))).all())


def task(deps: IntakeDeps, task_id: int) -> Task:
    with Session(deps.engine) as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def test_sla_warns_at_80_and_breaches_at_100_once_each(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Strategy - Q3 planning")  # 48 hours, wall clock; due Wed 10:00
    assert not check_slas(deps)
    clock(deps).advance(hours=39)  # Wed 01:00: resolution at 81 %, first response (1 business day) red
    assert check_slas(deps) == {"first_response.breach": 1}, "yellow waits for business hours, red does not"
    clock(deps).advance(hours=8)  # Wed 09:00, 98 %
    assert check_slas(deps) == {"resolution.warning": 1, "resolution.client_late": 1}
    warnings = [m for m in mails(deps, "staff-sla") if "Yellow" in m.subject]
    assert [m.recipients for m in warnings] == ["morgan@agency.test"], "the strategy queue's owner"
    assert not check_slas(deps), "each threshold once"
    clock(deps).advance(hours=2)  # 102 %
    assert check_slas(deps) == {"resolution.breach": 1}
    red = [m for m in mails(deps, "staff-sla") if m.subject.startswith(f"[#{task_id}] RED") and "resolution" in m.subject]
    assert {m.recipients for m in red} == {"morgan@agency.test"}
    assert task(deps, task_id).priority == "P1", "escalation: a breached P2 moves up"
    with Session(deps.engine) as session:
        notices = session.exec(select(SlaNotice)).all()
        escalated = session.exec(select(TaskEvent).where(TaskEvent.kind == "escalated")).all()
    assert {(n.clock, n.level) for n in notices} == {
        ("first_response", "warning"), ("first_response", "breach"), ("resolution", "warning"),
        ("resolution", "breach"), ("resolution", "client_late")}
    assert len(escalated) == 1 and "breach-raises-priority" in escalated[0].detail
    assert not check_slas(deps)


def test_p0_and_red_go_out_at_night(deps: IntakeDeps) -> None:
    clock(deps).at = datetime(2026, 11, 23, 22, tzinfo=BERLIN)
    submit(deps, "[Acme] - Technical - site down")  # P0, 4 hours
    clock(deps).advance(hours=3.5)
    assert check_slas(deps)["resolution.warning"] == 1


def test_first_response_clock_stops_when_staff_act(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Content - Blog post")
    with Session(deps.engine) as session, session.begin():
        found = session.get(Task, task_id)
        session.add(TaskEvent(task_id=task_id, at=clock(deps).now(), actor="ben@agency.test", kind="assigned",
                              detail="", message_id=None))
        assert found is not None
    clock(deps).advance(days=1)
    assert "first_response.warning" not in check_slas(deps)


def test_paused_while_delivered(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Strategy - call")  # 48 hours
    with Session(deps.engine) as session, session.begin():
        found = session.get(Task, task_id)
        assert found is not None
        found.status = "delivered"
        session.add(TaskEvent(task_id=task_id, at=clock(deps).now() + timedelta(hours=1), actor="ben@agency.test",
                              kind="status", from_status="queued", to_status="delivered"))
    clock(deps).advance(days=10)
    assert "resolution.warning" not in check_slas(deps)


def with_client_window(deps: IntakeDeps, window: str) -> IntakeDeps:
    sla = replace(deps.rulebook.sla, notify_client_before=window)
    return replace(deps, rulebook=replace(deps.rulebook, sla=sla))


def test_no_running_late_notice_right_after_intake_whatever_the_window(deps: IntakeDeps) -> None:
    """Issue 20, 3: with the window longer than the P0 (4 h) and P1 (24 h) SLAs, the old job told
    every client "may take a little longer" the minute their request arrived."""
    deps = with_client_window(deps, "24 hours")
    submit(deps, "[Acme] - Technical - site down")  # P0, 4 hours
    submit(deps, "[Acme] - Content - homepage copy [P1]")  # P1, 24 hours
    clock(deps).advance(minutes=5)
    assert "resolution.client_late" not in check_slas(deps)
    clock(deps).advance(hours=1)  # a quarter of the P0's SLA: still the first part
    assert "resolution.client_late" not in check_slas(deps)
    assert mails(deps, "client-sla-late") == []


def test_the_client_hears_once_the_task_is_at_risk_not_before(deps: IntakeDeps) -> None:
    deps = with_client_window(deps, "24 hours")
    submit(deps, "[Acme] - Technical - site down")  # P0, 4 hours
    clock(deps).advance(hours=1, minutes=50)  # 46 %
    assert "resolution.client_late" not in check_slas(deps)
    clock(deps).advance(hours=1, minutes=30)  # 83 %
    assert check_slas(deps)["resolution.client_late"] == 1
    assert [m.recipients for m in mails(deps, "client-sla-late")] == ["bob@acme.test"]
    clock(deps).advance(minutes=10)
    assert "resolution.client_late" not in check_slas(deps), "once"


def test_before_the_warning_point_only_a_forecast_miss_past_half_time_tells_the_client(deps: IntakeDeps) -> None:
    deps = with_client_window(deps, "2 weeks")
    strategy = submit(deps, "[Acme] - Strategy - call")  # 48 hours: due Wed 10:00
    content = submit(deps, "[Acme] - Content - blog post")  # 5 business days: due next Mon 10:00
    clock(deps).advance(hours=22)  # Tue 08:00: strategy at 46 %, its forecast already late
    assert "resolution.client_late" not in check_slas(deps), "never in the first half"
    clock(deps).advance(hours=4)  # Tue 12:00, 54 %: 8 working hours of work cannot end by Wed 10:00
    assert check_slas(deps)["resolution.client_late"] == 1
    assert [m.subject.startswith(f"[#{strategy}]") for m in mails(deps, "client-sla-late")] == [True]
    clock(deps).advance(days=2)  # Thu 12:00: content at 65 %, forecast on time
    assert "resolution.client_late" not in check_slas(deps)
    assert not any(m.subject.startswith(f"[#{content}]") for m in mails(deps, "client-sla-late"))


def test_a_delivered_task_is_not_late(deps: IntakeDeps) -> None:
    deps = with_client_window(deps, "24 hours")
    task_id = submit(deps, "[Acme] - Technical - site down")
    with Session(deps.engine) as session, session.begin():
        found = session.get(Task, task_id)
        assert found is not None
        found.status = "delivered"
        session.add(TaskEvent(task_id=task_id, at=clock(deps).now() + timedelta(minutes=30), actor="ben@agency.test",
                              kind="status", from_status="queued", to_status="delivered"))
    clock(deps).advance(hours=3.5)
    assert "resolution.client_late" not in check_slas(deps)


def test_announced_tasks_are_left_out_and_keep_their_due_time(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Technical - site down")  # P0, 4 hours
    due = task(deps, task_id).due_at
    clock(deps).advance(hours=5)
    assert check_slas(deps)["resolution.breach"] == 1
    assert task(deps, task_id).due_at == due, "the due time that passed, not 'now'"
    with structlog.testing.capture_logs() as logs:
        clock(deps).advance(hours=5)
        assert not check_slas(deps)
    assert [e["tasks"] for e in logs if e["event"] == "job.sla_done"] == [0], "nothing left to announce: not loaded"
    assert task(deps, task_id).due_at == due


def test_least_loaded_assignment_and_capacity(deps: IntakeDeps) -> None:
    ids = [submit(deps, f"[Acme] - Design - banner {n}") for n in range(5)]
    assignees = [task(deps, i).assignee for i in ids]
    # design members: Ben (lead, wip 3) and Dina (wip 2); least loaded alternates, then capacity
    assert assignees == ["ben@agency.test", "dina@agency.test", "ben@agency.test", "dina@agency.test",
                         "ben@agency.test"]
    sixth = submit(deps, "[Acme] - Design - banner 6")
    assert task(deps, sixth).assignee is None
    [capacity] = mails(deps, "staff-capacity")
    assert capacity.recipients == "ben@agency.test" and "at capacity" in capacity.subject


def test_redispatch_stale_work_to_the_next_person(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Design - banner")
    assert task(deps, task_id).assignee == "ben@agency.test"
    clock(deps).advance(days=1)
    assert not redispatch(deps)
    clock(deps).advance(days=2)  # design: redispatch_after = 2 business days
    assert redispatch(deps) == {"to_person": 1}
    assert task(deps, task_id).assignee == "dina@agency.test"
    assert {m.recipients for m in mails(deps, "staff-redispatched")} == {"ben@agency.test", "dina@agency.test"}
    assert not redispatch(deps), "the move itself counts as activity"


def test_redispatch_back_to_a_manual_queue(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Content - post")
    with Session(deps.engine) as session, session.begin():
        found = session.get(Task, task_id)
        assert found is not None
        found.assignee, found.status = "ana@agency.test", "in_progress"
    clock(deps).advance(days=5)
    assert redispatch(deps) == {"to_queue": 1}
    assert (task(deps, task_id).assignee, task(deps, task_id).status) == (None, "queued")
    assert {m.recipients for m in mails(deps, "staff-redispatched")} == {"ana@agency.test", "ben@agency.test"}


def test_away_staff_lose_their_work(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Design - banner")
    with Session(deps.engine) as session, session.begin():
        session.add(StaffAway(email="ben@agency.test", until=MONDAY_10 + timedelta(days=7), set_at=MONDAY_10))
    assert redispatch(deps) == {"to_person": 1}
    assert task(deps, task_id).assignee == "dina@agency.test"
    assert "Ben is away" in mails(deps, "staff-redispatched")[0].raw.decode()


def test_work_of_the_only_one_who_can_do_it_goes_to_triage_when_they_are_away(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Design - banner")
    with Session(deps.engine) as session, session.begin():
        found = session.get(Task, task_id)
        assert found is not None
        found.needs = "print"  # nobody else in design prints; Ben is design's lead, so no one holds it
        session.add(StaffAway(email="ben@agency.test", until=MONDAY_10 + timedelta(days=7), set_at=MONDAY_10))
    assert redispatch(deps) == {"to_triage": 1}
    moved = task(deps, task_id)
    assert (moved.queue, moved.status, moved.assignee) == ("triage", "received", None)
    [told] = mails(deps, "staff-capacity")
    assert told.recipients == "morgan@agency.test" and "Nobody in design can take it" in told.subject
    assert "no one in design has 'print'" in " ".join(told.raw.decode().split())
    assert [m.recipients for m in mails(deps, "staff-redispatched")] == ["ben@agency.test"]


def test_client_digest_once_per_week(deps: IntakeDeps) -> None:
    submit(deps, "[Acme] - Content - One")
    submit(deps, "[Acme] - Design - Two", sender="carl@acme.test")
    assert client_digests(deps) == {"client-digest": 2}
    assert client_digests(deps) == {}
    [bob] = [m for m in mails(deps, "client-digest") if m.recipients == "bob@acme.test"]
    text = bob.raw.decode()
    assert "Coming next:" in text and "#1 One" in text and "#2 Two" in text
    clock(deps).advance(days=7)
    assert client_digests(deps) == {"client-digest": 2}


def test_staff_digest_is_a_working_surface(deps: IntakeDeps) -> None:
    submit(deps, "[Acme] - Content - Waiting")
    submit(deps, "[Acme] - Design - Mine")
    assert staff_digests(deps)["staff-digest"] >= 2
    [ana] = [m for m in mails(deps, "staff-digest") if m.recipients == "ana@agency.test"]
    assert "reply: take 1" in ana.raw.decode()
    [ben] = [m for m in mails(deps, "staff-digest") if m.recipients == "ben@agency.test"]
    assert "start 2" in ben.raw.decode() and "requests+t0." in ben.raw.decode()
    assert staff_digests(deps) == {}


def test_health_report_and_missing_categories(deps: IntakeDeps) -> None:
    for n in range(3):
        task_id = submit(deps, f"[Acme] - Graphix - banner {n}")
        with Session(deps.engine) as session, session.begin():
            found = session.get(Task, task_id)
            assert found is not None and found.queue == "triage"
            found.type, found.queue, found.status = "Design", "design", "queued"
            session.add(TaskEvent(task_id=task_id, at=clock(deps).now(), actor="morgan@agency.test",
                                  kind="rerouted", detail="type Design"))
    submit(deps, "[Acme] - Content - fine")
    report = health_report(deps)
    assert (report.requests, report.triaged, report.triage_colour) == (4, 3, "red")
    assert report.suggestions == ['add alias "graphix" to type Design (3 requests were routed by hand)']
    design = next(q for q in report.queues if q.queue == "design")
    assert design.depth == 3 and design.colours["depth"] == "green"
    assert health_reports(deps) == {"health": 2}  # Ben (lead) and Morgan (manager)
    assert health_reports(deps) == {}


def test_forecast_in_health_report(deps: IntakeDeps) -> None:
    for n in range(12):
        submit(deps, f"[Acme] - Technical - bug {n}")  # dev queue: pull, Ben only, 2 business days
    dev = next(q for q in health_report(deps).queues if q.queue == "dev")
    assert dev.depth == 12 and dev.colours["depth"] == "yellow"
    assert len(dev.forecast) >= 6, "Ben alone cannot finish twelve 8-hour tasks in two days"


def test_scheduler_registers_every_configured_job(deps: IntakeDeps) -> None:
    called = []

    async def main() -> None:
        scheduler = build_scheduler(lambda: deps, lambda: called.append(True))
        # Without [booking] there are no calls to book, without [second_opinion] nobody to ask:
        # those jobs are not scheduled.
        assert {job.id for job in scheduler.get_jobs()} == set(JOBS) - {"booking", "second-opinion"} | {FIRST_TRAINING}
        await scheduler.get_job("sla").func()
    asyncio.run(main())
    assert called == [True]


def test_the_second_opinion_is_scheduled_only_when_configured(deps: IntakeDeps, tmp_path: Path) -> None:
    """Off by default (the test above); with [second_opinion], every minute."""
    section = '[second_opinion]\nurl = "http://127.0.0.1:11434/v1"\nmodel = "llama3.1:8b"\n'
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=section, scheduled=True))

    async def main() -> None:
        job = build_scheduler(lambda: replace(deps, config=config), lambda: None).get_job("second-opinion")
        assert job is not None and str(job.trigger).startswith("cron[month='*', day='*', day_of_week='*', hour='*', "
                                                                "minute='*'")
    asyncio.run(main())


def test_round_robin_takes_turns_and_skips_the_full(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    project = Path(__file__).resolve().parents[2]
    for source in (project / "rules").glob("*.toml"):
        (rules / source.name).write_text(source.read_text().replace(
            'name = "content"\nstrategy = "manual"', 'name = "content"\nstrategy = "round_robin"'))
    path = write_config(tmp_path, mailbox="requests@agency.test", extra=(
        '[[staff]]\nname = "Cleo"\nemail = "cleo@agency.test"\nqueues = ["content"]\nwip_limit = 1\n'))
    path.write_text(path.read_text().replace(f'rules = "{project / "rules"}"', f'rules = "{rules}"'))
    deps = build_deps(load_config(path), clock=FrozenClock(MONDAY_10))
    ids = [submit(deps, f"[Acme] - Content - post {n}") for n in range(5)]
    # content members in config order: Ana (wip 3), Ben (wip 3), Cleo (wip 1)
    assert [task(deps, i).assignee for i in ids] == ["ana@agency.test", "ben@agency.test", "cleo@agency.test",
                                                     "ana@agency.test", "ben@agency.test"]


def test_next_orders_by_priority_due_then_fifo_or_lifo(deps: IntakeDeps) -> None:
    from dispatchd.flows.assignment import next_task
    from dispatchd.domain.routing import QueuePolicy

    first = submit(deps, "[Acme] - Technical - first")
    clock(deps).advance(minutes=1)
    second = submit(deps, "[Acme] - Technical - second")
    urgent = submit(deps, "[Acme] - Technical - third [P1]")
    with Session(deps.engine) as session, session.begin():
        for task_id in (first, second):
            found = session.get(Task, task_id)
            assert found is not None
            found.due_at = MONDAY_10 + timedelta(days=3)
    with Session(deps.engine) as session:
        assert next_task(session, ("dev",), {}).id == urgent  # type: ignore[union-attr]
    with Session(deps.engine) as session, session.begin():
        session.get(Task, urgent).assignee = "ben@agency.test"  # type: ignore[union-attr]
    with Session(deps.engine) as session:
        assert next_task(session, ("dev",), {}).id == first  # type: ignore[union-attr]
        assert next_task(session, ("dev",), {"dev": QueuePolicy("dev", order="lifo")}).id == second


def test_day_one_trains_a_model_from_the_rules_at_start(deps: IntakeDeps) -> None:
    """No model yet: the scheduler trains one from the rules' examples at once, not at 02:30."""
    async def main() -> None:
        scheduler = build_scheduler(lambda: deps, lambda: None)
        first = scheduler.get_job(FIRST_TRAINING)
        assert first is not None
        await first.func()
        assert deps.triage.current() is not None
        assert build_scheduler(lambda: deps, lambda: None).get_job(FIRST_TRAINING) is None  # trained: not again
    asyncio.run(main())


def test_a_stopping_daemon_does_not_wait_for_training() -> None:
    """Training runs in a daemon thread: asyncio.run's exit would otherwise wait for it."""
    release = threading.Event()

    async def stop_while_training() -> None:
        training = asyncio.ensure_future(_in_daemon_thread(lambda name, deps: release.wait(60) and None, "train",
                                                           None))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        training.cancel()

    started = time.monotonic()
    asyncio.run(stop_while_training())
    assert time.monotonic() - started < 5
    release.set()


def test_a_job_in_a_daemon_thread_hands_back_its_result_and_its_error() -> None:
    def job(name: str, deps: object) -> Counter[str]:
        if name == "bad":
            raise ValueError("no examples")
        return Counter(trained=1)

    assert asyncio.run(_in_daemon_thread(job, "train", None)) == Counter(trained=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no examples"):
        asyncio.run(_in_daemon_thread(job, "bad", None))  # type: ignore[arg-type]
