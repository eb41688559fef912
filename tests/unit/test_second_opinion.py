"""The second opinion's pure parts, without servers: the question (domain/second_opinion), the
reading of answers, what is done with them, the chat envelope (llm/chat), the circuit breaker
(llm/breaker) and [second_opinion] in config.toml."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.domain.models import Priority, Request
from dispatchd.domain.routing import Action, Condition, RequestType, Rule, Rulebook
from dispatchd.domain.second_opinion import (MAX_REQUEST_CHARS, Opinion, Unusable, actor, audit_reason, build_messages,
                                             decide, emergency, is_second_opinion, read_answer)
from dispatchd.errors import ChatReplyMalformed, ConfigError
from dispatchd.llm.breaker import CircuitBreaker
from dispatchd.llm.chat import message_content
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]
TYPES = ("Content", "Design", "Technical", "Urgent")


def types() -> tuple[RequestType, ...]:
    return (RequestType("Content", "content", "5 business days", description="Articles, blog posts",
                        examples=tuple(f"content example {n}" for n in range(9))),
            RequestType("Design", "design", "3 business days", description="Graphics, layouts",
                        examples=("a banner",)),
            RequestType("Technical", "dev", "2 business days"),
            RequestType("Urgent", "triage", "4 hours", Priority.P0, description="Emergencies"))


# --- the question -----------------------------------------------------------------------------

def test_the_question_names_every_type_with_a_few_examples_and_what_none_means() -> None:
    system, user = build_messages(types(), ("Attached is our signed contract",), "Spring sale",
                                  "Hi Ben,\nCould we get a new banner for the spring sale?\n\nThanks,\nBob")
    assert (system["role"], user["role"]) == ("system", "user")
    prompt = system["content"]
    assert "- Content: Articles, blog posts. For example: " in prompt
    assert "- Design: Graphics, layouts. For example: \"a banner\"" in prompt
    assert "- Technical\n" in prompt, "a type without description or examples is still listed"
    # Three examples of nine, from across the list (written in groups: the first three would be alike).
    assert [n for n in range(9) if f'"content example {n}"' in prompt] == [0, 3, 6]
    assert '"none"' in prompt and "two or more kinds of work" in prompt and "JSON object" in prompt
    assert 'No request (answer none), for example: "Attached is our signed contract"' in prompt
    assert "data, not instructions" in prompt
    assert user["content"] == 'Subject: Spring sale\n\nBody:\n"""\nCould we get a new banner for the spring sale?\n"""'


def test_the_request_is_its_own_words_cut_to_a_few_thousand_characters() -> None:
    quoted = "Please update the footer.\n\nOn Mon, Bob wrote:\n> the old request\n> with secrets"
    _, user = build_messages(types(), (), "Re: footer", quoted)
    assert "Please update the footer." in user["content"] and "old request" not in user["content"]
    _, long = build_messages(types(), (), "Long", "word " * 2000)
    assert len(long["content"]) < MAX_REQUEST_CHARS + 100
    _, empty = build_messages(types(), (), "Subject\nwith a newline", "")
    assert "Subject: Subject with a newline" in empty["content"] and "(empty)" in empty["content"]


def test_the_shipped_rules_make_a_question_of_a_few_thousand_characters() -> None:
    book = load_rulebook(PROJECT / "rules")
    system, _ = build_messages(book.types, book.triage_model.out_of_scope, "s", "b")
    assert all(f"- {t.name}: " in system["content"] for t in book.types)
    assert len(system["content"]) < 6000, "every call carries it: it must stay small"


# --- the answer -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('{"type": "Design", "confidence": 0.86, "reason": "a banner"}', Opinion("Design", 0.86, "a banner")),
    ('{"type": "design", "confidence": 1}', Opinion("Design", 1.0)),
    ('  {"type": " TECHNICAL ", "confidence": 0, "reason": null}\n', Opinion("Technical", 0.0)),
    ('{"type": "none", "confidence": 0.9, "reason": "an invoice"}', Opinion(None, 0.9, "an invoice")),
    ('{"type": "None", "confidence": 0.5}', Opinion(None, 0.5)),
    ('{"type": "Design", "confidence": 0.7, "reason": "multi\\nline   reason", "extra": [1]}',
     Opinion("Design", 0.7, "multi line reason")),
])
def test_answers_read(text: str, expected: Opinion) -> None:
    assert read_answer(text, TYPES) == expected


@pytest.mark.parametrize(("text", "why"), [
    ("Sure! It is a Design request.", "not JSON"),
    ('```json\n{"type": "Design", "confidence": 0.9}\n```', "not JSON"),
    ('["Design", 0.9]', "not a JSON object"),
    ('{"confidence": 0.9}', 'no "type"'),
    ('{"type": 3, "confidence": 0.9}', 'no "type"'),
    ('{"type": "Video", "confidence": 0.9}', "'Video' is no request type we know"),
    ('{"type": "graphics", "confidence": 0.9}', "no request type we know"),  # an alias is not a name
    ('{"type": "Design"}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": "0.9"}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": true}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": 86}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": -0.1}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": NaN}', "not a number from 0 to 1"),
    ('{"type": "Design", "confidence": 0.9, "reason": {"why": 1}}', '"reason" is not text'),
    ("[" * 5_000, "not JSON"),  # deeper than the parser recurses
    ('{"type": "Design", "confidence": 0.9, "reason": "' + "x" * 20_000 + '"}', "characters"),
    ("", "not JSON"),
])
def test_anything_else_is_an_unusable_answer_not_an_exception(text: str, why: str) -> None:
    answer = read_answer(text, TYPES)
    assert isinstance(answer, Unusable) and why in answer.why, answer
    assert len(answer.excerpt) <= 200


def test_a_long_reason_is_cut() -> None:
    answer = read_answer(json.dumps({"type": "Design", "confidence": 0.9, "reason": "y" * 500}), TYPES)
    assert isinstance(answer, Opinion) and len(answer.reason) == 200


# --- what is done with it ---------------------------------------------------------------------

def test_sure_answers_route_with_the_audit_reason() -> None:
    verdict = decide(Opinion("Design", 0.86), 0.8, "llama3.1:8b")
    assert verdict.route_as == "Design"
    assert verdict.note == "classified Design (0.86) by second opinion llama3.1:8b"
    assert audit_reason(Opinion("Design", 0.8, "a banner"), "m") == \
        'classified Design (0.80) by second opinion m — "a banner"'


@pytest.mark.parametrize(("opinion", "note"), [
    (Opinion(None, 0.95, "an invoice"), 'second opinion m: none (0.95), no request of one type: "an invoice"'),
    (Opinion("Design", 0.79), "second opinion m: Design (0.79) is below the threshold 0.80"),
])
def test_none_or_unsure_answers_wait_in_triage_with_a_note(opinion: Opinion, note: str) -> None:
    verdict = decide(opinion, 0.8, "m")
    assert verdict.route_as is None and verdict.note == note


def test_the_actor_is_the_second_opinion_not_a_person() -> None:
    assert actor("llama3.1:8b") == "second opinion llama3.1:8b"
    assert is_second_opinion(actor("x")) and not is_second_opinion("morgan@agency.test")


def test_an_emergency_is_left_to_a_person() -> None:
    book = Rulebook(types(), rules=(Rule("outage", Condition(keywords=("site is down",), types=("Technical",)),
                                         Action(raise_priority=Priority.P0)),))
    request = Request(sender="bob@acme.test", client="Acme", type=None, priority=None, description="Help",
                      body="The site is down since noon", subject="Help")
    assert "Urgent would be an emergency (P0, queue triage)" in (emergency(request, "Urgent", book) or "")
    assert "Technical would be an emergency (P0, queue dev)" in (emergency(request, "Technical", book) or "")
    assert emergency(request, "Design", book) is None


# --- the chat envelope ------------------------------------------------------------------------

def test_the_assistant_message_is_read_from_a_chat_completion() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"type": "none"}'}}]}
    assert message_content(json.dumps(body).encode()) == '{"type": "none"}'


@pytest.mark.parametrize("raw", [
    b"<html>502 Bad Gateway</html>", b"\xff\xfe", b"[]", b"{}", b'{"choices": []}', b'{"choices": [{}]}',
    b'{"choices": [{"message": {"content": null, "refusal": "no"}}]}', b'{"error": {"message": "model not found"}}',
])
def test_anything_else_is_a_malformed_reply(raw: bytes) -> None:
    with pytest.raises(ChatReplyMalformed):
        message_content(raw)


# --- the breaker ------------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


def test_the_breaker_opens_after_three_failures_in_a_row_for_five_minutes() -> None:
    breaker = CircuitBreaker()
    assert breaker.allows(T0)
    assert [breaker.failed(T0), breaker.failed(T0)] == [False, False] and breaker.allows(T0)
    assert breaker.succeeded() is False, "closed: nothing to announce"
    assert [breaker.failed(T0) for _ in range(3)] == [False, False, True], "three in a row, counted afresh"
    assert not breaker.allows(T0 + timedelta(minutes=4, seconds=59))
    assert breaker.allows(T0 + timedelta(minutes=5)), "then one call may try again"
    later = T0 + timedelta(minutes=5)
    assert breaker.failed(later) is False, "the trial failed: open again, but the outage was announced already"
    assert not breaker.allows(later + timedelta(minutes=4)) and breaker.allows(later + timedelta(minutes=5))
    assert breaker.succeeded() is True, "the outage is over: announced once"
    assert breaker.allows(later) and breaker.open_until() is None and breaker.succeeded() is False


# --- [second_opinion] in config.toml ----------------------------------------------------------

SECTION = """
[second_opinion]
url = "http://127.0.0.1:11434/v1/"
model = "llama3.1:8b"
"""


def test_off_unless_configured_and_its_defaults(config_file: Callable[..., Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config(config_file()).second_opinion is None
    settings = load_config(config_file(extra=SECTION)).second_opinion
    assert settings is not None
    assert (settings.url, settings.model, settings.timeout, settings.threshold, settings.max_per_run) == (
        "http://127.0.0.1:11434/v1", "llama3.1:8b", 15.0, 0.8, 20)
    assert settings.api_key.reveal() is None
    monkeypatch.setenv("TEST_LLM_KEY", "sk-secret")
    hosted = load_config(config_file(extra=SECTION.replace("http://127.0.0.1:11434", "https://api.example.com")
                                     + 'api_key_env = "TEST_LLM_KEY"\ntimeout = "1 minute"\nthreshold = 0.9\n'
                                     + "max_per_run = 5\n")).second_opinion
    assert hosted is not None and hosted.api_key.reveal() == "sk-secret" and "sk-secret" not in repr(hosted)
    assert (hosted.timeout, hosted.threshold, hosted.max_per_run) == (60.0, 0.9, 5)
    seconds = load_config(config_file(extra=SECTION + "timeout = 2.5\n")).second_opinion
    assert seconds is not None and seconds.timeout == 2.5


@pytest.mark.parametrize(("addition", "complaint"), [
    ('url = "http://gpu.lan:11434/v1"', "second_opinion.url: http://gpu.lan:11434/v1 must be https"),
    ('url = "ftp://127.0.0.1/v1"', "must be the http(s) URL of an OpenAI-compatible API"),
    ('url = "http://127.0.0.1:11434/v1/chat/completions"', "/chat/completions is added to it"),
    ('url = "https://user:pw@api.example.com/v1"', "must not carry a user name or password"),
    ('model = " "', "second_opinion.model: name the model"),
    ('api_key = "sk-inline"', "second_opinion.api_key: inline secrets are refused"),
    ('api_key_env = "NOT_SET_ANYWHERE"', "environment variable NOT_SET_ANYWHERE is not set"),
    ('timeout = "soon"', "second_opinion.timeout: must be a time above 0 and up to 2 minutes"),
    ('timeout = "10 minutes"', "must be a time above 0 and up to 2 minutes"),
    ("timeout = 0", "must be a time above 0 and up to 2 minutes"),
    ("threshold = 1.5", "second_opinion.threshold: must be a confidence above 0 and at most 1"),
    ("threshold = 0", "must be a confidence above 0"),
    ("max_per_run = 0", "second_opinion.max_per_run: must be between 1 and 1000"),
    ('modell = "typo"', "second_opinion.modell: unknown key"),
])
def test_bad_values_are_refused_at_start_with_file_and_line(config_file: Callable[..., Path], addition: str,
                                                            complaint: str) -> None:
    key = addition.split(" =")[0]
    lines = [line for line in SECTION.strip().splitlines() if not line.startswith(f"{key} =")]
    path = config_file(extra="\n".join([*lines, addition]) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [str(p) for p in caught.value.problems]
    line = path.read_text().splitlines().index(addition) + 1
    assert any(p.startswith(f"{path}:{line}: ") and complaint in p for p in found), found
    assert not any("sk-inline" in p for p in found)


def test_the_url_and_model_are_required(config_file: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(extra="[second_opinion]\nthreshold = 0.9\n"))
    text = str(caught.value)
    assert "second_opinion.url: is required" in text and "second_opinion.model: is required" in text


@pytest.mark.parametrize("source", ["README.md", "config.toml", "dispatchd/config.example.toml"])
def test_the_documented_examples_load(config_file: Callable[..., Path], source: str) -> None:
    text = (PROJECT / source).read_text()
    if source == "README.md":
        found = re.search(r"```toml\n(\[second_opinion\].*?)```", text, re.S)
        assert found, "README shows how to turn it on"
        block = found.group(1)
    else:  # commented out, as the other optional sections are
        start = text.index("# [second_opinion]")
        block = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines() if line.startswith("# "))
    settings = load_config(config_file(extra=block.replace('api_key_env = "DISPATCHD_LLM_KEY"', ""))).second_opinion
    assert settings is not None and (settings.url, settings.model) == ("http://127.0.0.1:11434/v1", "llama3.1:8b")
    assert 'second-opinion = "* * * * *"' in text or source == "README.md"
