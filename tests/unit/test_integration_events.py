"""Integration events, pure parts: which audit entries become which events, the envelope against
the shipped schema, who hears what, Slack/Teams messages, signatures, answers and backoff."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from dispatchd.domain.chat_messages import slack_message, teams_message
from dispatchd.domain.events import (CLIENT_EVENTS, EVENT_TYPES, AuditEntry, Audience, EventFilter, envelope,
                                     events_of, task_snapshot, with_links)
from dispatchd.webhooks.outcomes import Answer, Backoff, Outcome, outcome_of, retry_after_seconds
from dispatchd.webhooks.signing import signature_header, verify

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "dispatchd" / "events.schema.json").read_text())
AT = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


@dataclass
class FakeTask:
    id: int = 7
    subject: str = "[Acme] - Content - Blog <post> & more"
    description: str = "Blog post"
    client: str | None = "Acme"
    type: str | None = "Content"
    queue: str = "content"
    priority: str = "P2"
    status: str = "queued"
    assignee: str | None = "ana@agency.test"
    due_at: datetime | None = AT
    created_at: datetime = AT
    updated_at: datetime = AT
    sender: str = "bob@acme.test"
    sender_name: str = "Bob Stone"


@pytest.mark.parametrize(("entry", "assignee", "expected"), [
    (AuditEntry("received", "bob@acme.test", "subject: x", None, "received"), None, [("task.created", False)]),
    (AuditEntry("routed", "dispatchd", "rule content", "received", "queued"), None, [("task.routed", True)]),
    (AuditEntry("routed", "dispatchd", "rule", "received", "queued"), "ana@agency.test",
     [("task.routed", True), ("task.assigned", True)]),
    (AuditEntry("triaged", "dispatchd", "no type"), None, [("triage.needed", True)]),
    (AuditEntry("assigned", "ben@agency.test", "nobody -> ana@agency.test"), "ana@agency.test",
     [("task.assigned", True)]),
    (AuditEntry("status", "ana@agency.test", "", "queued", "in_progress"), None, [("task.status_changed", False)]),
    (AuditEntry("status", "ben@agency.test", "", "ready_for_delivery", "delivered"), None,
     [("task.status_changed", False), ("task.delivered", False)]),
    (AuditEntry("status", "bob@acme.test", "", "delivered", "closed"), None,
     [("task.status_changed", False), ("task.closed", False)]),
    (AuditEntry("status", "bob@acme.test", "", "queued", "cancelled"), None,
     [("task.status_changed", False), ("task.closed", False)]),
    (AuditEntry("comment", "ben@agency.test", "price-sensitive"), None, [("task.commented", True)]),
    (AuditEntry("to_client", "ben@agency.test", "Here you go"), None, [("task.commented", False)]),
    (AuditEntry("sla", "dispatchd", "resolution warning 80%"), None, [("sla.warning", True)]),
    (AuditEntry("sla", "dispatchd", "resolution breach 104%"), None, [("sla.breached", True)]),
    (AuditEntry("question", "bob@acme.test", "start"), None, []),
    (AuditEntry("bounce", "mailer-daemon", "550"), None, []),
])
def test_audit_entries_become_events(entry: AuditEntry, assignee: str | None,
                                     expected: list[tuple[str, bool]]) -> None:
    drafts = events_of(entry, assignee)
    assert [(d.type, d.internal) for d in drafts] == expected
    for n, draft in enumerate(drafts):
        event = with_links(envelope(f"evt_{n:032x}", draft, AT, task_snapshot(FakeTask())), "https://d.test/")
        jsonschema.validate(event, SCHEMA)
        assert event["links"] == {"task": "https://d.test/staff/tasks/7"}


def test_schema_lists_exactly_the_events() -> None:
    assert set(SCHEMA["properties"]["type"]["enum"]) == {*EVENT_TYPES, "test"}


@pytest.mark.parametrize(("flt", "event", "internal", "client", "queue", "wanted"), [
    (EventFilter(), "task.routed", True, "Acme", "content", True),
    (EventFilter(audience=Audience.CLIENT, clients=("Acme",)), "task.routed", True, "Acme", "content", False),
    (EventFilter(audience=Audience.CLIENT, clients=("Acme",)), "task.commented", True, "Acme", "content", False),
    (EventFilter(audience=Audience.CLIENT, clients=("Acme",)), "task.commented", False, "Acme", "content", True),
    (EventFilter(audience=Audience.CLIENT, clients=("Acme",)), "task.created", False, "Globex", "content", False),
    (EventFilter(queues=("design",)), "task.created", False, "Acme", "content", False),
    (EventFilter(events=frozenset({"task.created"})), "task.delivered", False, "Acme", "content", False),
    (EventFilter(audience=Audience.CLIENT), "sla.breached", False, "Acme", "content", False),
])
def test_who_hears_what(flt: EventFilter, event: str, internal: bool, client: str, queue: str, wanted: bool) -> None:
    assert flt.wants(event, internal, client, queue) is wanted


def test_client_events_are_never_internal_by_kind() -> None:
    assert CLIENT_EVENTS <= set(EVENT_TYPES) and "task.routed" not in CLIENT_EVENTS


def sample_event(**task: object) -> dict:
    draft = events_of(AuditEntry("status", "ana@agency.test", "", "queued", "in_progress"), None)[0]
    return with_links(envelope("evt_" + "0" * 32, draft, AT, {**task_snapshot(FakeTask()), **task}),
                      "https://d.test")


def test_slack_message_escapes_and_stays_within_limits() -> None:
    message = slack_message(sample_event(subject="x" * 400))
    header, section, *rest = message["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) == 150
    assert {f["text"].split("\n")[0] for f in section["fields"]} >= {"*Status*", "*Priority*", "*Due*"}
    assert rest[-1]["elements"][0]["url"] == "https://d.test/staff/tasks/7"
    escaped = slack_message(sample_event(status="a<b>&c"))
    assert "A&lt;b&gt;&amp;c" in json.dumps(escaped) and escaped["text"].endswith("Blog &lt;post&gt; &amp; more")


def test_teams_card_has_title_facts_and_link() -> None:
    card = teams_message(sample_event())["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == FakeTask.subject
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Status"] == "Queued" and facts["Due"] == "2026-12-02 10:00 UTC" and facts["Priority"] == "P2"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open request", "url": "https://d.test/staff/tasks/7"}]
    assert "actions" not in teams_message(with_links(sample_event(), None))["attachments"][0]["content"]


def test_signature_verifies_and_refuses_tampering_and_replay() -> None:
    body = b'{"id":"evt_1"}'
    header = signature_header(b"secret", 1_767_225_600, body)
    assert header.startswith("t=1767225600,v1=")
    assert verify(b"secret", header, body, now=1_767_225_700)
    assert not verify(b"secret", header, body + b" ", now=1_767_225_700)
    assert not verify(b"other", header, body, now=1_767_225_700)
    assert not verify(b"secret", header, body, now=1_767_225_600 + 301), "too old: a replay"


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.SENT), (204, Outcome.SENT), (None, Outcome.RETRY), (429, Outcome.RETRY), (500, Outcome.RETRY),
    (503, Outcome.RETRY), (408, Outcome.RETRY), (410, Outcome.GONE), (400, Outcome.PARK), (404, Outcome.PARK),
    (301, Outcome.PARK), (403, Outcome.PARK),
])
def test_answers(status: int | None, outcome: Outcome) -> None:
    assert outcome_of(Answer(status)) is outcome


@pytest.mark.parametrize(("attempts", "retry_after", "jitter", "seconds"), [
    (1, None, 0.0, 10), (2, None, 0.0, 20), (3, None, 0.999999, 20.0000025), (20, None, 0.0, 3600),
    (1, 120.0, 0.0, 120), (5, 1.0, 0.0, 160), (1, 10 ** 9, 0.0, 6 * 3600),
])
def test_backoff_doubles_with_jitter_and_respects_retry_after(attempts: int, retry_after: float | None,
                                                               jitter: float, seconds: float) -> None:
    assert Backoff().delay(attempts, retry_after, jitter) == pytest.approx(seconds)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 5 ", 5.0), ("Wed, 02 Dec 2026 10:01:00 GMT", 60.0), ("soon", None), (None, None),
    ("Wed, 02 Dec 2026 09:00:00 GMT", 0.0),
])
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, AT) == seconds
