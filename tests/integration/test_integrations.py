"""Webhooks, Slack and Teams end to end: real Dovecot, the SMTP sink and real HTTP receivers on
127.0.0.1. Events are signed as the README shows, valid against the shipped schema, in order per
task, never internal in a client's channel; a crash between the receiver's answer and our commit
resends the same event id; a receiver that hangs costs intake and mail nothing."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import SystemClock, as_utc
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.events import CLIENT_EVENTS
from dispatchd.flows.integrations import IntegrationSender
from dispatchd.store import queries
from dispatchd.store.tables import IntegrationDelivery, IntegrationDestination, IntegrationEvent, Outbox, Task
from dispatchd.webhooks.outcomes import Backoff
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for
from tests.integration.receiver import Received, Receiver
from tests.integration.test_replies import last_to, reply, send

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((PROJECT / "dispatchd" / "events.schema.json").read_text())
SECRET = "whsec-test-0123456789"


def readme_verify() -> object:
    """The verification recipe exactly as README.md prints it."""
    text = (PROJECT / "README.md").read_text()
    code = re.search(r"<!-- verify-recipe -->\n```python\n(.*?)```", text, re.S)
    assert code, "README has the recipe"
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # noqa: S102 - our own README's snippet, run as a receiver would
    return namespace["verify"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


def destinations(url: str, webhook: str = "", slack: str = "", teams: str = "") -> str:
    return f"""
[[webhooks]]
name = "crm"
url = "{url}/hook"
secret_env = "TEST_HOOK_SECRET"
timeout = 1
{webhook}

[[slack]]
name = "acme-slack"
url_env = "TEST_SLACK_URL"
client = "Acme"
{slack}

[[teams]]
name = "content-teams"
url_env = "TEST_TEAMS_URL"
queue = "content"
{teams}
"""


def configure(deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    monkeypatch.setenv("TEST_SLACK_URL", f"{receiver.url}/slack")
    monkeypatch.setenv("TEST_TEAMS_URL", f"{receiver.url}/teams")
    with deployment.config.open("a") as config:
        config.write(destinations(receiver.url, **extra))


def bodies(receiver: Receiver, path: str) -> list[tuple[Received, dict]]:
    return [(r, json.loads(r.body)) for r in list(receiver.requests) if r.path == path]


def test_events_reach_each_destination_signed_valid_and_in_order(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(deployment, receiver, monkeypatch)
    send(deployment, make_mail("[Acme] - Content - Blog post on topic clusters"))
    send(deployment, reply(last_to(deployment, "ben@agency.test"), "ben@agency.test",
                           "assign Ana\nnote: client is price-sensitive, keep it short"))
    send(deployment, reply(last_to(deployment, "ana@agency.test"), "ana@agency.test", "start"))

    verify = readme_verify()
    hooks = bodies(receiver, "/hook/hook")
    kinds = [event["type"] for _, event in hooks]
    assert kinds == ["task.created", "task.routed", "task.assigned", "task.commented", "task.status_changed"], kinds
    for request, event in hooks:
        jsonschema.validate(event, SCHEMA)
        assert verify(SECRET.encode(), request.headers["Dispatchd-Signature"], request.body)  # type: ignore[operator]
        assert not verify(b"wrong", request.headers["Dispatchd-Signature"], request.body)  # type: ignore[operator]
        assert request.headers["Idempotency-Key"] == event["id"]
    assert [event["occurred_at"] for _, event in hooks] == sorted(event["occurred_at"] for _, event in hooks)
    assert hooks[-1][1]["data"] == {"from": "queued", "to": "in_progress", "by": "ana@agency.test"}
    assert hooks[0][1]["task"]["requester"]["email"] == "bob@acme.test"

    # The client's Slack channel: progress only; the staff note and routing never reach it.
    slack = bodies(receiver, "/hook/slack")
    assert [r.headers["Dispatchd-Event"] for r, _ in slack] == ["task.created", "task.status_changed"]
    for request, message in slack:
        assert request.headers["Dispatchd-Event"] in CLIENT_EVENTS
        assert "price-sensitive" not in request.body.decode()
        assert_block_kit(message)
    # The content team's Teams channel hears all of its queue's events, the note included.
    teams = bodies(receiver, "/hook/teams")
    assert len(teams) == len(hooks)
    assert any("price-sensitive" in r.body.decode() for r, _ in teams)
    for _, message in teams:
        assert_adaptive_card(message)
    with deployment.session() as session:
        statuses = session.exec(select(IntegrationDelivery.status)).all()
    assert set(statuses) == {"sent"}


def assert_block_kit(message: dict) -> None:
    """Slack's documented limits for incoming webhooks with blocks."""
    assert isinstance(message["text"], str) and message["text"]
    blocks = message["blocks"]
    assert 0 < len(blocks) <= 50
    assert blocks[0]["type"] == "header" and len(blocks[0]["text"]["text"]) <= 150
    assert blocks[0]["text"]["type"] == "plain_text"
    for block in blocks:
        assert block["type"] in ("header", "section", "actions", "context", "divider")
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(f["type"] == "mrkdwn" and len(f["text"]) <= 2000 for f in block.get("fields", []))
    fields = "".join(f["text"] for f in blocks[1]["fields"])
    assert "*Status*" in fields and "*Priority*" in fields and "*Due*" in fields


def assert_adaptive_card(message: dict) -> None:
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["type"] == "TextBlock" and card["body"][0]["text"]
    facts = next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    assert {f["title"] for f in facts} >= {"Status", "Priority", "Due"}
    assert all(isinstance(f["value"], str) for f in facts)


def sender_for(deployment: Deployment, backoff: Backoff | None = None) -> tuple[IntegrationSender, object]:
    deps = build_deps(load_config(deployment.config))
    return IntegrationSender(deps.config, deps.engine, SystemClock(), deps.coordinator, backoff), deps


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


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_each_tasks_events_arrive_in_order_through_failures(
        deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, database: str,
        request: pytest.FixtureRequest) -> None:
    """Every third request fails (500); retries come at once (a tiny backoff), four at a time: each
    task's events still reach the receiver in the order they happened, each exactly once."""
    if database == "postgresql":  # the claim's FOR UPDATE SKIP LOCKED and NOT EXISTS, on PostgreSQL
        url = request.getfixturevalue("postgres_url")
        deployment.config.write_text(deployment.config.read_text().replace('url = "sqlite:///dispatchd.db"',
                                                                           f'url = "{url}"'))
        deployment.database_url = url
    receiver.answer = lambda n, r: (500, {}) if n % 3 == 1 else (200, {})
    configure(deployment, receiver, monkeypatch, webhook="concurrency = 4\nmax_attempts = 50",
              slack='events = ["task.created"]', teams='events = ["task.created"]')
    deps = build_deps(load_config(deployment.config))
    with Session(deps.engine) as session, session.begin():
        for n in range(8):
            now = datetime.now(timezone.utc)
            task = Task(client="Acme", queue="content", priority="P2", status="queued", description=f"d{n}",
                        subject=f"s{n}", sender="bob@acme.test", sla="5 business days", message_id=f"<o{n}@x>",
                        created_at=now, updated_at=now)
            session.add(task)
            session.flush()
            queries.add_event(session, task, now, "bob@acme.test", "received", to_status="received")
            for source, target in (("queued", "in_progress"), ("in_progress", "in_review"),
                                   ("in_review", "ready_for_delivery"), ("ready_for_delivery", "delivered")):
                task.status = target
                queries.add_event(session, task, now, "ben@agency.test", "status", "", None, source, target)
    sender = IntegrationSender(deps.config, deps.engine, SystemClock(), deps.coordinator,
                               Backoff(base_seconds=0.001, max_seconds=0.01))

    async def deliver_all() -> None:
        sender.fan_out()
        for _ in range(200):
            await sender.deliver_due(deps.config.destination_named("crm"))
            if sender.seconds_until_due("crm") is None:
                break
            await asyncio.sleep(0.02)
        await sender.close()
    asyncio.run(deliver_all())
    accepted = [json.loads(r.body) for n, r in enumerate(receiver.requests)
                if r.path == "/hook/hook" and n % 3 != 1]
    with deployment.session() as session:
        stored = session.exec(select(IntegrationEvent).order_by(col(IntegrationEvent.id))).all()
    assert len(accepted) == len(stored) == 8 * 6, "each event delivered once (task.delivered too)"
    for task_id in {e.task_id for e in stored}:
        assert [e["id"] for e in accepted if e["task"]["id"] == task_id] == \
               [e.event_id for e in stored if e.task_id == task_id], f"task {task_id}'s events in order"
    retried = [r.headers["Idempotency-Key"] for n, r in enumerate(receiver.requests) if n % 3 == 1]
    assert retried and set(retried) <= {e["id"] for e in accepted}, "a failed request is retried as the same event"


def test_cli_lists_tests_and_prints_the_schema(deployment: Deployment, receiver: Receiver,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    configure(deployment, receiver, monkeypatch)
    send(deployment, make_mail("[Acme] - Content - Listed"))
    capsys.readouterr()
    assert deployment.cli("integrations", "--json") == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["crm"]["sent"] == 2 and listed["acme-slack"]["sent"] == 1 and listed["content-teams"]["sent"] == 2
    assert listed["acme-slack"]["audience"] == "client" and listed["crm"]["last_delivery"]
    assert deployment.cli("integrations", "test", "crm", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == 200
    test_event = json.loads(receiver.requests[-1].body)
    jsonschema.validate(test_event, SCHEMA)
    assert test_event["type"] == "test"
    assert readme_verify()(SECRET.encode(), receiver.requests[-1].headers["Dispatchd-Signature"],  # type: ignore[operator]
                           receiver.requests[-1].body)
    assert deployment.cli("integrations", "test", "nobody") == 1
    assert deployment.cli("events", "schema") == 0
    assert json.loads(capsys.readouterr().out) == SCHEMA


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
