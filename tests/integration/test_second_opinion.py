"""The second opinion end to end against a real HTTP server on 127.0.0.1 that plays an
OpenAI-compatible chat endpoint (``chat_endpoint``): real intake into a real database, the job,
the audit log and the emails it queues. No Dovecot or SMTP: the job reads and writes only the
database and the endpoint, like the staff pages' tests (tests/unit/test_staff_actions.py)."""

from __future__ import annotations

import itertools
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
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
from dispatchd.cli.triage import status_text
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.staff_actions import act
from dispatchd.flows.training import model_status
from dispatchd.jobs import JOBS
from dispatchd.probes import probe_chat_endpoint
from dispatchd.store.tables import Outbox, RequestText, Task, TaskEvent
from tests.conftest import write_config
from tests.integration.chat_endpoint import (Call, ChatEndpoint, Reply, chat_endpoint,  # noqa: F401 - the fixture
                                              completion, verdict)

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
BANNER = "Hi Ben,\nCould we get a new banner for the spring sale? Three sizes, please.\n\nThanks,\nBob"
_uids = itertools.count(1)


def section(endpoint: ChatEndpoint, timeout: str = "5 seconds", max_per_run: int = 20) -> str:
    return f"""
[second_opinion]
url = "{endpoint.url}"
model = "test-model"
api_key_env = "TEST_CHAT_KEY"
timeout = "{timeout}"
max_per_run = {max_per_run}
"""


_built: list[IntakeDeps] = []


@pytest.fixture(autouse=True)
def _close_databases() -> Iterator[None]:
    """Each deployment's connections closed after its test (PostgreSQL's would outlive it)."""
    yield
    while _built:
        _built.pop().engine.dispose()


def deployment(tmp_path: Path, extra: str = "", database_url: str = "sqlite:///dispatchd.db") -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=extra,
                                      database_url=database_url))
    _built.append(build_deps(config, clock=FrozenClock(MONDAY_10)))
    return _built[-1]


@pytest.fixture
def deps(tmp_path: Path, chat_endpoint: ChatEndpoint, monkeypatch: pytest.MonkeyPatch) -> IntakeDeps:
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    return deployment(tmp_path, section(chat_endpoint))


def submit(deps: IntakeDeps, subject: str, body: str = BANNER, sender: str = "Bob Stone <bob@acme.test>") -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<opinion-{uid}@client.test>"
    message.set_content(body)
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    deps.clock.advance(minutes=1)  # type: ignore[attr-defined]  # oldest first is by arrival
    return outcome.task_id


def run(deps: IntakeDeps) -> Counter[str]:
    return JOBS["second-opinion"](deps)


def task(deps: IntakeDeps, task_id: int) -> Task:
    with Session(deps.engine) as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def events(deps: IntakeDeps, task_id: int, kind: str) -> list[TaskEvent]:
    with Session(deps.engine) as session:
        return list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.kind == kind)
                                 .order_by(col(TaskEvent.id))))


def outbox(deps: IntakeDeps) -> list[Outbox]:
    with Session(deps.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))))


def in_triage(deps: IntakeDeps, task_id: int) -> bool:
    found = task(deps, task_id)
    return (found.queue, found.status, found.type) == ("triage", "received", None)


def test_off_by_default_nothing_is_sent(tmp_path: Path, chat_endpoint: ChatEndpoint) -> None:
    deps = deployment(tmp_path)
    task_id = submit(deps, "Spring sale")
    assert deps.config.second_opinion is None and in_triage(deps, task_id)
    assert run(deps) == Counter()
    assert chat_endpoint.count() == 0 and in_triage(deps, task_id)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_sure_answer_routes_the_request_as_a_reviewer_would(
        tmp_path: Path, chat_endpoint: ChatEndpoint, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest, database: str) -> None:
    # PostgreSQL too: the correlated counts of the audit log, and the row lock before applying.
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else "sqlite:///dispatchd.db"
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    deps = deployment(tmp_path, section(chat_endpoint), url)
    chat_endpoint.answer = lambda n, call: verdict("design", 0.86, "a banner for a sale")
    task_id = submit(deps, "Spring sale")
    assert in_triage(deps, task_id), "no triage model yet: it waits for a person"
    before = len(outbox(deps))

    assert run(deps) == Counter(routed=1)

    [call] = chat_endpoint.calls
    assert call.path == "/v1/chat/completions" and call.headers["Authorization"] == "Bearer sk-test"
    assert (call.body["model"], call.body["temperature"], call.body["response_format"]) == (
        "test-model", 0, {"type": "json_object"})
    assert "- Design: Graphics, layouts, brand assets" in call.prompt
    asked = call.body["messages"][-1]["content"]
    assert "Subject: Spring sale" in asked and "new banner for the spring sale" in asked
    assert "Hi Ben" not in asked and "Thanks" not in asked, "the body's own words: no greeting, no sign-off"

    routed = task(deps, task_id)
    assert (routed.type, routed.queue, routed.status, routed.client) == ("Design", "design", "queued", "Acme")
    [rerouted] = events(deps, task_id, "rerouted")
    assert (rerouted.actor, rerouted.message_id, rerouted.from_status, rerouted.to_status) == (
        "second opinion test-model", "second-opinion", "received", "queued")
    assert rerouted.detail.startswith(
        'classified Design (0.86) by second opinion test-model — "a banner for a sale"\ntype Design: queue design')
    with Session(deps.engine) as session:
        text = session.get(RequestText, task_id)
        assert text is not None and (text.origin, text.corrected) == ("triage", False), "not a label to learn from"
    sent = outbox(deps)[before:]
    assert any(m.recipients == "bob@acme.test" and m.kind == "client-status" for m in sent), "the client is told"
    assert any(m.kind == "staff-status" and "second opinion test-model" in m.subject for m in sent), [
        (m.kind, m.recipients, m.subject) for m in sent]

    # Asked once: not again, not after a restart.
    assert run(deps) == Counter()
    assert run(deployment(tmp_path, section(chat_endpoint), url)) == Counter()
    assert chat_endpoint.count() == 1


@pytest.mark.parametrize(("reply", "note"), [
    (verdict("none", 0.95, "an invoice question"), 'none (0.95), no request of one type: "an invoice question"'),
    (verdict("Technical", 0.6), "Technical (0.60) is below the threshold 0.80"),
    (verdict("Urgent", 0.99), "Urgent would be an emergency (P0, queue triage): a person routes it"),
])
def test_other_answers_leave_it_in_triage_with_the_answer_noted(
        deps: IntakeDeps, chat_endpoint: ChatEndpoint, reply: Reply, note: str) -> None:
    chat_endpoint.answer = lambda n, call: reply
    task_id = submit(deps, "Quick question")
    assert run(deps) == Counter(held=1)
    assert in_triage(deps, task_id) and task(deps, task_id).priority != "P0"
    [noted] = events(deps, task_id, "second_opinion")
    assert noted.actor == "second opinion test-model" and note in noted.detail
    assert run(deps) == Counter() and chat_endpoint.count() == 1, "an answer is final"


def test_never_asked_about_claims_staff_typed_or_emergency_mail(deps: IntakeDeps,
                                                                chat_endpoint: ChatEndpoint) -> None:
    chat_endpoint.answer = lambda n, call: verdict("Design", 0.99)
    claim = submit(deps, "[Acme] - [layout] - Spring banner", sender="eve@gmail.test")  # not on Acme's list
    other = submit(deps, "[Globex] - [layout] - Spring banner")  # Bob files for Acme, not Globex
    staff = submit(deps, "Spring banner", sender="morgan@agency.test")
    typed = submit(deps, "[Acme] - Content - Blog post")
    outage = submit(deps, "Help", body="Our website is down, customers see an error page!")
    assert task(deps, claim).claimed_client == "Acme" and task(deps, outage).priority == "P0"
    assert task(deps, typed).queue == "content"
    assert run(deps) == Counter() and chat_endpoint.count() == 0
    assert all(task(deps, t).type is None for t in (claim, other, staff, outage))


def test_at_most_max_per_run_oldest_first(tmp_path: Path, chat_endpoint: ChatEndpoint,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    deps = deployment(tmp_path, section(chat_endpoint, max_per_run=2))
    ids = [submit(deps, f"Request {n}") for n in range(3)]
    assert run(deps) == Counter(held=2)
    assert [len(events(deps, t, "second_opinion")) for t in ids] == [1, 1, 0]
    assert run(deps) == Counter(held=1) and chat_endpoint.count() == 3


@pytest.mark.parametrize(("reply", "error"), [
    (Reply(delay=5), "ChatTimeout: no whole reply within 0.3 s"),
    (Reply(500, '{"error": "model crashed"}'), 'ChatRefused: HTTP 500: {"error": "model crashed"}'),
    (Reply(200, "<html>gateway</html>"), "ChatReplyMalformed: not JSON"),
    (completion("Sure! That is a Design request."), "unusable answer (not JSON)"),
])
def test_a_failed_call_leaves_the_task_in_triage_and_is_tried_three_times(
        tmp_path: Path, chat_endpoint: ChatEndpoint, monkeypatch: pytest.MonkeyPatch,
        reply: Reply, error: str) -> None:
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    deps = deployment(tmp_path, section(chat_endpoint, timeout="0.3 seconds"))
    chat_endpoint.answer = lambda n, call: reply
    task_id = submit(deps, "Spring sale")
    assert [run(deps), run(deps)] == [Counter(failed=1), Counter(failed=1)]
    assert run(deps) == Counter(given_up=1)
    assert in_triage(deps, task_id)
    notes = [e.detail for e in events(deps, task_id, "second_opinion_failed")]
    assert len(notes) == 3 and all(error in n for n in notes), notes
    assert notes[-1].endswith("call 3 of 3; not asked again")
    deps.clock.advance(minutes=10)  # type: ignore[attr-defined]  # past the breaker's pause
    assert run(deps) == Counter() and chat_endpoint.count() == 3


def test_three_failures_in_a_row_pause_the_calls_for_five_minutes(deps: IntakeDeps,
                                                                  chat_endpoint: ChatEndpoint) -> None:
    chat_endpoint.answer = lambda n, call: Reply(503, "overloaded")
    ids = [submit(deps, f"Request {n}") for n in range(5)]
    clock: FrozenClock = deps.clock  # type: ignore[assignment]
    with structlog.testing.capture_logs() as logs:
        assert run(deps) == Counter(failed=3, paused=1) and chat_endpoint.count() == 3
        assert run(deps) == Counter(paused=1) and chat_endpoint.count() == 3, "open: no call at all"
        clock.advance(minutes=5)
        assert run(deps) == Counter(failed=1, paused=1) and chat_endpoint.count() == 4, "one trial call"
        clock.advance(minutes=5)
        chat_endpoint.answer = lambda n, call: verdict("none", 0.9)
        assert run(deps) == Counter(held=5) and chat_endpoint.count() == 9
    names = [entry["event"] for entry in logs]
    assert names.count("second_opinion.paused") == 1 and names.count("second_opinion.resumed") == 1, names
    assert all(in_triage(deps, t) for t in ids)


def test_a_person_who_routes_it_meanwhile_wins(deps: IntakeDeps, chat_endpoint: ChatEndpoint) -> None:
    task_id = submit(deps, "Spring sale")

    def reviewer_first(n: int, call: Call) -> Reply:
        # While the endpoint thinks, a reviewer routes the task. This would wait forever if the
        # job held the database (or its write turn) during the call.
        assert act(deps, "morgan@agency.test", task_id, "type", "Content").ok
        return verdict("Design", 0.95)
    chat_endpoint.answer = reviewer_first
    assert run(deps) == Counter(overtaken=1)
    assert (task(deps, task_id).type, task(deps, task_id).queue) == ("Content", "content")
    [noted] = events(deps, task_id, "second_opinion")
    assert noted.detail.endswith("not used: the task was routed meanwhile")
    assert [e.actor for e in events(deps, task_id, "rerouted")] == ["morgan@agency.test"]


def test_a_run_ends_within_its_minute_and_the_rest_wait_for_the_next(
        tmp_path: Path, chat_endpoint: ChatEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    monkeypatch.setattr("dispatchd.flows.second_opinion.RUN_SECONDS", 0.25)  # the minute, shortened
    deps = deployment(tmp_path, section(chat_endpoint, timeout="0.3 seconds"))
    slow = verdict("none", 0.9)
    chat_endpoint.answer = lambda n, call: Reply(slow.status, slow.body, delay=0.1)
    for n in range(3):
        submit(deps, f"Request {n}")
    # One call always; another could end after the run's time (0.1 s gone + a 0.3 s timeout).
    assert run(deps) == Counter(held=1, left_for_next_run=2)
    assert run(deps) == Counter(held=1, left_for_next_run=1) and chat_endpoint.count() == 2


def test_connection_refused_is_a_failed_call_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    deps = deployment(tmp_path, section(ChatEndpoint(port=port)))
    task_id = submit(deps, "Spring sale")
    assert run(deps) == Counter(failed=1) and in_triage(deps, task_id)
    [noted] = events(deps, task_id, "second_opinion_failed")
    assert "ChatUnreachable" in noted.detail and "call 1 of 3" in noted.detail


def test_check_connect_asks_the_endpoint_one_question_without_client_mail(
        tmp_path: Path, chat_endpoint: ChatEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CHAT_KEY", "sk-test")
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=section(chat_endpoint)))
    chat_endpoint.answer = lambda n, call: verdict("none", 1.0)
    (probe,) = probe_chat_endpoint(config)
    assert probe.ok and "answered with a verdict" in probe.detail
    assert chat_endpoint.calls[0].prompt.endswith("This is a connection test.")
    chat_endpoint.answer = lambda n, call: completion("Sure! Here is my answer: Design")
    (probe,) = probe_chat_endpoint(config)
    assert not probe.ok and "not with the JSON object asked for (not JSON)" in probe.detail
    chat_endpoint.answer = lambda n, call: Reply(401, '{"error": "bad key"}')
    (probe,) = probe_chat_endpoint(config)
    assert not probe.ok and probe.detail.startswith("ChatRefused") and "api_key_env" in probe.detail


def test_triage_status_counts_what_it_did_and_what_people_re_routed(deps: IntakeDeps,
                                                                     chat_endpoint: ChatEndpoint) -> None:
    chat_endpoint.answer = lambda n, call: (verdict("Design", 0.9), verdict("none", 0.9), Reply(500, "{}"))[n % 3]
    routed, held, failing = submit(deps, "Spring sale"), submit(deps, "Invoice"), submit(deps, "Quick one")
    assert run(deps) == Counter(routed=1, held=1, failed=1)
    assert act(deps, "morgan@agency.test", routed, "type", "Content").ok  # the reviewer disagrees
    report = model_status(deps.engine, deps.rulebook)["second_opinion"]
    assert report == {"routed": 1, "held": 1, "failed_calls": 1,
                      "corrected": [{"task": routed, "type_now": "Content", "queue_now": "content"}]}
    assert in_triage(deps, held) and in_triage(deps, failing)
    text = status_text(model_status(deps.engine, deps.rulebook))
    assert ("second opinion (chat endpoint): routed 1, answered but left in triage 1, failed calls 1; "
            "re-routed by a person since: 1") in text
    assert f"task #{routed}: a person made it Content (queue content)" in text
