"""The triage model at intake: loaded once, swapped atomically, asked about untyped requests.

``ModelSlot`` holds the active model of the database. It is read at start-up and again when a
training run or another instance (PostgreSQL) activates a newer version: intake looks at the
active version at most once a minute, and a new model replaces the old one in one assignment.
A corrupt or missing model is logged and intake routes as it always did, without it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatchd.config import Config
from dispatchd.domain.models import ParsedSubject, Priority, Request, RouteDecision
from dispatchd.domain.routing import Rulebook, route
from dispatchd.domain.subject import parse_subject
from dispatchd.domain.triage import Prediction, TriageModel, Verdict, decide
from dispatchd.domain.triage_text import MAX_BODY_CHARS, RequestText
from dispatchd.store import triage as store
from dispatchd.store.queries import insert_row
from dispatchd.store.tables import RequestText as RequestTextRow

log = structlog.get_logger("dispatchd.triage")

RECHECK_SECONDS = 60.0


class ModelSlot:
    """The model in use; ``current`` never blocks and is None when there is no usable model."""

    def __init__(self, engine: Engine | None = None):
        self.engine = engine
        self.model: TriageModel | None = None
        self._checked = -RECHECK_SECONDS
        self._lock = threading.Lock()
        self._failed: int | None = None

    def current(self) -> TriageModel | None:
        if self.engine is not None and time.monotonic() - self._checked >= RECHECK_SECONDS:
            self.refresh()
        return self.model

    def refresh(self) -> TriageModel | None:
        """Load the active model if it is not the one held (one small query otherwise)."""
        if self.engine is None or not self._lock.acquire(blocking=False):
            return self.model
        try:
            self._checked = time.monotonic()
            with Session(self.engine) as session:
                version = store.active_version(session)
                if version is None or (self.model is not None and self.model.version == version) \
                        or version == self._failed:
                    return self.model
                row = store.active_row(session)
            try:
                model = store.load_model(row.id, row.data) if row is not None and row.id is not None else None
            except Exception as exc:  # a corrupt row must not stop intake: route without the model
                self._failed = version
                log.error("triage.model_unreadable", version=version, error=f"{type(exc).__name__}: {exc}")
                return self.model
            self.model = model
            log.info("triage.model_loaded", version=version, features=len(model.vocabulary) if model else 0)
            return model
        except Exception as exc:  # the database away: keep what we have, try again later
            log.warning("triage.model_check_failed", error=f"{type(exc).__name__}: {exc}")
            return self.model
        finally:
            self._lock.release()


@dataclass(frozen=True)
class Classified:
    request: Request            # with the type set when the model routes it
    verdict: Verdict
    text: RequestText


def eligible(request: Request) -> bool:
    """A known client's request whose only problem is its type: no subject convention, or a
    type word we do not know. An explicit known type is never second-guessed."""
    return (request.type is None and request.client is not None and not request.from_staff
            and bool(request.problems)
            and all(p.startswith(("subject:", "type:")) for p in request.problems))


def request_text(request: Request) -> RequestText:
    """What the model reads of a request; the unknown type word of a well-formed subject counts."""
    parsed = parse_subject(request.subject)
    unknown_type = any(p.startswith("type:") for p in request.problems)
    type_word = parsed.type_label if isinstance(parsed, ParsedSubject) and unknown_type else None
    return RequestText(subject=request.description, body=request.body, client=request.client, type_word=type_word)


def greetings(config: Config) -> dict[str, tuple[str, ...]]:
    """Staff first names (lower case) → the queues they work in: whom a client greets says
    what the request is about (clients know who does what). The triage queue is left out: it
    holds every kind of work."""
    found: dict[str, tuple[str, ...]] = {}
    for person in config.staff:
        first = person.name.split()[0].lower() if person.name.strip() else ""
        queues = [q for q in person.queues if q != config.intake.triage_queue]
        if first:
            found[first] = tuple(dict.fromkeys((*found.get(first, ()), *queues)))
    return found


def classify(request: Request, model: TriageModel | None, rulebook: Rulebook, config: Config) -> Classified | None:
    """Ask the model about an eligible request; the request comes back typed when it is sure."""
    settings = rulebook.triage_model
    if model is None or not settings.enabled or not eligible(request):
        return None
    text = request_text(request)
    known = {t.name for t in rulebook.types}
    prediction = model.predict(text, greetings(config), mixed_from=min(settings.threshold, 0.5))
    # A type removed from the rules since training is never predicted.
    prediction = replace(prediction, guesses=tuple(g for g in prediction.guesses if g.type in known))
    return settle(request, text, prediction, rulebook)


def settle(request: Request, text: RequestText, prediction: Prediction, rulebook: Rulebook) -> Classified:
    """What the rules make of a prediction: the thresholds, and an emergency left to a person."""
    settings = rulebook.triage_model
    verdict = decide(prediction, settings.threshold, settings.margin, settings.follow_ups, rulebook.model_thresholds)
    if verdict.route_as is None:
        return Classified(request, verdict, text)
    typed = replace(request, type=verdict.route_as.type, problems=())
    routed = route(typed, rulebook)
    if routed.priority is Priority.P0 and (guessed := rulebook.find_type(verdict.route_as.type)) is not None \
            and guessed.priority is not Priority.P0:
        # The rules call it an emergency (an outage): a person sees it at once, not a queue the model picked.
        held = replace(verdict, route_as=None, reason=f"an emergency ({_rules_of(routed)}): a person routes it")
        return Classified(request, held, text)
    return Classified(typed, verdict, text)


def _rules_of(decision: RouteDecision) -> str:
    return ", ".join(r.removeprefix("rule ").split(" (")[0] for r in decision.reasons if r.startswith("rule ")) or "P0"


def with_verdict(decision: RouteDecision, classified: Classified | None) -> RouteDecision:
    """The model's part of the audit log: why it routed, or its suggestions and why it did not."""
    if classified is None:
        return decision
    verdict = classified.verdict
    if verdict.route_as is not None:
        return replace(decision, reasons=(verdict.reason, *decision.reasons))
    guesses = ", ".join(str(g) for g in verdict.suggestions) or "none"
    return replace(decision, reasons=(*decision.reasons,
                                      f"triage model {verdict.model_version}: {verdict.reason}; suggests {guesses}"))


def remember_text(session: Session, task_id: int, request: Request, classified: Classified | None,
                  now: datetime) -> None:
    """Keep what the model reads of a new task: it is tomorrow's training example."""
    text = classified.text if classified else request_text(request)
    verdict = classified.verdict if classified else None
    best = verdict.prediction.best if verdict else None
    origin = "model" if verdict and verdict.route_as else ("subject" if request.type and not classified else "triage")
    row = RequestTextRow(task_id=task_id, client=request.client, subject=text.subject[:1000],
                         body=(request.body or "")[:MAX_BODY_CHARS], type_word=text.type_word, origin=origin,
                         predicted=best.type if best else None, confidence=best.confidence if best else None,
                         model_version=verdict.model_version if verdict else None, corrected=False, created_at=now)
    insert_row(session, RequestTextRow, row)
