"""The triage evaluation's data stays what bench/triage_accuracy.py assumes: labelled free-form
mail from the evaluation's clients, and a deterministic history whose subjects the rules type."""

from __future__ import annotations

import json
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench.triage_accuracy import Item, Result, shares
from bench.triage_eval.clients import CLIENTS_TOML
from bench.triage_eval.history import generate, overlap
from dispatchd.config import Client
from dispatchd.domain.intake import Directory, read_request
from dispatchd.mail.parse import parse_mail
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]
RULES = load_rulebook(PROJECT / "rules")
ITEMS = [json.loads(line) for line in (PROJECT / "bench/triage_eval/freeform.jsonl").read_text().splitlines()]
CLIENT_DOMAINS = {"acme.com", "globex.example", "tyler-outdoor.co.uk", "brauerei-kessler.de", "maisonlune.fr"}


def test_freeform_items_are_labelled_with_a_type_or_triage() -> None:
    types = {t.name for t in RULES.types} - {"Urgent"}
    assert len(ITEMS) >= 240 and len({i["id"] for i in ITEMS}) == len(ITEMS)
    labels = Counter(i["label"] for i in ITEMS)
    assert set(labels) == types | {"triage"}, labels
    assert 0.15 <= labels["triage"] / len(ITEMS) <= 0.21
    assert all(i.get("notes") for i in ITEMS if i["label"] == "triage"), "say why a dispatcher would hesitate"
    langs = Counter(i["lang"] for i in ITEMS)
    assert langs["de"] / len(ITEMS) >= 0.3 and {"en", "fr", "es"} <= set(langs)


def test_freeform_mail_from_strangers_is_labelled_triage_and_explained() -> None:
    for item in ITEMS:
        address = item["from"].rsplit("<", 1)[1].rstrip(">")
        if address != "bob@gmail.com" and address.split("@")[1] not in CLIENT_DOMAINS:
            assert item["label"] == "triage" and item.get("notes"), item["id"]


def test_every_eval_client_domain_is_in_the_eval_config() -> None:
    for domain in CLIENT_DOMAINS:
        assert domain in CLIENTS_TOML


def test_history_is_deterministic_and_seeded() -> None:
    assert generate(50, seed=1) == generate(50, seed=1)
    assert generate(50, seed=1) != generate(50, seed=2)
    assert len({r.body for r in generate(400) if r.body}) == len([r for r in generate(400) if r.body])


def test_history_has_client_habits() -> None:
    acme = Counter(r.type for r in generate(400) if r.client == "Acme")
    assert acme.most_common(1)[0][0] == "Content"


@pytest.mark.parametrize("request_", generate(400)[:200], ids=lambda r: r.subject[:40])
def test_history_subjects_are_typed_by_the_rules(request_) -> None:  # type: ignore[no-untyped-def]
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = request_.sender, request_.subject, "<h@eval.test>"
    message.set_content(request_.body or "")
    people = Directory(clients=(Client(request_.client, (request_.sender.split("<")[1].rstrip(">"),)),), staff=())
    read = read_request(parse_mail(message.as_bytes()), people, RULES)
    assert (read.client, read.type, read.problems) == (request_.client, request_.type, ())


def test_history_shares_no_sentences_with_the_freeform_set() -> None:
    shared = overlap(generate(400))
    # Only the signatures of the two people who write in both (Emma Tyler, Hugo Martin) may repeat.
    assert all(("emma" in gram or "hugo" in gram) for gram in shared), shared


@pytest.mark.parametrize("label, type_, queue, right, wrong, held", [
    ("Design", "Design", "design", True, False, False),
    ("Design", "Content", "content", False, True, False),
    ("Design", None, "triage", False, False, True),  # held although typed: a miss, not an error
    ("Design", None, None, False, False, True),  # no task at all
    ("triage", None, "triage", True, False, True),
    ("triage", None, None, True, False, True),  # dropped as automated: nobody routed it
    ("triage", "Urgent", "triage", True, False, True),  # the Urgent type waits for a person too
    ("triage", "Strategy", "strategy", False, True, False),
])
def test_scoring(label: str, type_: str | None, queue: str | None, right: bool, wrong: bool, held: bool) -> None:
    item = Item("ff-1", "en", label, "a@acme.com", "s", "b", None, {})
    result = Result(item, "task", 1, type_, queue, frozenset({"triage"}))
    assert (result.right, result.wrong, result.held) == (right, wrong, held)


def test_shares_add_up() -> None:
    item = Item("ff-1", "en", "Design", "a@acme.com", "s", "b", None, {})
    results = [Result(item, "task", 1, t, q, frozenset({"triage"}))
               for t, q in (("Design", "design"), ("Content", "content"), (None, "triage"), ("Design", "design"))]
    assert shares(results) == {"count": 4, "right": 0.5, "routed_wrong": 0.25, "to_triage": 0.25}
