"""Webhooks, Slack and Teams when receivers fail: 429 with Retry-After, 410 Gone, 500 until parked
(owners told once), redirects elsewhere, a receiver that hangs while a backlog is read, and a SIGKILL
between the receiver's 200 and our commit (the same event id is posted again)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlmodel import col, select

from dispatchd.clock import as_utc
from dispatchd.store.tables import IntegrationDelivery, IntegrationDestination, IntegrationEvent, Outbox
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for
from tests.integration.receiver import Received, Receiver, receiver  # noqa: F401 - the fixture
from tests.integration.test_integrations import configure
from tests.integration.test_replies import send

pytestmark = pytest.mark.integration


def test_429_waits_its_retry_after_and_410_disables_the_destination_once(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver.answer = lambda n, r: (429, {"Retry-After": "120"}) if r.path == "/hook/hook" else (200, {})
    configure(deployment, receiver, monkeypatch, webhook='events = ["task.created"]')
    send(deployment, make_mail("[Acme] - Content - First"))
    with deployment.session() as session:
        [row] = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).all()
    assert row.status == "pending" and row.attempts == 1 and row.response == 429
    assert (as_utc(row.next_attempt_at) - utcnow()).total_seconds() > 100, "Retry-After: 120 respected"

    receiver.answer = lambda n, r: (410, {}) if r.path == "/hook/hook" else (200, {})
    with deployment.session() as session:
        for delivery in session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")):
            delivery.next_attempt_at = utcnow()
            session.add(delivery)
        session.commit()
    deployment.smtp.messages.clear()
    send(deployment, make_mail("[Acme] - Content - Second"))
    with deployment.session() as session:
        state = session.get(IntegrationDestination, "crm")
        crm = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).all()
        told = session.exec(select(Outbox).where(Outbox.kind == "staff-integration")).all()
    assert state is not None and state.disabled and "410" in state.disabled
    assert {d.status for d in crm} == {"parked"}
    assert len(told) == 1 and told[0].recipients == "morgan@agency.test", "the manager is told, once"
    posted = sum(1 for r in receiver.requests if r.path == "/hook/hook")
    send(deployment, make_mail("[Acme] - Content - Third"))
    assert sum(1 for r in receiver.requests if r.path == "/hook/hook") == posted, "a gone destination hears nothing"
    assert deployment.cli("integrations", "retry", "crm") == 0
    receiver.answer = lambda n, r: (200, {})
    send(deployment, make_mail("[Acme] - Content - Fourth"))
    with deployment.session() as session:
        crm = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).all()
    assert {d.status for d in crm} == {"sent"} and len(crm) == 4


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def child_of(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def poster_pid(daemon_pid: int) -> int | None:
    """The process that posts events: the integrations process, forked by the sender."""
    sender = child_of(daemon_pid)
    return child_of(sender) if sender else None


@pytest.mark.slow
def test_sigkill_between_the_receivers_200_and_our_commit_resends_the_same_event(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(deployment, receiver, monkeypatch, webhook='events = ["task.created", "task.routed"]')
    seen: set[str] = set()
    kills: list[int] = []
    daemon_pid: list[int] = []

    def answer(number: int, request: Received) -> tuple[int, dict[str, str]]:
        key = request.headers["Idempotency-Key"]
        duplicate = key in seen
        seen.add(key)
        if request.path == "/hook/hook" and not kills:
            pid = poster_pid(daemon_pid[0])
            assert pid is not None and os.getpriority(os.PRIO_PROCESS, pid) == 10, "posted at a lower priority"
            os.kill(pid, signal.SIGKILL)  # the receiver has processed it; we never hear its 200
            kills.append(pid)
        return (200, {"X-Duplicate": "yes"}) if duplicate else (200, {})
    receiver.answer = answer
    deployment.deliver(make_mail("[Acme] - Content - Crash test"))
    daemon = deployment.start_daemon()
    daemon_pid.append(daemon.pid)
    try:
        wait_for(lambda: bool(kills), what="the sender killed mid-request")
        assert daemon.wait(timeout=30) != 0, "the daemon stops when its sender dies"
    finally:
        stop_process(daemon)
    daemon = deployment.start_daemon(log_name="daemon2.log")
    try:
        wait_for(lambda: sum(1 for r in receiver.requests if r.path == "/hook/hook") >= 3, what="the resend")
        with deployment.session() as session:
            wait_for(lambda: False if session.exec(select(IntegrationDelivery).where(
                col(IntegrationDelivery.status) != "sent")).all() else True, what="all recorded")
    finally:
        stop_process(daemon)
    hooks = [r for r in receiver.requests if r.path == "/hook/hook"]
    keys = [r.headers["Idempotency-Key"] for r in hooks]
    assert keys[0] == keys[1], "the resend carries the same event id"
    assert len(set(keys)) == 2 and len(keys) == 3, "task.created twice (the receiver dedups), task.routed once"
    assert json.loads(hooks[0].body)["id"] == json.loads(hooks[1].body)["id"]
    with deployment.session() as session:
        events = session.exec(select(IntegrationEvent).order_by(col(IntegrationEvent.id))).all()
    assert [e.event_id for e in events if e.type in ("task.created", "task.routed")] == keys[1:]


@pytest.mark.slow
def test_a_hanging_destination_costs_intake_and_mail_nothing(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver.answer = lambda n, r: (0, {}) if r.path == "/hook/hook" else (200, {})  # crm never answers
    configure(deployment, receiver, monkeypatch, webhook="concurrency = 2")
    count = 30
    deployment.deliver(*(make_mail(f"[Acme] - Content - Request {n}") for n in range(count)))
    started = time.monotonic()
    assert deployment.run_once() == 0
    elapsed = time.monotonic() - started
    assert len(deployment.tasks()) == count
    assert len(deployment.received_by("bob@acme.test")) == count, "every confirmation sent"
    with deployment.session() as session:
        by = {(d.destination, d.status) for d in session.exec(select(IntegrationDelivery))}
    assert ("acme-slack", "sent") in by and ("content-teams", "sent") in by
    assert not any(status == "pending" for name, status in by if name != "crm"), "the others all delivered"
    assert ("crm", "pending") in by, "crm's events wait for their retry"
    assert elapsed < 30, f"run took {elapsed:.1f} s"


def make_due(deployment: Deployment, destination: str) -> None:
    with deployment.session() as session:
        for delivery in session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == destination)):
            delivery.next_attempt_at = utcnow()
            session.add(delivery)
        session.commit()


def test_parked_after_max_attempts_and_the_owners_told_once(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver.answer = lambda n, r: (500, {}) if r.path == "/hook/hook" else (200, {})
    configure(deployment, receiver, monkeypatch,
              webhook='events = ["task.created"]\nmax_attempts = 2\nowners = ["ops@agency.test"]')
    send(deployment, make_mail("[Acme] - Content - One"))
    make_due(deployment, "crm")
    assert deployment.run_once() == 0  # nothing new: the sender retries what is due
    send(deployment, make_mail("[Acme] - Content - Two"))
    make_due(deployment, "crm")
    assert deployment.run_once() == 0
    with deployment.session() as session:
        crm = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).all()
    assert [(d.status, d.attempts, d.response) for d in crm] == [("parked", 2, 500), ("parked", 2, 500)]
    told = deployment.received_by("ops@agency.test")
    assert len(told) == 1 and "crm" in told[0]["Subject"], "owners hear once, not per event"
    assert deployment.cli("integrations", "retry") == 0
    with deployment.session() as session:
        assert {d.status for d in session.exec(select(IntegrationDelivery))} == {"sent", "pending"}


def test_redirects_only_within_the_configured_origin(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = Receiver().start()
    try:
        def answer(n: int, r: Received) -> tuple[int, dict[str, str]]:
            if r.path == "/hook/hook":
                return 307, {"Location": "/hook/moved"}  # same origin: followed
            if r.path == "/hook/slack":
                return 308, {"Location": f"{elsewhere.url}/stolen"}  # another port: not followed
            return 200, {}
        receiver.answer = answer
        configure(deployment, receiver, monkeypatch, webhook='events = ["task.created"]',
                  slack='events = ["task.created"]')
        send(deployment, make_mail("[Acme] - Content - Moved"))
        assert [r.path for r in receiver.requests if r.path.startswith("/hook/moved")] == ["/hook/moved"]
        assert elsewhere.count() == 0, "nothing sent anywhere but the configured origin"
        with deployment.session() as session:
            slack = session.exec(select(IntegrationDelivery).where(
                IntegrationDelivery.destination == "acme-slack")).one()
            crm = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).one()
        assert crm.status == "sent"
        assert slack.status == "parked" and "not followed" in slack.last_error
    finally:
        elsewhere.stop()


def test_an_event_erased_before_it_went_out_is_parked_unsent(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver.answer = lambda n, r: (503, {}) if r.path == "/hook/hook" else (200, {})
    configure(deployment, receiver, monkeypatch, webhook='events = ["task.created"]')
    send(deployment, make_mail("[Acme] - Content - Forget me"))
    with deployment.session() as session:  # what `dispatchd forget` leaves of an event's body
        for event in session.exec(select(IntegrationEvent)):
            event.body = '{"erased":true}'
            session.add(event)
        session.commit()
    make_due(deployment, "crm")
    posted = receiver.count()
    receiver.answer = lambda n, r: (200, {})
    assert deployment.run_once() == 0
    with deployment.session() as session:
        crm = session.exec(select(IntegrationDelivery).where(IntegrationDelivery.destination == "crm")).one()
    assert crm.status == "parked" and "erased" in crm.last_error
    assert receiver.count() == posted, "nothing of an erased event is posted"
