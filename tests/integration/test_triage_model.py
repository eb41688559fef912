"""The triage model end to end through real Dovecot and aiosmtpd: it learns from the team's own
routing, routes requests in plain words when sure, and hands the rest to a person with suggestions."""

from __future__ import annotations

import email.message
import itertools

import pytest
from sqlmodel import col, select

from dispatchd.store.tables import RequestText, Task, TaskEvent
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration

HISTORY = {
    "Design": ["New banner for the {} sale", "Logo variations for the {} brand", "Flyer layout for the {} event",
               "Social media graphics for {}", "Poster design for the {} fair"],
    "Technical": ["Contact form broken on the {} page", "500 error on the {} checkout", "Fix the login bug in {}",
                  "SSL certificate for the {} domain", "Plugin update breaks the {} site"],
    "Content": ["Blog post about {}", "Newsletter text for the {} launch", "Press release on {}",
                "Product descriptions for the {} range", "Article about {} for the magazine"],
}
TOPICS = ["spring", "summer", "autumn", "winter", "berlin"]


def body(message: email.message.EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def task(d: Deployment, task_id: int) -> Task:
    with d.session() as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def events(d: Deployment, task_id: int, kind: str) -> list[TaskEvent]:
    with d.session() as session:
        return list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.kind == kind)
                                 .order_by(col(TaskEvent.id))).all())


def deliver_one(d: Deployment, subject: str, text: str, sender: str = "Bob Stone <bob@acme.test>") -> Task:
    d.deliver(make_mail(subject, sender=sender, body=text))
    assert d.run_once() == 0
    return d.tasks()[-1]


def test_the_model_learns_routes_suggests_and_learns_from_the_reviewer(deployment: Deployment) -> None:
    d = deployment
    people = (f"Person {n} <person{n}@acme.test>" for n in itertools.count())
    history = [make_mail(f"[Acme] - {kind} - {subject.format(topic)}", sender=next(people),
                         body=f"Hi,\n{subject.format(topic)}, details attached soon.\n\nThanks,\nP")
               for kind, subjects in HISTORY.items() for subject in subjects for topic in TOPICS]
    d.deliver(*history)
    assert d.run_once() == 0
    assert len(d.tasks()) == len(history) and all(t.queue != "triage" for t in d.tasks())

    assert d.cli("triage", "train") == 0

    # A known client in plain words: routed like a well-formed request, with the model's reason.
    routed = deliver_one(d, "Spring sale", "Hi Ben,\nCould we get a new banner for the spring sale? Three sizes "
                                           "for the website and Instagram.\n\nThanks,\nBob")
    assert (routed.type, routed.queue, routed.status, routed.client) == ("Design", "design", "queued", "Acme")
    [decided] = events(d, routed.id, "routed")  # type: ignore[arg-type]
    assert decided.detail.startswith("classified Design (") and "by triage model 1 — " in decided.detail
    confirmation = d.received_by("bob@acme.test")[-1]
    assert f"[#{routed.id}]" in confirmation["Subject"]
    assert "We filed this as a Design request: Spring sale" in body(confirmation)

    # A vague one: triage, with the model's suggestions and the one-word replies in the reviewer's email.
    vague = deliver_one(d, "Quick one", "Hi,\nCan you sort out the Zorblax kit for the new cohort?\n\nBob")
    assert (vague.queue, vague.status, vague.type) == ("triage", "received", None)
    notice = d.received_by("morgan@agency.test")[-1]
    assert f"[#{vague.id}]" in notice["Subject"]
    assert "Reply with one line to apply one:" in body(notice) and "  type " in body(notice)

    # The reviewer answers with one word; that answer is a label.
    d.deliver(make_mail(f"Re: {notice['Subject']}", sender="morgan@agency.test", body="type Content",
                        to=notice["Reply-To"], headers={"In-Reply-To": notice["Message-ID"]}))
    assert d.run_once() == 0
    assert (task(d, vague.id).type, task(d, vague.id).queue) == ("Content", "content")  # type: ignore[arg-type]
    with d.session() as session:
        label = session.get(RequestText, vague.id)
    assert label is not None and label.corrected and label.origin == "triage"

    # Retrained, the model routes a similar request by itself.
    assert d.cli("triage", "train") == 0
    similar = deliver_one(d, "Onboarding", "Hello,\nWe need another Zorblax kit, this time for the "
                                           "autumn cohort.\n\nBob")
    assert (similar.type, similar.queue) == ("Content", "content")
    assert "by triage model 2" in events(d, similar.id, "routed")[0].detail  # type: ignore[arg-type]


def test_an_unknown_type_word_is_read_and_an_unknown_sender_is_not_guessed(deployment: Deployment) -> None:
    d = deployment
    assert d.cli("triage", "train") == 0  # day one: the rules' examples alone
    layout = deliver_one(d, "[Acme] - [layout] - Two-column layout for the case studies page",
                         "Hi Ben, a new layout with illustrations and icons please.")
    assert (layout.type, layout.queue) == ("Design", "design")
    assert "classified Design" in events(d, layout.id, "routed")[0].detail  # type: ignore[arg-type]
    explicit = deliver_one(d, "[Acme] - Content - New banner and logo", "Hi Ben, a banner and a logo please.")
    assert explicit.type == "Content", "an explicit, known type is never overridden"
    stranger = deliver_one(d, "Banner", "Hi Ben, a new banner for the spring sale please.",
                           sender="Eve <eve@elsewhere.test>")
    assert (stranger.queue, stranger.client) == ("triage", None)
