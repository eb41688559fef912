"""Talking with people, end to end through Dovecot and the SMTP sink: one email per person per
change, subjects that say what happened, and one wording of the due time everywhere."""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.conftest import Deployment, make_mail
from tests.integration.test_replies import body, last_to, reply, send, task

pytestmark = pytest.mark.integration


def mails_since(d: Deployment, start: int) -> list:  # type: ignore[type-arg]
    return d.received()[start:]


def test_several_commands_tell_each_person_once(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Widget - Fix the checkout page"))  # no such type: triage, Morgan routes it
    assert task(d).status == "received"
    before = len(d.received())
    send(d, reply(last_to(d, "morgan@agency.test"), "morgan@agency.test", "type Content\nassign Ana"))
    assert (task(d).queue, task(d).assignee, task(d).status) == ("content", "ana@agency.test", "queued")
    new = mails_since(d, before)
    to = [m["To"] for m in new]
    assert to.count("ana@agency.test") == 1, "one notice to Ana, not one per command"
    assert to.count("ben@agency.test") == 1 and to.count("bob@acme.test") == 1
    for_ana = next(m for m in new if m["To"] == "ana@agency.test")
    assert for_ana["Subject"].startswith("[#1] Queued, type Content, assigned to Ana (morgan@agency.test):")
    assert "It is yours now." in body(for_ana)
    result = next(m for m in new if m["To"] == "morgan@agency.test")
    assert result["Subject"] == "[#1] Routed to content, assigned to Ana: Fix the checkout page"

    before = len(d.received())
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ben\npriority P1"))
    new = mails_since(d, before)
    assert [m["To"] for m in new] == ["ben@agency.test"], "Ben assigned himself: only his results reply"
    assert new[0]["Subject"].startswith("[#1] Assigned to Ben, priority P1:")
    before = len(d.received())
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart"))
    new = mails_since(d, before)
    assert sorted(m["To"] for m in new) == ["ana@agency.test", "ben@agency.test", "bob@acme.test"]
    for_ana = next(m for m in new if m["To"] == "ana@agency.test")
    text = body(for_ana)
    assert "moved from queued to in progress" in text and "Also: assigned to Ana." in text
    assert not re.search(r"from (\w+) to \1\b", text), text


def test_no_mail_and_no_applied_log_for_a_batch_that_was_rolled_back(
        deployment: Deployment, capfd: pytest.CaptureFixture[str]) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post on topic clusters"))
    before = len(d.received())
    capfd.readouterr()
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart\nassign Nobody"))
    logged = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    events = [(e["event"], e.get("command")) for e in logged if e["event"].startswith("command.")]
    assert events == [("command.rolled_back", "assign"), ("command.rolled_back", "start"),
                      ("command.refused", "assign")]
    new = mails_since(d, before)
    assert [m["To"] for m in new] == ["ben@agency.test"]
    assert new[0]["Subject"].startswith("[#1] Not applied:")
    assert task(d).assignee is None and task(d).status == "queued"


@pytest.mark.parametrize("sender, text, subject", [
    ("bob@acme.test", "status", "[#1] Status of your request: Blog post"),
    ("ben@agency.test", "assign Ana", "[#1] Assigned to Ana: Blog post"),
    ("ben@agency.test", "cancel: the client withdrew it", "[#1] Cancelled: Blog post"),
])
def test_result_subjects_say_what_happened(deployment: Deployment, sender: str, text: str, subject: str) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    send(d, reply(last_to(d, sender), sender, text))
    assert last_to(d, sender)["Subject"] == subject


def test_client_revision_result_says_revision_requested(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ben\nstart\nreview\napprove\ndeliver"))
    delivered = last_to(d, "bob@acme.test")
    assert delivered["Subject"] == "[#1] Delivered: Blog post"
    send(d, reply(delivered, "bob@acme.test", "revise: shorter intro please"))
    assert last_to(d, "bob@acme.test")["Subject"] == "[#1] Revision requested: Blog post"


def test_due_time_is_said_one_way_in_confirmation_digest_and_cli(
        deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    confirmation = body(last_to(d, "bob@acme.test"))
    expected = re.search(r"Expected:\s+(by .+)", confirmation)
    assert expected, confirmation
    words = expected.group(1).strip()
    assert "clock starts" not in confirmation and "business days" not in confirmation, "no internal workings"
    assert d.cli("job", "digest") == 0
    digest = body(last_to(d, "bob@acme.test"))
    assert digest.startswith("Hello Bob,"), "the contact is greeted by name"
    assert f"#1 Blog post -- expected {words}" in digest
    capsys.readouterr()
    assert d.cli("tasks") == 0
    assert words in capsys.readouterr().out
    assert d.cli("show", "1") == 0
    assert f"due: {words}" in capsys.readouterr().out
    d.cli("tasks", "--json")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00\+00:00", json.loads(capsys.readouterr().out)[0]["due_at"])


def test_digest_says_triage_is_being_reviewed(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Widget - Something new", sender="Carol Ng <carol@acme.test>"))
    send(d, make_mail("[Acme] - Content - Blog post", sender="Carol Ng <carol@acme.test>"))
    assert d.cli("job", "digest") == 0
    digest = body(last_to(d, "carol@acme.test"))
    assert digest.startswith("Hello Carol,")
    coming = digest.split("Coming next:")[1].split("We are reviewing")[0]
    assert "#2 Blog post -- expected by" in coming and "#1" not in coming
    reviewing = digest.split("We are reviewing these and will confirm a date:")[1]
    assert "#1 Something new" in reviewing and "expected" not in reviewing.split("Reply to")[0]


def test_a_colleague_cc_d_on_a_request_follows_it_and_an_outsider_does_not(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post", headers={"Cc": "Carol Ng <carol@acme.test>, pr@outside.test"}))
    confirmation = body(last_to(d, "bob@acme.test"))
    assert "Also told: carol@acme.test" in confirmation and "outside.test" not in confirmation
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart"))
    started = last_to(d, "carol@acme.test")
    assert started["Subject"] == "[#1] In progress: Blog post"
    assert d.received_by("pr@outside.test") == [], "an outsider in Cc hears nothing, ever"

    send(d, reply(started, "carol@acme.test", "status"))
    assert last_to(d, "carol@acme.test")["Subject"] == "[#1] Status of your request: Blog post"
    send(d, reply(started, "Carol Ng <carol@acme.test>", "Could you also cover pillar pages?"))
    forwarded = last_to(d, "ana@agency.test")
    assert "carol@acme.test" in forwarded["Subject"] and "pillar pages" in body(forwarded)
    assert "unverified" not in body(forwarded).lower()


def test_the_client_adds_and_removes_followers_only_of_its_own(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    confirmation = last_to(d, "bob@acme.test")
    send(d, reply(confirmation, "bob@acme.test", "add follower Dan <dan@acme.test>"))
    welcome = last_to(d, "dan@acme.test")
    assert welcome["Subject"] == "[#1] You are following: Blog post"
    assert "bob@acme.test asked us to keep you informed" in body(welcome)
    assert last_to(d, "bob@acme.test")["Subject"] == "[#1] Follower added: dan@acme.test: Blog post"

    before = len(d.received())
    send(d, reply(confirmation, "bob@acme.test", "add follower eve@evil.test"))
    refused = mails_since(d, before)
    assert [m["To"] for m in refused] == ["bob@acme.test"] and d.received_by("eve@evil.test") == []
    assert "eve@evil.test is not one of Acme's addresses" in body(refused[0])
    send(d, reply(confirmation, "bob@acme.test", "add follower carol@globex.test"))
    assert d.received_by("carol@globex.test") == [], "another client's people never follow"

    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart"))
    assert last_to(d, "dan@acme.test")["Subject"] == "[#1] In progress: Blog post"
    send(d, reply(welcome, "dan@acme.test", "remove follower"))
    heard = len(d.received_by("dan@acme.test"))
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "review"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "approve\ndeliver"))
    assert last_to(d, "bob@acme.test")["Subject"] == "[#1] Delivered: Blog post"
    assert len(d.received_by("dan@acme.test")) == heard, "Dan stopped following"
