"""Replies move the work, end to end through real Dovecot and aiosmtpd."""

from __future__ import annotations

import email.message
import json

import pytest
from sqlmodel import select

from dispatchd.store.tables import Task, TaskEvent
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
TRUSTED = "mx.agency.test; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"


def reply(to_message: email.message.EmailMessage, sender: str, body: str, *, subject: str | None = None,
          thread: bool = True, to: str | None = None, headers: dict[str, str] | None = None) -> bytes:
    extra = dict(headers or {})
    if thread:
        extra["In-Reply-To"] = to_message["Message-ID"]
        extra["References"] = to_message["Message-ID"]
    return make_mail(subject or f"Re: {to_message['Subject']}", sender=sender, body=body,
                     to=to or to_message["Reply-To"], headers=extra)


def last_to(deployment: Deployment, address: str) -> email.message.EmailMessage:
    return deployment.received_by(address)[-1]


def send(deployment: Deployment, *messages: bytes) -> None:
    deployment.deliver(*messages)
    assert deployment.run_once() == 0


def task(deployment: Deployment, task_id: int = 1) -> Task:
    with deployment.session() as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def body(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


@pytest.fixture
def content_task(deployment: Deployment) -> Deployment:
    """A content task the queue's lead (Ben) has assigned to Ana by replying to his notice."""
    send(deployment, make_mail("[Acme] - Content - Blog post on topic clusters"))
    send(deployment, reply(last_to(deployment, "ben@agency.test"), "ben@agency.test", "assign Ana"))
    assert task(deployment).assignee == "ana@agency.test"
    return deployment


def test_whole_ladder_by_replies_alone(content_task: Deployment) -> None:
    d = content_task
    send(d, reply(last_to(d, "ana@agency.test"), "Ana <ana@agency.test>", "start\n\nOn it."))
    assert (task(d).status, task(d).assignee) == ("in_progress", "ana@agency.test")
    assert "In progress" in last_to(d, "bob@acme.test")["Subject"], "the client hears work started"
    assert last_to(d, "ana@agency.test")["Subject"].startswith("[#1] Started:"), "one results reply, saying what happened"

    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "review"))
    assert task(d).status == "in_review" and task(d).producer == "ana@agency.test"
    review_notice = last_to(d, "ben@agency.test")
    assert "In review" in review_notice["Subject"], "the queue's lead is told to review"

    send(d, reply(review_notice, "ben@agency.test", "Approve.\npriority P1"))
    assert (task(d).status, task(d).priority) == ("ready_for_delivery", "P1")
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "deliver"))
    assert task(d).status == "delivered"
    delivered = last_to(d, "bob@acme.test")
    assert "Delivered" in delivered["Subject"] and 'Reply "confirm"' in body(delivered)

    send(d, reply(delivered, "Bob Stone <bob@acme.test>", "Confirm\n\nThanks, perfect!"))
    assert task(d).status == "closed"
    with d.session() as session:
        events = session.exec(select(TaskEvent).where(TaskEvent.task_id == 1)).all()
    moves = [(e.from_status, e.to_status, e.actor) for e in events if e.kind == "status"]
    assert moves == [("queued", "in_progress", "ana@agency.test"), ("in_progress", "in_review", "ana@agency.test"),
                     ("in_review", "ready_for_delivery", "ben@agency.test"),
                     ("ready_for_delivery", "delivered", "ben@agency.test"), ("delivered", "closed", "bob@acme.test")]
    assert all(e.message_id for e in events), "every event names the message that caused it"
    assert any(e.kind == "comment" and e.detail == "Thanks, perfect!" for e in events)


def test_revision_round_trip(content_task: Deployment) -> None:
    d = content_task
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "start"))
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "review"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "approve\ndeliver"))
    assert task(d).status == "delivered"
    send(d, reply(last_to(d, "bob@acme.test"), "bob@acme.test", "revise: the intro is too long"))
    revised = task(d)
    assert (revised.status, revised.assignee, revised.priority) == ("revisions_needed", "ana@agency.test", "P1")
    producer_notice = last_to(d, "ana@agency.test")
    assert "the intro is too long" in body(producer_notice)
    send(d, reply(producer_notice, "ana@agency.test", "start"))
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "review"))
    send(d, reply(last_to(d, "ben@agency.test"), "ben@agency.test", "approve\ndeliver"))
    send(d, reply(last_to(d, "bob@acme.test"), "bob@acme.test", "approve"))
    assert task(d).status == "closed"


def test_reply_matched_only_by_references(content_task: Deployment) -> None:
    d = content_task
    notice = last_to(d, "ana@agency.test")
    raw = make_mail("totally different subject", sender="ana@agency.test", body="start",
                    to=d.user, headers={"References": f"<other@x.test> {notice['Message-ID']}",
                                        "Authentication-Results": TRUSTED.format(domain="agency.test")})
    send(d, raw)
    assert task(d).status == "in_progress"
    assert d.inbound()[-1].reason.startswith("thread:")


def test_reply_matched_only_by_subject_tag(content_task: Deployment) -> None:
    d = content_task
    raw = make_mail("AW: [#1] something", sender="ana@agency.test", body="start", to=d.user,
                    headers={"Authentication-Results": TRUSTED.format(domain="agency.test")})
    send(d, raw)
    assert task(d).status == "in_progress"
    assert d.inbound()[-1].reason.startswith("subject-tag:")


def test_reply_matched_only_by_signed_address(content_task: Deployment) -> None:
    d = content_task
    notice = last_to(d, "ana@agency.test")
    send(d, reply(notice, "ana@agency.test", "start", subject="edited subject", thread=False))
    assert task(d).status == "in_progress"
    assert d.inbound()[-1].reason.startswith("reply-address:")


def test_quoted_text_never_runs(content_task: Deployment) -> None:
    d = content_task
    text = ("Thanks, I will look tomorrow.\n\nOn Thu, 26 Nov 2026 at 10:00, Agency <requests@agency.test> wrote:\n"
            "> start\n> approve\n> close\n")
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", text))
    assert task(d).status == "queued"
    with d.session() as session:
        comment = session.exec(select(TaskEvent).where(TaskEvent.kind == "comment")).one()
    assert comment.detail == "Thanks, I will look tomorrow."


def test_client_comment_is_forwarded_to_the_assignee(content_task: Deployment) -> None:
    d = content_task
    send(d, reply(d.received_by("bob@acme.test")[0], "bob@acme.test", "Please also mention pillar pages."))
    forwarded = last_to(d, "ana@agency.test")
    assert "Comment from bob@acme.test" in forwarded["Subject"]
    assert "Please also mention pillar pages." in body(forwarded)


def test_forged_from_cannot_advance_a_task(content_task: Deployment) -> None:
    d = content_task
    notice = last_to(d, "ana@agency.test")
    # In the thread, right subject, staff From: but sent to the plain address, no token, no DKIM.
    forged = reply(notice, "ana@agency.test", "start\ncancel: gotcha", to=d.user)
    send(d, forged)
    assert task(d).status == "queued"
    refusal = last_to(d, "ana@agency.test")
    assert refusal["Subject"].startswith("Not accepted") and "Blog post" not in body(refusal)
    # A token issued to Ana does not work for someone else either.
    stolen = reply(notice, "eve@acme.test", "cancel: gotcha")
    send(d, stolen)
    assert task(d).status == "queued"


def test_unauthorised_reply_is_refused_without_details(content_task: Deployment) -> None:
    d = content_task
    confirmation = d.received_by("bob@acme.test")[0]
    send(d, reply(confirmation, "bob@acme.test", "close"))
    assert task(d).status == "queued"
    answer = last_to(d, "bob@acme.test")
    assert answer["Subject"].startswith("[#1] Not applied") and "a client may not close" in body(answer)
    send(d, reply(confirmation, "carla@globex.test", "confirm", to=d.user,
                  headers={"Authentication-Results": TRUSTED.format(domain="globex.test")}))
    stranger = last_to(d, "carla@globex.test")
    assert stranger["Subject"].startswith("Not accepted") and "Blog post" not in body(stranger)


def test_illegal_move_says_status_and_allowed_moves(content_task: Deployment) -> None:
    d = content_task
    send(d, reply(last_to(d, "ana@agency.test"), "ben@agency.test", "deliver",
                  headers={"Authentication-Results": TRUSTED.format(domain="agency.test")}, to=d.user))
    answer = last_to(d, "ben@agency.test")
    assert "cannot deliver a task that is queued; allowed now: start, cancel" in body(answer)


def test_commands_apply_all_or_nothing(content_task: Deployment) -> None:
    d = content_task
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "start\nreview\nassign Nobody"))
    assert task(d).status == "queued"
    answer = last_to(d, "ana@agency.test")
    assert "Nothing was applied" in body(answer) and "NO  assign Nobody" in body(answer)
    assert "a producer may not assign" in body(answer)
    assert not any("In progress" in m["Subject"] for m in d.received_by("bob@acme.test"))


def test_fresh_staff_email_names_the_task(content_task: Deployment) -> None:
    d = content_task
    send(d, make_mail("assign 1 ben", sender="ben@agency.test", body="", to=d.user,
                      headers={"Authentication-Results": TRUSTED.format(domain="agency.test")}))
    assert task(d).assignee == "ben@agency.test"
    assert d.inbound()[-1].disposition == "command"
    send(d, make_mail("work", sender="ben@agency.test", body="start 1\n\ncheers", to=d.user,
                      headers={"Authentication-Results": TRUSTED.format(domain="agency.test")}))
    assert task(d).status == "in_progress"


@pytest.mark.config(extra='[[staff]]\nname = "Pat"\nemail = "pat@agency.test"\nqueues = ["content"]\nwip_limit = 1\n')
def test_next_pulls_the_best_task_and_honours_wip(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Content - Low [P3]"), make_mail("[Acme] - Content - Urgent one [P1]"),
         make_mail("[Acme] - Content - Normal"))
    auth = {"Authentication-Results": TRUSTED.format(domain="agency.test")}
    send(d, make_mail("next", sender="pat@agency.test", body="", to=d.user, headers=auth))
    assert task(d, 2).assignee == "pat@agency.test"
    assert "task #2 is yours" in body(last_to(d, "pat@agency.test"))
    send(d, make_mail("next", sender="pat@agency.test", body="", to=d.user, headers=auth))
    assert "WIP limit (1 of 1" in body(last_to(d, "pat@agency.test"))
    assert task(d, 3).assignee is None


def test_manual_triage_reroutes_and_tells_everyone(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("question about a banner for spring"))
    assert task(d).queue == "triage"
    triage_notice = last_to(d, "morgan@agency.test")
    send(d, reply(triage_notice, "morgan@agency.test", "type Design\n\nLooks like design work."))
    routed = task(d)
    assert (routed.queue, routed.status, routed.client, routed.sla) == ("design", "queued", "Acme", "3 business days")
    assert "Queued" in last_to(d, "bob@acme.test")["Subject"]
    assert d.received_by("ben@agency.test"), "the design lead hears about it"
    with d.session() as session:
        event = session.exec(select(TaskEvent).where(TaskEvent.kind == "rerouted")).one()
    assert event.actor == "morgan@agency.test" and "routed by morgan@agency.test" in event.detail


def test_show_prints_the_full_history(content_task: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    d = content_task
    send(d, reply(last_to(d, "ana@agency.test"), "ana@agency.test", "start\nnote: drafted outline"))
    capsys.readouterr()
    d.cli("show", "1")
    out = capsys.readouterr().out
    for needle in ("received", "routed", "status", "drafted outline", "ana@agency.test"):
        assert needle in out
    d.cli("show", "1", "--json")
    kinds = [e["kind"] for e in json.loads(capsys.readouterr().out)["events"]]
    assert kinds == ["received", "routed", "assigned", "status", "comment"]


@pytest.mark.config(extra='[[staff]]\nname = "Dina"\nemail = "dina@agency.test"\nqueues = ["design"]\n')
def test_away_by_email_hands_work_on(deployment: Deployment) -> None:
    d = deployment
    send(d, make_mail("[Acme] - Design - Banner"))
    assert task(d).assignee == "ben@agency.test"
    send(d, make_mail("away until 2099-01-31", sender="ben@agency.test", body="", to=d.user,
                      headers={"Authentication-Results": TRUSTED.format(domain="agency.test")}))
    assert "away until" in body(last_to(d, "ben@agency.test"))
    assert d.cli("job", "redispatch") == 0
    assert task(d).assignee == "dina@agency.test"
    assert "Ben is away" in body(last_to(d, "dina@agency.test"))
