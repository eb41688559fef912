"""Training the triage model: gather labelled examples, fit, measure, keep the better model.

Examples come from the rules (type names, aliases, descriptions, ``examples``; ``[triage]
out_of_scope``; the labelled mail in ``rules/example-mail/``), from every task a client typed with
a well-formed subject, and from every correction a person made (weighted more). Requests the
model routed itself and nobody corrected are not examples: the model would learn its own
mistakes. Types no longer in the rules are dropped.

One history example in five (always the same, by task) is held back: no model trains on it, and a
new model replaces the active one only when it is at least as accurate on it. With too few held
back (a young installation) the accuracy is cross-validated instead and the new model is taken.
Training reads the database and fits outside any transaction, so it never blocks intake.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from sqlmodel import Session

from dispatchd.config import Config
from dispatchd.domain.routing import NOT_A_REQUEST, Rulebook, normalise_label
from dispatchd.domain.triage import OUT_OF_SCOPE, TriageModel
from dispatchd.domain.triage_text import Lexicon, RequestText
from dispatchd.flows.examples_mail import as_email, vague_subject
from dispatchd.flows.triage import greetings
from dispatchd.fitting import (Example, Measure, cross_validate, features, fit, mail_temperature, measure,
                               probabilities, read_all, temperature_for)
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.store import triage as store
from dispatchd.store.second_opinion import opinion_record
from dispatchd.store.db import write_turn
from dispatchd.store.tables import TriageModelRow

log = structlog.get_logger("dispatchd.training")

# A person's label for mail the model could not place (or placed wrong): with thousands of
# rules examples, at three times a passive example one correction moved nothing. At ten, a
# short request like the corrected one ("another Zorblax kit for the autumn cohort", seven known
# words) stayed below the threshold once short texts counted for less (short_text_scale).
CORRECTION_WEIGHT = 30.0
# Newest history examples per type (corrections always kept): more adds little to a linear model
# and costs memory (training on 50,000 tasks stays under 300 MB, bench/triage_cost.py).
MAX_PER_TYPE = 800
MIN_HELD_BACK = 30         # fewer than this: cross-validate instead of comparing on held-back
RULES_EXAMPLE_WEIGHT = 1.0


@dataclass(frozen=True)
class TrainingResult:
    version: int
    activated: bool
    accuracy: float
    measured_on: int
    previous_accuracy: float | None
    examples: dict[str, int]
    seconds: float
    note: str = ""
    dropped: dict[str, int] = field(default_factory=dict)


def rule_examples(rulebook: Rulebook) -> list[Example]:
    """Day one: what the rules say about each type, and what is no request at all. Each example
    is also written out as an email (vague subject, greeting, small talk, sign-off), so that the
    model learns that the words every email has point nowhere. The rules' example mail is taken
    as written."""
    examples = []
    learnable = _learnable(rulebook)
    for request_type in rulebook.types:
        if request_type.name not in learnable:  # without examples, unknown to the model until history has some
            continue
        texts = [*request_type.examples, request_type.name, *request_type.aliases, *request_type.vocabulary]
        texts += [request_type.description] if request_type.description else []
        examples += [Example(RequestText(subject=t), request_type.name, RULES_EXAMPLE_WEIGHT, f"rules:{t}", "rules")
                     for t in texts]
        examples += [Example(as_email(t, i), request_type.name, RULES_EXAMPLE_WEIGHT, f"rules:mail:{t}", "rules")
                     for i, t in enumerate(request_type.examples)]
    for i, text in enumerate(rulebook.triage_model.out_of_scope):
        examples.append(Example(RequestText(subject=text), OUT_OF_SCOPE, RULES_EXAMPLE_WEIGHT, f"rules:{text}", "rules"))
        examples.append(Example(as_email(text, i), OUT_OF_SCOPE, RULES_EXAMPLE_WEIGHT, f"rules:mail:{text}", "rules"))
    for mail in rulebook.triage_model.example_mail:
        label = mail_label(rulebook, mail.label)
        if label is not None:
            key = f"rules:mail:example:{mail.source or zlib.crc32((mail.subject + mail.body).encode())}"
            examples.append(Example(RequestText(mail.subject, mail.body), label, RULES_EXAMPLE_WEIGHT, key, "rules"))
    return examples


def mail_label(rulebook: Rulebook, label: str) -> str | None:
    """The class an example mail's label names: a type (by name or alias), the out-of-scope
    class, or None for a type that is not in the rules (the mail is dropped)."""
    if normalise_label(label) == NOT_A_REQUEST:
        return OUT_OF_SCOPE
    found = rulebook.find_type(label)
    return found.name if found is not None else None


def unlearnt_mail(rulebook: Rulebook) -> Counter[str]:
    """Example mail whose label names no type in the rules, by label: dropped at training."""
    return Counter(m.label for m in rulebook.triage_model.example_mail if mail_label(rulebook, m.label) is None)


def _learnable(rulebook: Rulebook) -> set[str]:
    """The types with examples of their own, in a type's ``examples`` or in the example mail."""
    mailed = {mail_label(rulebook, m.label) for m in rulebook.triage_model.example_mail}
    return {t.name for t in rulebook.types if t.examples or t.name in mailed}


def lexicon_of(rulebook: Rulebook) -> Lexicon:
    """Each type's name, aliases and vocabulary, for the types the model can learn."""
    learnable = _learnable(rulebook)
    return Lexicon(tuple((t.name, (t.name, *t.aliases, *t.vocabulary)) for t in rulebook.types if t.name in learnable))


def history_examples(session: Session, rulebook: Rulebook) -> tuple[list[Example], Counter[str]]:
    """Typed and corrected tasks as examples, newest first, at most MAX_PER_TYPE per type;
    also how many were dropped because their type is no longer in the rules."""
    known = {t.name for t in rulebook.types}
    by_queue = Counter(t.queue for t in rulebook.types)
    queue_type = {t.queue: t.name for t in rulebook.types if by_queue[t.queue] == 1}
    taken: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    examples = []
    for row in store.labelled_texts(session):
        stored = row.text
        if stored.origin != "subject" and not stored.corrected:
            continue
        label = row.label or (queue_type.get(row.queue) if stored.corrected else None)
        if label is None:
            continue
        if label not in known:
            dropped[label] += 1
            continue
        if not stored.corrected and taken[label] >= MAX_PER_TYPE:
            continue
        taken[label] += 1
        text = RequestText(stored.subject, stored.body, stored.client, stored.type_word)
        weight, origin = (CORRECTION_WEIGHT, "correction") if stored.corrected else (1.0, "subject")
        examples.append(Example(text, label, weight, f"task:{row.task_id}", origin))
    return examples, dropped


def with_vague_twins(examples: list[Example]) -> list[Example]:
    """Each history example once more under a subject that says nothing ("Quick request"): typed
    requests name their work in the subject, mail in plain words often does not, and the model
    must learn to read the body. A twin shares its example's key, so both are trained on or
    both held back."""
    twins = [replace(e, text=replace(e.text, subject=vague_subject(i)), weight=e.weight / 2)
             for i, e in enumerate(examples) if e.origin != "rules" and e.text.body.strip()
             and (i % 2 == 0 or e.origin == "correction")]  # every other one: memory
    return examples + twins


@dataclass(frozen=True)
class Fitted:
    model: TriageModel
    measured: Measure
    method: str            # held-back | cross-validated
    note: str
    held_back: list[Example]
    examples: list[Example]


def fit_measured(rulebook: Rulebook, history: list[Example], staff: Mapping[str, tuple[str, ...]],
                 version: int) -> Fitted:
    """A model from the rules and ``history``: its accuracy from the held-back examples (or
    cross-validated while there are too few of them), its temperature from the rules' examples
    written out as emails (cross-validated)."""
    history = with_vague_twins(history)
    examples = rule_examples(rulebook) + [e for e in history if not e.held_back]
    held_back = [e for e in history if e.held_back]
    lexicon = lexicon_of(rulebook)
    if len(held_back) >= MIN_HELD_BACK:
        # The features first, then the folds, then the model: one model in memory at a time.
        vocabulary = features(examples, staff, lexicon)
        temperature = mail_temperature(examples, staff, lexicon, vocabulary)
        model = fit(examples, staff, version, lexicon=lexicon, vocabulary=vocabulary)
        if temperature is None:  # rules without examples: the held-back history is all there is
            labels, logits = probabilities(model, held_back, staff)
            temperature = temperature_for(labels, logits, model.classes)
        model = _with_temperature(model, temperature)
        return Fitted(model, measure(model, held_back, staff), "held-back", "", held_back, examples)
    found = read_all(examples, staff, lexicon)  # read once for the folds and the model
    result, temperature = cross_validate(examples, staff, lexicon=lexicon, found=found)
    model = fit(examples, staff, version, temperature, lexicon, found)
    note = f"only {len(held_back)} held-back examples: accuracy cross-validated, model taken"
    return Fitted(model, result, "cross-validated", note, held_back, examples)


def train(engine, config: Config, rulebook: Rulebook, now, force: bool = False) -> TrainingResult:  # type: ignore[no-untyped-def]
    """Fit a new model on everything known now; activate it if it is at least as accurate on the
    held-back examples as the active one (``force``: activate anyway). Raises ValueError when
    there is nothing to learn from (fewer than two types with examples)."""
    started = time.perf_counter()
    staff = greetings(config)
    with Session(engine) as session:
        history, dropped = history_examples(session, rulebook)
        dropped.update(unlearnt_mail(rulebook))
        current = store.active_row(session)
        version = store.next_version(session)
    fitted = fit_measured(rulebook, history, staff, version)
    model, result, method, note, examples = fitted.model, fitted.measured, fitted.method, fitted.note, fitted.examples
    counts = Counter(e.label for e in examples)
    previous = measure(store.load_model(current.id, current.data), fitted.held_back, staff).accuracy \
        if current is not None and method == "held-back" else None
    activate = force or previous is None or result.accuracy >= previous
    if not activate:
        note = f"not better than model {current.id if current else '-'} ({previous:.3f} on the same examples)"
    with write_turn(engine), Session(engine) as session, session.begin():  # one short write; intake takes turns
        row = TriageModelRow(id=version, trained_at=now, examples=len(examples), accuracy=result.accuracy,
                             measured_on=result.examples, data=store.dump_model(model),
                             summary=json.dumps(_summary(counts, result, method, note, dropped, previous)))
        store.save_model(session, row, activate)
    seconds = time.perf_counter() - started
    log.info("triage.trained", version=version, activated=activate, accuracy=round(result.accuracy, 4),
             measured_on=result.examples, examples=len(examples), seconds=round(seconds, 1), note=note or None)
    return TrainingResult(version, activate, result.accuracy, result.examples, previous, dict(counts), seconds,
                          note, dict(dropped))


def train_job(deps: IntakeDeps) -> Counter[str]:
    """The scheduled ``train`` job: retrain, and use the new model at once if it was kept."""
    try:
        result = train(deps.engine, deps.config, deps.rulebook, deps.clock.now())
    except ValueError as exc:
        log.warning("triage.not_trained", reason=str(exc))
        return Counter(skipped=1)
    if result.activated:
        deps.triage.refresh()
    return Counter(trained=1, activated=int(result.activated), examples=sum(result.examples.values()))


def _with_temperature(model, temperature: float):  # type: ignore[no-untyped-def]
    return replace(model, temperature=temperature)


def _summary(counts: Mapping[str, int], result: Measure, method: str, note: str, dropped: Mapping[str, int],
             previous: float | None) -> dict[str, object]:
    return {"examples_per_type": dict(sorted(counts.items())), "method": method, "confusion": result.confusion,
            "note": note, "dropped_types": dict(dropped), "previous_accuracy": previous}


def model_status(engine, rulebook: Rulebook) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What ``dispatchd triage status`` shows: the model in use, the ones before it, its errors."""
    with Session(engine) as session:
        rows = store.model_rows(session)
        routed, errors = store.model_routed(session), store.corrected_model_tasks(session)
        opinion = opinion_record(session)
    active = next((r for r in rows if r.active), None)
    queues = {t.name: t.queue for t in rulebook.types}
    wrong = [{"task": task_id, "predicted": predicted, "corrected_to": actual or f"queue {queue}"}
             for task_id, predicted, actual, queue in errors
             if actual != predicted or queue != queues.get(predicted, queue)]
    known = {t.name for t in rulebook.types}
    summary = store.summary(active) if active else {}
    per_type = summary.get("examples_per_type", {})
    return {
        "enabled": rulebook.triage_model.enabled, "threshold": rulebook.triage_model.threshold,
        "margin": rulebook.triage_model.margin,
        "active": None if active is None else {
            "version": active.id, "trained_at": active.trained_at.isoformat(timespec="seconds"),
            "examples": active.examples, "accuracy": active.accuracy, "measured_on": active.measured_on,
            "method": summary.get("method", ""), "note": summary.get("note", ""),
            "examples_per_type": {**{name: 0 for name in sorted(known)}, **per_type},
            "confusion": summary.get("confusion", {})},
        "never_predicted": sorted(name for name in known if not per_type.get(name)),
        "model_routed": routed, "model_errors": wrong,
        "second_opinion": {"routed": opinion.routed, "held": opinion.held, "failed_calls": opinion.failed_calls,
                           "corrected": [{"task": task_id, "type_now": kind, "queue_now": queue}
                                         for task_id, kind, queue in opinion.corrected]},
        "history": [{"version": r.id, "trained_at": r.trained_at.isoformat(timespec="seconds"),
                     "accuracy": r.accuracy, "examples": r.examples, "active": r.active} for r in rows],
    }
