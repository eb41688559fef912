"""Talking with people, end to end through Dovecot and the SMTP sink: one email per person per
change, subjects that say what happened, and one wording of the due time everywhere."""

from __future__ import annotations

import email.message
import json
import re

import pytest

from tests.integration.conftest import Deployment, make_mail
from tests.integration.test_replies import body, last_to, reply, send, task

pytestmark = pytest.mark.integration


def mails_since(d: Deployment, start: int) -> list:  # type: ignore[type-arg]
    return d.received()[start:]


def reply_with_files(to_message: email.message.EmailMessage, sender: str, text: str,
                     attachments: tuple[tuple[str, bytes], ...]) -> bytes:
    thread = {"In-Reply-To": to_message["Message-ID"], "References": to_message["Message-ID"]}
    return make_mail(f"Re: {to_message['Subject']}", sender=sender, body=text, to=to_message["Reply-To"],
                     headers=thread, attachments=attachments)


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


def test_staff_reply_reaches_the_client_signed_with_a_first_name(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post", headers={"Cc": "carol@acme.test"}))
    notice = last_to(d, "ben@agency.test")
    before = len(d.received())
    send(d, reply(notice, "Ben Okafor <ben@agency.test>",
                  "reply: Hi Bob,\nquick question: should the post name your product line?\n\nThe draft goes out Friday.\n"
                  "\nOn Tue, 1 Dec 2026, Test Agency <requests@agency.test> wrote:\n> [#1] New P2"))
    new = mails_since(d, before)
    to_bob = next(m for m in new if m["To"] == "bob@acme.test")
    assert to_bob["Subject"] == "[#1] Ben from Test Agency: Blog post"
    text = body(to_bob)
    assert text.startswith("Hi Bob,\r\nquick question: should the post name your product line?\r\n\r\n"
                           "The draft goes out Friday.\r\n")
    assert "Ben\r\nTest Agency" in text and "wrote:" not in text and "ben@agency.test" not in text
    assert to_bob["In-Reply-To"] == task(d).message_id and to_bob["Auto-Submitted"] == "no"
    assert "the post name your product line" in body(next(m for m in new if m["To"] == "carol@acme.test"))
    assert next(m for m in new if m["To"] == "ben@agency.test")["Subject"] == "[#1] Sent to the client: Blog post"
    assert sorted(m["To"] for m in new) == ["ben@agency.test", "bob@acme.test", "carol@acme.test"]

    send(d, reply(to_bob, "bob@acme.test", "Yes please, mention the Pro line."))
    answer = last_to(d, "ben@agency.test")
    assert "mention the Pro line" in body(answer), "the client's answer reaches the team"

    send(d, reply(notice, "ben@agency.test", "note: client prefers the Pro line, do not tell them about the delay"))
    assert all("delay" not in body(m) for m in d.received_by("bob@acme.test") + d.received_by("carol@acme.test"))
    with d.session() as session:
        from sqlmodel import select

        from dispatchd.store.tables import TaskEvent
        kinds = [(e.kind, e.detail) for e in session.exec(select(TaskEvent).where(TaskEvent.task_id == 1))]
    assert ("to_client", "Hi Bob,\nquick question: should the post name your product line?\n\n"
                         "The draft goes out Friday.") in kinds
    assert any(k == "comment" and "do not tell them" in v for k, v in kinds), "the note stays internal"


def test_deliver_sends_the_files_and_the_client_can_confirm(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ben\nstart\nreview\napprove"))
    pdf = b"%PDF-1.4 final version " * 500
    send(d, reply_with_files(last_to(d, "ben@agency.test"), "ben@agency.test",
                             "deliver: Here is the final post. The images are at https://files.agency.test/acme/42",
                             (("Blog post – final.pdf", pdf),)))
    assert task(d).status == "delivered"
    delivered = last_to(d, "bob@acme.test")
    assert delivered["Subject"] == "[#1] Delivered: Blog post"
    text = body(delivered)
    assert "Ben writes:" in text and "https://files.agency.test/acme/42" in text
    assert "Attached: Blog post – final.pdf" in text and 'Reply "confirm"' in text
    files = list(delivered.iter_attachments())
    assert [(f.get_filename(), f.get_content()) for f in files] == [("Blog post – final.pdf", pdf)]
    with d.session() as session:
        from sqlmodel import select

        from dispatchd.store.tables import Attachment
        stored = session.exec(select(Attachment)).all()
    assert [(a.filename, a.size) for a in stored] == [("Blog post – final.pdf", len(pdf))], "kept content-addressed"

    send(d, reply(delivered, "bob@acme.test", "confirm"))
    assert task(d).status == "closed"


@pytest.mark.config(extra="[intake]\nmax_attachment_mb = 0.01\n")
def test_deliver_refuses_files_too_large_for_one_email(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ben\nstart\nreview\napprove"))
    before = len(d.received())
    send(d, reply_with_files(last_to(d, "ben@agency.test"), "ben@agency.test", "deliver",
                             (("a.pdf", b"x" * 8000), ("b.pdf", b"y" * 8000))))
    assert task(d).status == "ready_for_delivery"
    new = mails_since(d, before)
    assert [m["To"] for m in new] == ["ben@agency.test"] and new[0]["Subject"].startswith("[#1] Not applied")
    assert "send some as a link instead" in body(new[0])


@pytest.mark.config(extra='[[clients]]\nname = "Initech"\nsenders = ["*@initech.test"]\nfollowers = ["pm@initech.test"]\n')
def test_a_configured_follower_hears_of_every_request_of_the_client(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Initech] - Content - TPS report", sender="Peter <peter@initech.test>"))
    assert "Also told: pm@initech.test" in body(last_to(d, "peter@initech.test"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart"))
    followed = last_to(d, "pm@initech.test")
    assert followed["Subject"] == "[#1] In progress: TPS report"
    assert "Request #1, which you follow, is now in progress." in body(followed)
    send(d, make_mail("[Acme] - Content - Blog post"))
    assert len(d.received_by("pm@initech.test")) == 1, "another client's requests stay with that client"


def test_a_forged_add_follower_adds_nobody(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Blog post"))
    # From: a real client address, but sent to the plain intake address: no token, no DKIM pass.
    send(d, make_mail("Re: [#1] Blog post", sender="bob@acme.test", body="add follower mallory@acme.test", to=d.user))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "assign Ana\nstart"))
    assert d.received_by("mallory@acme.test") == []
    with d.session() as session:
        from sqlmodel import select

        from dispatchd.store.tables import TaskFollower
        assert session.exec(select(TaskFollower)).all() == []
