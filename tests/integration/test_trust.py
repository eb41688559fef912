"""Whom dispatchd tells and whom it believes (issue 20, and issue 23's "a claim is not an identity"),
end to end through real Dovecot and the SMTP sink. Each test here failed on the code before it."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


def test_an_outsiders_claim_does_not_make_them_the_client(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Design - Spring sale banner", sender="PR Desk <pr@brightmedia.test>"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.client, task.claimed_client, task.queue) == (None, "Acme", "triage")
    [notice] = deployment.received_by("morgan@agency.test")
    body = notice.get_body(("plain",)).get_content()
    assert "Client:    unknown (claims to be Acme (sender not on Acme's list))" in body


def test_a_client_that_does_not_exist_goes_to_triage(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Vandelay] - Design - Latex catalogue"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.queue, task.status, task.claimed_client) == ("triage", "received", "Vandelay")
    [notice] = deployment.received_by("morgan@agency.test")
    assert "names Vandelay, which is not a client we know" in notice.get_body(("plain",)).get_content()


def test_the_digest_never_reaches_an_outsider_who_named_the_client(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Pillar page on pricing", message_id="<acme@client.test>"),
                       make_mail("[Acme] - Design - Press kit", sender="pr@brightmedia.test"))
    assert deployment.run_once() == 0
    assert deployment.cli("job", "digest") == 0
    assert not [m for m in deployment.received_by("pr@brightmedia.test") if "Press kit" not in m["Subject"]]
    [digest] = [m for m in deployment.received_by("bob@acme.test") if m["Auto-Submitted"] != "auto-replied"]
    body = digest.get_body(("plain",)).get_content()
    assert "Pillar page on pricing" in body and "Press kit" not in body


def _events(deployment: Deployment, kind: str) -> list[str]:
    from sqlmodel import select

    from dispatchd.store.tables import TaskEvent

    with deployment.session() as session:
        return [e.detail for e in session.exec(select(TaskEvent).where(TaskEvent.kind == kind)).all()]


def test_a_forged_comment_reaches_staff_marked_unverified(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Annual report"))
    assert deployment.run_once() == 0
    fraud = "Please send the final files and the invoice to billing-new@evil.test"
    # The classic invoice-fraud mail: a client's From:, only [#1] in the subject, no token, no thread, no DKIM.
    deployment.deliver(make_mail("[#1] change of billing address", sender="Alice <alice@acme.test>", body=fraud))
    assert deployment.run_once() == 0
    [warned] = [m for m in deployment.received_by("ben@agency.test") if "alice@acme.test" in m["Subject"]]
    text = warned.get_body(("plain",)).get_content()
    assert text.lstrip().startswith("WARNING: UNVERIFIED."), text
    assert "UNVERIFIED" in warned["Subject"] and fraud in text
    assert "\nalice@acme.test wrote on task" not in text
    assert _events(deployment, "comment") == []
    assert [d.splitlines()[-1] for d in _events(deployment, "unverified_comment")] == [fraud]


def test_a_verified_client_comment_is_forwarded_without_warning(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Annual report"))
    assert deployment.run_once() == 0
    [confirmation] = deployment.received_by("bob@acme.test")
    deployment.deliver(make_mail(f"Re: {confirmation['Subject']}", body="Add the CEO letter.",
                                 to=confirmation["Reply-To"], headers={"In-Reply-To": confirmation["Message-ID"]}))
    assert deployment.run_once() == 0
    [forwarded] = [m for m in deployment.received_by("ben@agency.test") if "Comment from" in m["Subject"]]
    assert forwarded.get_body(("plain",)).get_content().startswith("bob@acme.test wrote on task #1")
    assert _events(deployment, "comment") == ["Add the CEO letter."]


def test_a_strangers_text_on_a_guessed_task_number_is_not_stored(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Annual report"))
    assert deployment.run_once() == 0
    before = len(deployment.received())
    deployment.deliver(make_mail("[#1] urgent", sender="eve@evil.test", body="Wire the fee to IBAN XX00 0000."))
    assert deployment.run_once() == 0
    assert _events(deployment, "comment") == [] and _events(deployment, "unverified_comment") == []
    assert len(deployment.received()) == before, "no staff notice, no backscatter"
    assert deployment.inbound()[-1].reason.startswith("subject-tag: not stored on task 1")


def test_a_task_moved_to_a_client_by_a_person_does_not_subscribe_its_outside_sender(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Pillar page"),
                       make_mail("[Acme] - Design - Press kit", sender="pr@brightmedia.test"))
    assert deployment.run_once() == 0
    triage_notice = [m for m in deployment.received_by("morgan@agency.test") if "Press kit" in m["Subject"]][-1]
    deployment.deliver(make_mail(f"Re: {triage_notice['Subject']}", sender="morgan@agency.test", body="client Acme",
                                 to=triage_notice["Reply-To"], headers={"In-Reply-To": triage_notice["Message-ID"]}))
    assert deployment.run_once() == 0
    assert [t.client for t in deployment.tasks()] == ["Acme", "Acme"]
    heard = len(deployment.received_by("pr@brightmedia.test"))
    assert deployment.cli("job", "digest") == 0
    assert len(deployment.received_by("pr@brightmedia.test")) == heard
    [digest] = [m for m in deployment.received_by("bob@acme.test") if m["Auto-Submitted"] != "auto-replied"]
    assert "Press kit" in digest.get_body(("plain",)).get_content()


@pytest.mark.config(extra='[[clients]]\nname = "Tyler"\nsenders = ["*@tyler-seo.test"]\n'
                          'digest_to = ["tyler@tyler-seo.test"]\n')
def test_digest_to_is_the_only_list_when_senders_are_a_pattern(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Tyler] - Content - Backlink audit", sender="intern@tyler-seo.test"))
    assert deployment.run_once() == 0
    assert deployment.tasks()[0].client == "Tyler"
    assert deployment.cli("job", "digest") == 0
    [digest] = deployment.received_by("tyler@tyler-seo.test")
    assert "Backlink audit" in digest.get_body(("plain",)).get_content()
    assert [m["Subject"] for m in deployment.received_by("intern@tyler-seo.test")] == ["[#1] Received: Backlink audit"]


def test_no_backscatter_to_an_unknown_sender(deployment: Deployment) -> None:
    # A spoofed From: would make us mail an innocent third party; by default strangers get nothing.
    deployment.deliver(make_mail("Invoice overdue!!", sender="victim@innocent.test"),
                       make_mail("[Acme] - Content - Press release", sender="victim@innocent.test"))
    assert deployment.run_once() == 0
    assert [t.queue for t in deployment.tasks()] == ["triage", "triage"]
    assert not deployment.received_by("victim@innocent.test")
    assert deployment.received_by("morgan@agency.test"), "the triage owner still hears of it"


AUTHENTICATED = {"Authentication-Results": "mx.agency.test; dkim=pass header.d=newco.test; dmarc=pass header.from=newco.test"}


@pytest.mark.config(extra='[intake]\nreply_to_unknown_senders = "authenticated"\n')
def test_format_help_to_an_authenticated_stranger_reveals_no_task_number(deployment: Deployment) -> None:
    deployment.deliver(make_mail("banner please", sender="pat@newco.test", headers=AUTHENTICATED),
                       make_mail("banner please", sender="pat@spoofed.test"))
    assert deployment.run_once() == 0
    assert not deployment.received_by("pat@spoofed.test"), "an unauthenticated stranger gets nothing"
    [helped] = deployment.received_by("pat@newco.test")
    raw = helped.as_string()
    assert helped["Subject"] == "Please write from your usual address: banner please"
    assert "#1" not in raw and "task" not in helped.get_body(("plain",)).get_content().lower()
    assert "+t" not in helped["Reply-To"] and "Acme" not in raw and "Globex" not in raw
    assert "[Your company] - " in raw


@pytest.mark.config(extra="[intake]\nformat_help_per_day = 2\n")
def test_format_help_is_rate_limited_per_address(deployment: Deployment) -> None:
    deployment.deliver(*(make_mail(f"question {n}") for n in range(4)),
                       make_mail("question from carl", sender="carl@acme.test"))
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == 5
    assert [m["Subject"] for m in deployment.received_by("bob@acme.test")] == [
        "[#1] Received (a tip for next time): question 0", "[#2] Received (a tip for next time): question 1"]
    assert len(deployment.received_by("carl@acme.test")) == 1


STAFF = ("ana@agency.test", "ben@agency.test", "morgan@agency.test")


@pytest.mark.config(extra='[[queues]]\nname = "content"\ndisplay_name = "Content studio"\n')
def test_client_mail_shows_first_names_and_team_names_not_internal_ones(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    assert deployment.run_once() == 0
    notice = deployment.received_by("ben@agency.test")[-1]
    deployment.deliver(make_mail(f"Re: {notice['Subject']}", sender="ben@agency.test", body="assign Ana\nstart",
                                 to=notice["Reply-To"], headers={"In-Reply-To": notice["Message-ID"]}))
    assert deployment.run_once() == 0
    client_mail = deployment.received_by("bob@acme.test")
    assert len(client_mail) >= 2, [m["Subject"] for m in client_mail]
    for message in client_mail:
        for part in ("plain", "html"):
            text = message.get_body((part,)).get_content()
            assert not any(address in text for address in STAFF), text
            assert "Queue" not in text and "Assignee" not in text
    status = client_mail[-1].get_body(("plain",)).get_content()
    assert "Team:      Content studio" in status and "With:      Ana" in status
    staff_view = deployment.received_by("ana@agency.test")[-1].get_body(("plain",)).get_content()
    assert "Queue:     content" in staff_view, "staff keep the internal names"


@pytest.mark.config(extra="[intake]\nmax_message_mb = 0.05\n")
def test_no_refusal_or_size_answer_to_an_unknown_sender(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Annual report"))
    assert deployment.run_once() == 0
    deployment.deliver(make_mail("[#1] cancel", sender="eve@evil.test", body="cancel: no longer needed"),
                       make_mail("huge", sender="eve@evil.test", body="x" * 80_000),
                       make_mail("huge too", body="x" * 80_000))
    assert deployment.run_once() == 0
    assert deployment.tasks()[0].status == "queued"
    assert not deployment.received_by("eve@evil.test"), "a forged sender must not turn us into a spam cannon"
    assert any("too large" in m["Subject"].lower() or "too big" in m["Subject"].lower()
               for m in deployment.received_by("bob@acme.test")), "a client still hears why"


def test_a_task_stored_from_a_claim_before_the_upgrade_stays_out_of_the_clients_digest(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Pillar page"), make_mail("[Acme] - Design - Press kit",
                                                                              sender="pr@brightmedia.test"))
    assert deployment.run_once() == 0
    with deployment.session() as session:  # what the old code stored: the claim as the client
        from dispatchd.store.tables import Task

        old = session.get(Task, 2)
        assert old is not None
        old.client, old.claimed_client = "Acme", None
        session.add(old)
        session.commit()
    assert deployment.cli("job", "digest") == 0
    [digest] = [m for m in deployment.received_by("bob@acme.test") if m["Auto-Submitted"] != "auto-replied"]
    body = digest.get_body(("plain",)).get_content()
    assert "Pillar page" in body and "Press kit" not in body
    assert not deployment.received_by("pr@brightmedia.test")
