"""Training, versioning and intake with the triage model, on a real (SQLite) database."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.domain.triage import TriageModel
from dispatchd.domain.routing import ExampleMail, Rulebook
from dispatchd.fitting import Example, fit
from dispatchd.domain.triage_text import RequestText as Text
from dispatchd.flows.training import (CORRECTION_WEIGHT, MIN_HELD_BACK, fit_measured, history_examples, model_status,
                                      rule_examples, train)
from dispatchd.flows.triage import ModelSlot
from dispatchd.store import triage as store
from dispatchd.store.tables import Outbox, RequestText, Task, TaskEvent, TriageModelRow
from dispatchd.rulebook import load_rulebook
from tests.conftest import PROJECT, write_config

MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/Berlin"))
_uids = itertools.count(1)
DESIGN = ["a banner for the {} campaign", "new logo ideas for the {} brand", "flyer layout for the {} fair",
          "poster and social graphics for {}", "illustrations and icons for the {} app"]
TECH = ["the {} page shows a 500 error", "contact form broken on the {} site", "please fix the login bug on {}",
        "SSL certificate expired for {}", "the {} plugin crashes the website"]
WORDS = ["spring", "summer", "autumn", "winter", "berlin", "paris", "alpha", "beta", "gamma", "delta", "omega", "nova"]


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test"))
    return build_deps(config, clock=FrozenClock(MONDAY_10))


@pytest.fixture(scope="module")
def rules_model() -> TriageModel:
    """What ``train`` fits on day one, fitted once for the module (training cross-validates too)."""
    return fit(rule_examples(load_rulebook(PROJECT / "rules")), {}, 1, temperature=0.5)


def install(deps: IntakeDeps, model: TriageModel) -> None:
    with Session(deps.engine) as session, session.begin():
        store.save_model(session, TriageModelRow(id=model.version, trained_at=MONDAY_10, examples=1, accuracy=0.5,
                                                 measured_on=1, data=store.dump_model(model)), activate=True)
    deps.triage.refresh()


def submit(deps: IntakeDeps, subject: str, body: str = "Please.", sender: str = "bob@acme.test") -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<train-{uid}@client.test>"
    message.set_content(body)
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def history(deps: IntakeDeps, rounds: int = 1) -> None:
    """Well-formed requests from many people at Acme (one sender would trip the loop breaker)."""
    people = (f"person{n}@acme.test" for n in itertools.count())
    for _ in range(rounds):
        for word in WORDS:
            for design, tech in zip(DESIGN, TECH):
                submit(deps, f"[Acme] - Design - {design.format(word)}", f"Hi Ben,\n{design.format(word)}.\nThanks",
                       next(people))
                submit(deps, f"[Acme] - Technical - {tech.format(word)}", f"Hi,\n{tech.format(word)}, urgent.\nJo",
                       next(people))


def task(deps: IntakeDeps, task_id: int) -> Task:
    with Session(deps.engine) as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def test_without_a_model_plain_words_go_to_triage_as_today(deps: IntakeDeps) -> None:
    task_id = submit(deps, "Hi Ben, could we get a new banner for the spring sale?")
    assert task(deps, task_id).queue == "triage"


def test_trained_model_routes_plain_words_with_its_reason_and_says_so(deps: IntakeDeps) -> None:
    result = train(deps.engine, deps.config, deps.rulebook, MONDAY_10)
    assert result.activated and result.version == 1 and "cross-validated" in result.note
    deps.triage.refresh()
    task_id = submit(deps, "Spring sale", "Hi Ben,\nCould we get a new banner and a flyer for the spring sale?\n"
                                          "Three sizes for Instagram.\n\nThanks,\nBob")
    found = task(deps, task_id)
    assert (found.type, found.queue, found.status) == ("Design", "design", "queued")
    with Session(deps.engine) as session:
        routed = session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id, TaskEvent.kind == "routed")).one()
        confirmation = session.exec(select(Outbox).where(Outbox.task_id == task_id,
                                                         Outbox.kind == "client-received")).one()
        text = session.get(RequestText, task_id)
    assert re.match(r"classified Design \([01]\.\d\d\) by triage model 1 — ", routed.detail)
    assert '"banner"' in routed.detail
    assert b"We filed this as a Design request: Spring sale" in confirmation.raw
    assert text is not None and (text.origin, text.predicted, text.model_version) == ("model", "Design", 1)


def test_unsure_model_leaves_it_in_triage_with_suggestions_for_the_reviewer(deps: IntakeDeps,
                                                                           rules_model: TriageModel) -> None:
    install(deps, rules_model)
    task_id = submit(deps, "Question", "Hi,\nWe need a new logo, and also the contact form on the website is "
                                       "broken with an error.\nThanks")
    assert task(deps, task_id).queue == "triage"
    with Session(deps.engine) as session:
        notice = session.exec(select(Outbox).where(Outbox.task_id == task_id, Outbox.kind == "staff-new-task")).first()
    assert notice is not None
    assert b"type Design" in notice.raw and b"type Technical" in notice.raw
    assert b"Reply with one line to apply one" in notice.raw


def test_an_outage_is_left_to_a_person_however_sure_the_model_is(deps: IntakeDeps,
                                                                  rules_model: TriageModel) -> None:
    install(deps, rules_model)
    body = "Hi Dev,\nthe contact form on the website shows an internal server error, please fix the bug.\nJo"
    routed = task(deps, submit(deps, "Contact form", body.replace("an internal server error", "an error")))
    assert (routed.type, routed.queue) == ("Technical", "dev"), "the same request without the outage is routed"
    held = task(deps, submit(deps, "Contact form", body, sender="jo@acme.test"))
    assert (held.queue, held.priority) == ("triage", "P0")
    with Session(deps.engine) as session:
        event = session.exec(select(TaskEvent).where(TaskEvent.task_id == held.id, TaskEvent.kind == "triaged")).one()
    assert "an emergency (outage): a person routes it; suggests Technical" in event.detail


def test_history_corrections_and_dropped_types_make_the_examples(deps: IntakeDeps) -> None:
    typed = submit(deps, "[Acme] - Design - Banner", "Hi Ben, a banner please")
    untyped = submit(deps, "Something", "Hi, a thing please")
    with Session(deps.engine) as session, session.begin():
        store.mark_corrected(session, untyped)
        session.get(Task, untyped).type = "Strategy"  # type: ignore[union-attr]
        session.get(Task, typed).type = "Retired"  # type: ignore[union-attr]  # a type since removed
    with Session(deps.engine) as session:
        examples, dropped = history_examples(session, deps.rulebook)
    assert [(e.label, e.origin, e.weight) for e in examples] == [("Strategy", "correction", CORRECTION_WEIGHT)]
    assert dropped == {"Retired": 1}


def test_a_new_model_replaces_the_old_only_when_at_least_as_accurate(deps: IntakeDeps,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    history(deps, rounds=2)
    # Urgent without examples: a type the model is never asked to predict, shown as such in the status.
    # One example mail, not the shipped 1,500: they would outweigh the week of wrong corrections below.
    rulebook = replace(deps.rulebook, types=tuple(replace(t, examples=()) if t.name == "Urgent" else t
                                                  for t in deps.rulebook.types),
                       triage_model=replace(deps.rulebook.triage_model,
                                            example_mail=(ExampleMail("Technical", "Site", "The contact form is broken"),)))
    first = train(deps.engine, deps.config, rulebook, MONDAY_10)
    assert first.activated and first.measured_on >= MIN_HELD_BACK and first.previous_accuracy is None
    # A week of wrong corrections: what is trained on says Design for Technical and back.
    swap = {"Design": "Technical", "Technical": "Design"}

    def mislabelled(session: Session, rulebook: Rulebook) -> tuple[list[Example], Counter[str]]:
        examples, dropped = history_examples(session, rulebook)
        return [e if e.held_back else replace(e, label=swap[e.label]) for e in examples], dropped
    monkeypatch.setattr("dispatchd.flows.training.history_examples", mislabelled)
    second = train(deps.engine, deps.config, rulebook, MONDAY_10)
    assert not second.activated and second.accuracy < (second.previous_accuracy or 0)
    assert "not better than model 1" in second.note
    with Session(deps.engine) as session:
        assert store.active_version(session) == first.version
        assert store.activate(session, second.version)
        session.commit()
        assert store.active_version(session) == second.version, "a kept model can be restored"
    status = model_status(deps.engine, rulebook)
    assert [m["version"] for m in status["history"]] == [2, 1]
    assert status["never_predicted"] == ["Urgent"]
    poorer = replace(rulebook, types=tuple(t for t in rulebook.types if t.name != "Technical"))
    third = train(deps.engine, deps.config, poorer, MONDAY_10, force=True)
    assert third.activated and third.dropped == {"Technical": 121}, "a type no longer in the rules is dropped"


def test_a_corrupt_model_is_logged_and_intake_routes_without_it(deps: IntakeDeps, rules_model: TriageModel) -> None:
    install(deps, rules_model)
    with Session(deps.engine) as session, session.begin():
        row = session.exec(select(TriageModelRow).where(col(TriageModelRow.active))).one()
        row.data = b"garbage"
    slot = ModelSlot(deps.engine)
    assert slot.refresh() is None
    deps = replace(deps, triage=slot)
    task_id = submit(deps, "Spring sale", "Hi Ben, could we get a new banner for the spring sale?")
    assert task(deps, task_id).queue == "triage"


def test_a_correction_of_a_model_routed_request_is_a_model_error(deps: IntakeDeps, rules_model: TriageModel) -> None:
    install(deps, rules_model)
    task_id = submit(deps, "Spring sale", "Hi Ben, could we get a new banner for the spring sale? Three sizes.")
    assert task(deps, task_id).type == "Design"
    with Session(deps.engine) as session, session.begin():
        store.mark_corrected(session, task_id)
        session.get(Task, task_id).type = "Content"  # type: ignore[union-attr]
    status = model_status(deps.engine, deps.rulebook)
    assert status["model_routed"] == 1
    assert status["model_errors"] == [{"task": task_id, "predicted": "Design", "corrected_to": "Content"}]


def test_replay_shows_what_the_model_would_do_to_stored_mail(deps: IntakeDeps, rules_model: TriageModel) -> None:
    from dispatchd.flows.replay import replay

    task_id = submit(deps, "Spring sale", "Hi Ben, could we get a new banner and a flyer for the spring sale?")
    assert task(deps, task_id).queue == "triage", "no model yet"
    install(deps, rules_model)
    [replayed] = list(replay(deps, deps.rulebook))
    assert "queue" in replayed.changed and replayed.after[0] == "design"
    assert replayed.reasons[0].startswith("classified Design")


def test_the_temperature_after_history_does_not_hang_on_which_requests_are_held_back() -> None:
    """It comes from the rules' examples written out as emails (cross-validated), not from the
    few dozen held-back requests: which of those happened to be held back moved it from 0.23 to
    0.48, and a held-back set with a few odd labels made every guess look unsure."""
    rules = load_rulebook(PROJECT / "rules")
    rulebook = replace(rules, triage_model=replace(rules.triage_model, example_mail=()))  # the claim is about history
    texts = [(label, template.format(word)) for label, templates in (("Design", DESIGN), ("Technical", TECH))
             for template in templates for word in WORDS]

    def temperature(offset: int) -> float:
        # Every third label the other type's: held back, such requests look like a model that
        # knows nothing, whatever it knows about mail in plain words.
        history = [Example(Text(subject, "Hi, " + subject + " please."),
                           label if n % 3 else {"Design": "Technical", "Technical": "Design"}[label], 1.0,
                           f"task:{n + offset}", "subject") for n, (label, subject) in enumerate(texts)]
        fitted = fit_measured(rulebook, history, {}, 1)
        assert fitted.method == "held-back"
        return fitted.model.temperature

    first, second = temperature(0), temperature(7)
    assert first < 1.0 and first == pytest.approx(second, rel=0.15)


def test_check_explain_says_what_intake_does_with_the_models_guess(deps: IntakeDeps, rules_model: TriageModel,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's line of ``check --explain`` is intake's verdict, the emergency hold included."""
    from dispatchd.checks import explain
    from dispatchd.domain.triage import Guess, Prediction

    sure = Prediction(1, (Guess("Technical", 0.99, ("server",)), Guess("Urgent", 0.01)), 0.0, 20)
    monkeypatch.setattr(TriageModel, "predict", lambda self, *args, **kwargs: sure)
    text = explain(deps.config, deps.rulebook, "Our website is down, internal server error", "bob@acme.test",
                   model=rules_model)
    assert text.splitlines()[-1] == "  -> an emergency (outage): a person routes it"
