"""Webhooks, Slack and Teams end to end: real Dovecot, the SMTP sink and real HTTP receivers on
127.0.0.1. Events are signed as the README shows, valid against the shipped schema and the Block
Kit / Adaptive Card structure, in order per task (through failures, on SQLite and PostgreSQL),
never internal in a client's channel; the CLI. Failures: ``test_integration_faults.py``."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import SystemClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.events import CLIENT_EVENTS
from dispatchd.flows.integrations import IntegrationSender
from dispatchd.store import queries
from dispatchd.store.tables import IntegrationDelivery, IntegrationEvent, Task
from dispatchd.webhooks.outcomes import Backoff
from tests.integration.conftest import Deployment, make_mail
from tests.integration.receiver import Received, Receiver, receiver  # noqa: F401 - the fixture
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
    with deployment.config.open("a") as config:
        config.write('\n[web]\nbase_url = "https://dispatch.agency.test"\n')
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
    assert {event["links"]["task"] for _, event in hooks} == {"https://dispatch.agency.test/staff/tasks/1"}

    # The client's Slack channel: progress only; the staff note and routing never reach it.
    slack = bodies(receiver, "/hook/slack")
    assert [r.headers["Dispatchd-Event"] for r, _ in slack] == ["task.created", "task.status_changed"]
    for request, message in slack:
        assert request.headers["Dispatchd-Event"] in CLIENT_EVENTS
        assert "price-sensitive" not in request.body.decode()
        assert "/staff/" not in request.body.decode(), "a client's channel gets no staff link"
        assert_block_kit(message)
    # The content team's Teams channel hears all of its queue's events, the note included.
    teams = bodies(receiver, "/hook/teams")
    assert len(teams) == len(hooks)
    assert any("price-sensitive" in r.body.decode() for r, _ in teams)
    for _, message in teams:
        assert_adaptive_card(message)
        assert message["attachments"][0]["content"]["actions"][0]["url"].endswith("/staff/tasks/1")
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
    try:
        asyncio.run(deliver_all())
    finally:  # a PostgreSQL coordinator holds a connection (and its advisory lock) until closed
        deps.coordinator.close()
        deps.engine.dispose()
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
