"""The triage model's prediction: features → type guesses with confidences and the words behind them.

Pure: a fitted model is plain arrays (vocabulary, idf, weights, intercepts, a temperature),
made by ``flows/training.py`` and loaded by ``store/models.py``. The arithmetic is sklearn's
TfidfVectorizer (sublinear tf, idf, l2 norm) followed by a multinomial logistic regression,
written out here so that prediction needs neither pickle nor sklearn and costs well under 1 ms.

Who decides: ``decide`` routes only when the best guess reaches the owner's threshold and
clearly beats the second one (mixed requests abstain); mail that looks like no request at all
(the ``OUT_OF_SCOPE`` class, learnt from ``[triage] out_of_scope`` examples) stays in triage.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from dispatchd.domain.triage_text import (STOPWORDS, Lexicon, RequestText, addressed_in, asks, clean_body,
                                           nothing_asked, says_separate, segments, shown, tokens)

OUT_OF_SCOPE = "(not a request)"
MIN_EVIDENCE = 3   # known words below this: too little text to guess from (a forward with no word of its own)
# A sentence this sure (untempered: filler such as "budget as usual" stays below it) of another
# type than another sentence's: the request is mixed.
SEGMENT_CONFIDENCE = 0.5
SHORT_TEXT_WORDS = 7  # known words at which a text's scores count half (short_text_scale)


@dataclass(frozen=True)
class Guess:
    type: str
    confidence: float
    words: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.type} ({self.confidence:.2f})"


@dataclass(frozen=True)
class Prediction:
    version: int
    guesses: tuple[Guess, ...]      # the request types, best first (the out-of-scope class aside)
    out_of_scope: float = 0.0
    evidence: int = 0               # how many of the request's words (not n-grams or tags) the model knows
    mixed: tuple[str, ...] = ()     # types that different sentences ask for, when more than one
    mixed_asking: tuple[str, ...] = ()  # the same, from sentences that ask themselves ("could you …", "we need …")
    separate: bool = False          # the mail says its asks are separate ("two things", "separately")
    addressed: tuple[str, ...] = ()  # the staff it turns to, when they share no queue ("Hi Dev and Ana")
    nothing_asked: str = ""         # what it is when it asks for no work: "a sign-off of delivered work"

    @property
    def best(self) -> Guess | None:
        return self.guesses[0] if self.guesses else None


@dataclass(frozen=True)
class Verdict:
    """What to do with a prediction: route as ``route_as`` or leave it in triage, and why."""

    prediction: Prediction
    route_as: Guess | None
    reason: str
    suggestions: tuple[Guess, ...] = ()

    @property
    def model_version(self) -> int:
        return self.prediction.version


@dataclass(frozen=True)
class TriageModel:
    version: int
    classes: tuple[str, ...]
    vocabulary: tuple[str, ...]
    idf: np.ndarray           # (features,)
    weights: np.ndarray       # (features, classes): row gathers are contiguous
    intercept: np.ndarray     # (classes,)
    temperature: float = 1.0
    lexicon: Lexicon = field(default_factory=Lexicon)
    index: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    shown_words: tuple[str | None, ...] = field(default=(), compare=False, repr=False)  # per column
    is_word: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), compare=False, repr=False)

    @classmethod
    def from_arrays(cls, version: int, classes: tuple[str, ...], vocabulary: tuple[str, ...], idf: np.ndarray,
                    weights: np.ndarray, intercept: np.ndarray, temperature: float,
                    lexicon: Lexicon | None = None) -> TriageModel:
        if weights.shape != (len(vocabulary), len(classes)) or idf.shape != (len(vocabulary),) \
                or intercept.shape != (len(classes),):
            raise ValueError("triage model arrays do not fit together")
        if not temperature > 0:
            raise ValueError("triage model temperature must be positive")
        words = tuple(None if (w := shown(t)) is None or w in STOPWORDS else w for t in vocabulary)
        return cls(version, classes, vocabulary, idf.astype(np.float64), np.ascontiguousarray(weights, np.float64),
                   intercept.astype(np.float64), float(temperature), lexicon or Lexicon(),
                   {token: i for i, token in enumerate(vocabulary)}, words,
                   np.array([w is not None for w in words], dtype=bool))

    def predict(self, request: RequestText, greetings: Mapping[str, tuple[str, ...]] | None = None,
                reasons: int = 3, mixed_from: float = 0.0) -> Prediction:
        """Probabilities for every class, and for each the words that pushed it up most.
        Whether the sentences ask for different types is checked only when the best guess
        reaches ``mixed_from`` (below the threshold it stays in triage anyway)."""
        columns, values = self.vector(tokens(request, greetings, self.lexicon))
        evidence = int(self.is_word[columns].sum())
        probabilities = _softmax(self.logits(columns, values) * short_text_scale(evidence) / self.temperature)
        order = np.argsort(-probabilities)
        guesses = []
        out_of_scope = 0.0
        for rank, k in enumerate(order):
            name = self.classes[k]
            if name == OUT_OF_SCOPE:
                out_of_scope = float(probabilities[k])
                continue
            why = self._words_for(k, order, columns, values, reasons) if rank < 3 else ()
            guesses.append(Guess(name, float(probabilities[k]), why))
        best = guesses[0].confidence if guesses else 0.0
        named = self._named(request, guesses)
        mixed, mixed_asking = self._mixed(request) if best >= mixed_from and not named else ((), ())
        return Prediction(self.version, tuple(guesses), out_of_scope, evidence, mixed,
                          mixed_asking, says_separate(request),
                          () if named else _addressed_apart(request, greetings or {}), nothing_asked(request))

    def logits(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The untempered score of every class for a vector from ``vector``."""
        return self.intercept + (values @ self.weights[columns] if len(columns) else 0.0)

    def _probabilities(self, columns: np.ndarray, values: np.ndarray, temperature: float | None = None) -> np.ndarray:
        return _softmax(self.logits(columns, values) / (temperature or self.temperature))

    def _named(self, request: RequestText, guesses: list[Guess]) -> bool:
        """The client's own type word (``[Acme] - [layout] - …``) is in the vocabulary of the best
        guess and of no other type: the client said what it is, whatever else the body mentions."""
        if not request.type_word or not guesses:
            return False
        return set(self.lexicon.hits(request.type_word)) == {"x:" + guesses[0].type}

    def _mixed(self, request: RequestText) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The types that the body's segments ask for with confidence, when they differ; and
        the same from the segments that ask in words of their own (not items of a list)."""
        parts = segments(request)
        if len(parts) < 2:
            return (), ()
        found: dict[str, None] = {}
        asking: dict[str, None] = {}
        for part in parts:
            columns, values = self.vector(tokens(part, None, self.lexicon))
            if len(columns) < MIN_EVIDENCE:
                continue
            probabilities = self._probabilities(columns, values, temperature=1.0)
            k = int(probabilities.argmax())
            if probabilities[k] >= SEGMENT_CONFIDENCE and self.classes[k] != OUT_OF_SCOPE:
                found[self.classes[k]] = None
                if asks(part.body):
                    asking[self.classes[k]] = None
        return (tuple(found) if len(found) > 1 else ()), (tuple(asking) if len(asking) > 1 else ())

    def vector(self, found: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The request's TF-IDF vector as (columns, values): sublinear tf, idf, l2 norm."""
        index = self.index
        known = [(index[t], n) for t, n in Counter(found).items() if t in index]
        if not known:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        pairs = np.array(known, dtype=np.intp)
        columns, tf = pairs[:, 0], pairs[:, 1].astype(np.float64)
        values = (1.0 + np.log(tf)) * self.idf[columns]
        norm = math.sqrt(float(values @ values))
        return columns, values / norm if norm else values

    def _words_for(self, k: int, order: np.ndarray, columns: np.ndarray, values: np.ndarray,
                   limit: int) -> tuple[str, ...]:
        """Words whose weight for class k most exceeds their weight for the strongest rival."""
        if not len(columns):
            return ()
        rival = int(order[1] if order[0] == k else order[0]) if len(order) > 1 else k
        words = np.flatnonzero(self.is_word[columns])
        if not len(words):
            return ()
        rows = self.weights[columns[words]]
        lift = values[words] * (rows[:, k] - (rows[:, rival] if rival != k else 0.0))
        picked: list[str] = []
        for i in np.argsort(-lift)[:limit * 4]:
            text = self.shown_words[columns[words[i]]]
            if lift[i] <= 0 or len(picked) >= limit:
                break
            if text is None or any(text in p or p in text for p in picked):
                continue
            picked.append(text)
        return tuple(picked)


def _addressed_apart(request: RequestText, greetings: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The staff a mail greets ("Hi Dev and Ana,") or asks by name ("– Dev, can you fix it?") when
    no queue is common to them all: the client wants the work of more than one team. () when it
    turns to one person, or to people of one queue."""
    body = clean_body(request.body)
    greeted = (body.greeted, *body.also_greeted, *addressed_in(body.text, greetings))
    names = list(dict.fromkeys(n for n in greeted if n and greetings.get(n)))
    if len(names) < 2:
        return ()
    common = set.intersection(*(set(greetings[n]) for n in names))
    return () if common else tuple(names)


def short_text_scale(evidence: int) -> float:
    """How far to trust a text's scores by how many known words it has. A vector is normalised,
    so three words ("got it, thanks" under "Re: case study – final", "the website. We need to
    talk.") weigh as much as a page, and a linear model is as sure of them as of the page; each
    word more is more reason to be sure. The temperature is fitted to the scaled scores."""
    known = max(evidence, 1)
    return known / (known + SHORT_TEXT_WORDS)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def decide(prediction: Prediction, threshold: float, margin: float = 0.2,
           follow_ups: frozenset[str] | tuple[str, ...] = (), type_thresholds: Mapping[str, float] | None = None
           ) -> Verdict:
    """Route when the best guess reaches ``threshold`` (or its type's own, ``type_thresholds``)
    and leads the second by ``margin``; otherwise keep it in triage with the top three as
    suggestions. ``follow_ups``: types whose requests are about earlier work of another type
    (changes to a delivered text name the text): such a type beside one other is no mixed request."""
    guesses = prediction.guesses
    suggestions = tuple(g for g in guesses[:3] if g.confidence >= 0.05) or guesses[:1]
    best = prediction.best
    if best is None:
        return Verdict(prediction, None, "the model knows no request type yet")
    if prediction.evidence < MIN_EVIDENCE:
        return Verdict(prediction, None, "too little text to guess from", suggestions)
    if prediction.nothing_asked:
        return Verdict(prediction, None, f"looks like {prediction.nothing_asked}, asking for nothing", suggestions)
    if prediction.out_of_scope >= best.confidence:
        return Verdict(prediction, None, f"looks like no request of a known type ({prediction.out_of_scope:.2f})",
                       suggestions)
    if prediction.addressed:
        people = " and ".join(n.capitalize() for n in prediction.addressed)
        return Verdict(prediction, None, f"mixed: it is addressed to {people}, who work in different queues",
                       suggestions)
    # A change to delivered work names that work ("the typo in the blog post"): not mixed, unless
    # the mail says its asks are separate ("two things: … and separately …"). Its list of points
    # names faults of that work ("- the logo is tiny on mobile"), which read like design or web
    # work on their own: only sentences that ask for something make it mixed.
    mixed = prediction.mixed_asking if best.type in follow_ups else prediction.mixed
    if len(set(mixed) - (set() if prediction.separate else set(follow_ups))) > 1:
        asked = tuple(g for t in mixed for g in guesses if g.type == t)
        return Verdict(prediction, None, f"mixed: it asks for {' and '.join(mixed)} work", asked)
    threshold = (type_thresholds or {}).get(best.type, threshold)
    if best.confidence < threshold:
        return Verdict(prediction, None, f"not sure: {best} is below the threshold {threshold:.2f}", suggestions)
    second = guesses[1].confidence if len(guesses) > 1 else 0.0
    if best.confidence - second < margin:
        return Verdict(prediction, None, f"mixed: {best} and {guesses[1]} are too close", suggestions)
    return Verdict(prediction, best, audit_reason(prediction.version, best), suggestions)


def audit_reason(version: int, guess: Guess) -> str:
    """``classified Design (0.91) by triage model 14 — "banner", "spring sale", "resize"``."""
    quoted = ", ".join(f'"{w}"' for w in guess.words)
    return f"classified {guess.type} ({guess.confidence:.2f}) by triage model {version}" + (f" — {quoted}" if quoted else "")


def suggestion_lines(verdict: Verdict) -> list[str]:
    """One line per suggestion for the reviewer: the reply that applies it, and why."""
    lines = []
    for guess in verdict.suggestions:
        words = ", ".join(f'"{w}"' for w in guess.words)
        lines.append(f"type {guess.type}   ({guess.confidence:.0%}{': ' + words if words else ''})")
    return lines
