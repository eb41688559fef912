"""Fitting the triage model with scikit-learn, and measuring one on labelled examples.

The only importer of scikit-learn. It fits sklearn's TF-IDF (CountVectorizer; TfidfTransformer's
smooth idf and sublinear tf, written out to work in place) over ``triage_text.tokens`` (word,
word-pair, subject and character n-gram features, each kind at its ``FEATURE_WEIGHTS``) and a
multinomial logistic regression, then hands back plain arrays as a ``domain.triage.TriageModel``:
what prediction uses, what the database stores (no pickle), and the same arithmetic (a unit test
holds the two together).
"""

from __future__ import annotations

import math
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatchd.domain.triage import TriageModel, short_text_scale
from dispatchd.domain.triage_text import Lexicon, RequestText, feature_weight, tokens

# Strength of the regularisation (sklearn's C); chosen on the own free-form set and blind set A
# (bench/triage_tune.py), never on B or C.
REGULARISATION = 4.0
MAX_FEATURES = 80_000
# The sharpest temperature a fit may choose. It is fitted on clean single requests (the rules'
# examples); mail in plain words is messier, and after history the fit wants 0.17. On blind mail
# (bench/triage_eval/blind, after history, right / routed wrong %, short texts half at 10 words):
#   0.2:  A-E 89.3/3.0  F 81.3/6.0  G 80.0/8.7      0.3: A-E 87.1/1.9  F 80.0/3.3  G 76.7/6.7
# A request routed wrong goes silently to the wrong team; one held waits a minute for a person.
MIN_TEMPERATURE = 0.3


@dataclass(frozen=True)
class Example:
    """One labelled request. ``key`` is stable (e.g. ``task:42``): it decides whether the
    example is held back for measuring; ``weight`` makes corrections count more."""

    text: RequestText
    label: str
    weight: float = 1.0
    key: str = ""
    origin: str = "rules"   # rules | subject | correction

    def fold(self, folds: int) -> int:
        """Cross-validation fold: an example and its written-out email always share one."""
        return zlib.crc32(self.key.replace("mail:", "", 1).encode()) % folds

    @property
    def is_mail(self) -> bool:
        """A whole request (history, or a rules example written out as an email), not a bare phrase."""
        return self.origin != "rules" or self.key.startswith("rules:mail:")

    @property
    def held_back(self) -> bool:
        """One in five history examples, always the same ones, is never trained on."""
        return self.origin != "rules" and zlib.crc32(self.key.encode()) % 5 == 0


@dataclass(frozen=True)
class Measure:
    examples: int
    correct: int
    confusion: dict[str, dict[str, int]]   # true type → predicted type → count

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples if self.examples else 0.0


def fit(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]], version: int,
        temperature: float = 1.0, lexicon: Lexicon | None = None,
        found: Sequence[list[str]] | None = None, vocabulary: Sequence[str] | None = None) -> TriageModel:
    """A model from ``examples`` (at least two labels needed). ``found``: their tokens, when the
    caller has them already (cross-validation reads each example once, not once a fold);
    ``vocabulary``: the features to use, when they were chosen already."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits  # after scipy's import: it limits the BLAS loaded by then

    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise ValueError("the triage model needs examples of at least two types")
    # Without ``found``, the tokens are made twice (counting, then the matrix) rather than held:
    # at 50,000 tasks holding them all was most of training's memory.
    texts: Sequence[Any] = found if found is not None else examples
    analyze: Callable[[Any], list[str]] = _as_is if found is not None else (
        lambda e: tokens(e.text, greetings, lexicon))
    by_column = list(vocabulary or _vocabulary(map(analyze, texts), len(texts)))
    counts = _counts(texts, analyze, by_column)
    # Sublinear tf × idf × each kind of feature's weight, then the l2 norm: the weight goes into
    # the stored idf, so that prediction (tf × idf, normalised) is the same arithmetic. This is
    # TfidfTransformer(sublinear_tf=True, smooth_idf=True) done in place, a chunk at a time: at
    # 50,000 tasks the matrix is some 35 MB, and its fit and transform made copies as large.
    scale = np.array([feature_weight(t) for t in by_column], dtype=np.float32)
    documents = np.zeros(len(by_column), dtype=np.int64)
    for start in range(0, counts.nnz, SCALE_CHUNK):  # bincount copies int32 columns to int64: 35 MB at once
        documents += np.bincount(counts.indices[start:start + SCALE_CHUNK], minlength=len(by_column))
    idf = np.log((1 + counts.shape[0]) / (1 + documents)) + 1.0
    weighted = (idf * scale).astype(np.float32)
    matrix = counts
    for start in range(0, matrix.nnz, SCALE_CHUNK):
        part = slice(start, start + SCALE_CHUNK)
        data = matrix.data[part]
        np.log(data, out=data)
        data += 1.0
        data *= weighted[matrix.indices[part]]
    matrix = normalize(matrix, norm="l2", copy=False)
    weights = _balanced(examples)
    classifier = LogisticRegression(C=REGULARISATION, solver="newton-cg", tol=1e-4, max_iter=100)
    # One BLAS thread: the solver calls BLAS on vectors too small to share, and with OpenBLAS's
    # threads it spent most of training waiting on them (L-BFGS on day one: 24 s on two busy
    # cores, 3 s with one thread; the same model either way).
    with threadpool_limits(limits=1, user_api="blas"):
        classifier.fit(matrix, [e.label for e in examples], sample_weight=weights)
    coef, intercept = classifier.coef_, classifier.intercept_
    if len(classifier.classes_) == 2:  # sklearn keeps one row for two classes: make it a softmax of two
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return TriageModel.from_arrays(version, tuple(str(c) for c in classifier.classes_), tuple(by_column),
                                   idf * scale, coef.T, intercept, temperature, lexicon)


COUNT_CHUNK = 2000  # examples counted at a time
SCALE_CHUNK = 1 << 20  # matrix entries weighted at a time


def _counts(texts: Sequence[Any], analyze: Callable[[Any], list[str]], vocabulary: list[str]) -> Any:
    """The examples' token counts as one sparse matrix (float32), counted a chunk at a time:
    sklearn counts into Python lists of every example's columns before it builds the matrix,
    and at 50,000 tasks those lists, for all examples at once, were training's peak memory.
    The chunks are copied into the whole and freed one by one (vstack held both at once)."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import CountVectorizer

    counter = CountVectorizer(analyzer=analyze, lowercase=False, vocabulary=vocabulary, dtype=np.float32)
    chunks = [counter.transform(texts[i:i + COUNT_CHUNK]) for i in range(0, len(texts), COUNT_CHUNK)]
    entries = sum(chunk.nnz for chunk in chunks)
    data = np.empty(entries, dtype=np.float32)   # pages are taken as they are written
    indices = np.empty(entries, dtype=np.int32)
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    at = row = 0
    chunks.reverse()
    while chunks:
        chunk = chunks.pop()
        data[at:at + chunk.nnz] = chunk.data
        indices[at:at + chunk.nnz] = chunk.indices
        indptr[row + 1:row + 1 + chunk.shape[0]] = chunk.indptr[1:] + at
        at, row = at + chunk.nnz, row + chunk.shape[0]
    return csr_matrix((data, indices, indptr), shape=(len(texts), len(vocabulary)))


def features(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]],
             lexicon: Lexicon | None) -> list[str]:
    """The features a model of ``examples`` uses (what ``fit`` chooses when not given them)."""
    return _vocabulary((tokens(e.text, greetings, lexicon) for e in examples), len(examples))


def read_all(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]],
             lexicon: Lexicon | None) -> list[list[str]]:
    """Every example's tokens, to be used more than once. Interned: the same n-gram in a thousand
    examples is one string, not a thousand (day-one training peaked at 420 MB without)."""
    return [[sys.intern(t) for t in tokens(e.text, greetings, lexicon)] for e in examples]


def _as_is(found: list[str]) -> list[str]:
    return found


def _vocabulary(found: Iterable[list[str]], examples: int) -> list[str]:
    """The features kept: in at least two examples (one on a small set), the MAX_FEATURES most
    frequent. Counted first, so that sklearn never holds the long tail of one-off character
    n-grams (at 50,000 tasks that tail was most of training's memory)."""
    frequency: Counter[str] = Counter()
    for tokens_of in found:
        frequency.update(set(tokens_of))
    least = 1 if examples < 3000 else 2
    kept = [token for token, count in frequency.most_common(MAX_FEATURES) if count >= least]
    return sorted(kept)


def _balanced(examples: Sequence[Example]) -> np.ndarray:
    """Each type weighs the same in total whatever its share of history; within a type,
    an example's own weight (corrections) counts."""
    totals = Counter[str]()
    for e in examples:
        totals[e.label] += e.weight
    mean = sum(totals.values()) / len(totals)
    return np.array([e.weight * mean / totals[e.label] for e in examples])


def probabilities(model: TriageModel, examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]],
                  found: Sequence[list[str]] | None = None) -> tuple[list[str], np.ndarray]:
    """Labels and the model's untempered logits for each example, one row per example, scaled
    as prediction scales them by how many known words the example has (short_text_scale)."""
    labels, rows = [], []
    for i, e in enumerate(examples):
        columns, values = model.vector(found[i] if found is not None else tokens(e.text, greetings, model.lexicon))
        rows.append(model.logits(columns, values) * short_text_scale(int(model.is_word[columns].sum())))
        labels.append(e.label)
    return labels, np.array(rows).reshape(len(rows), len(model.classes))


def measure(model: TriageModel, examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]]) -> Measure:
    labels, logits = probabilities(model, examples, greetings)
    return _measure(labels, [model.classes[int(i)] for i in logits.argmax(axis=1)] if len(labels) else [])


def _measure(labels: list[str], predicted: list[str]) -> Measure:
    confusion: dict[str, dict[str, int]] = {}
    for truth, guess in zip(labels, predicted):
        confusion.setdefault(truth, {}).setdefault(guess, 0)
        confusion[truth][guess] += 1
    return Measure(len(labels), sum(t == p for t, p in zip(labels, predicted)), confusion)


def temperature_for(labels: list[str], logits: np.ndarray, classes: tuple[str, ...]) -> float:
    """The temperature that makes the probabilities honest on examples the model did not see
    (least negative log-likelihood over a grid): a 0.9 then means right about nine times in ten."""
    if not labels:
        return 1.0
    index = {c: i for i, c in enumerate(classes)}
    rows = np.array([index.get(label, -1) for label in labels])
    keep = rows >= 0
    logits, rows = logits[keep], rows[keep]
    if not len(rows):
        return 1.0
    best, best_loss = 1.0, math.inf
    for temperature in np.exp(np.linspace(math.log(MIN_TEMPERATURE), math.log(5.0), 41)):
        scaled = logits / temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        loss = float(np.mean(log_norm - scaled[np.arange(len(rows)), rows]))
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best


def _out_of_fold(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]], lexicon: Lexicon | None,
                 fold_of: Sequence[int], folds: int, found: Sequence[list[str]] | None = None,
                 vocabulary: Sequence[str] | None = None) -> Iterator[tuple[list[int], np.ndarray]]:
    """For each fold, its examples' indices and their untempered logits (columns: the labels,
    sorted) from a model fitted on all the others; an example of fold -1 is always trained on.
    A fold whose training lacks a label is skipped."""
    labels = {e.label for e in examples}
    for fold in range(folds):
        test = [i for i, f in enumerate(fold_of) if f == fold]
        train = [i for i, f in enumerate(fold_of) if f != fold]
        if not test or {examples[i].label for i in train} != labels:
            continue
        model = fit([examples[i] for i in train], greetings, 0, lexicon=lexicon,
                    found=None if found is None else [found[i] for i in train], vocabulary=vocabulary)
        _, logits = probabilities(model, [examples[i] for i in test], greetings,
                                  None if found is None else [found[i] for i in test])
        del model  # not alive beside the next fold's while that one is fitted
        yield test, logits


def mail_temperature(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]],
                     lexicon: Lexicon | None, vocabulary: Sequence[str], folds: int = 3) -> float | None:
    """The temperature that makes the model honest on mail in plain words: cross-validated over
    the rules' examples written out as emails, everything else always trained on. The held-back
    history is well-formed mail, easy to place, and a few dozen of it set the temperature anywhere
    between 0.23 and 0.48 depending on which requests happened to be held back (the same blind
    mail then 83.5 to 88.3 % right); this one stays put. None when there are no such examples.
    ``vocabulary``: the whole set's features. Choosing them by how often they occur knows no
    label, and counting them again for every fold was most of training's memory at 50,000 tasks."""
    fold_of = [e.fold(folds) if e.origin == "rules" and e.is_mail else -1 for e in examples]
    labels: list[str] = []
    rows: list[np.ndarray] = []
    for test, logits in _out_of_fold(examples, greetings, lexicon, fold_of, folds, vocabulary=vocabulary):
        labels += [examples[i].label for i in test]
        rows.append(logits)
    return temperature_for(labels, np.vstack(rows), tuple(sorted({e.label for e in examples}))) if rows else None


def cross_validate(examples: Sequence[Example], greetings: Mapping[str, tuple[str, ...]],
                   folds: int = 5, lexicon: Lexicon | None = None,
                   found: Sequence[list[str]] | None = None) -> tuple[Measure, float]:
    """Out-of-fold accuracy and temperature when there is too little history to hold any back."""
    labels: list[str] = []
    predicted: list[str] = []
    all_logits: list[np.ndarray] = []
    whole_mail: list[bool] = []
    classes = tuple(sorted({e.label for e in examples}))
    found = found if found is not None else read_all(examples, greetings, lexicon)
    for test, logits in _out_of_fold(examples, greetings, lexicon, [e.fold(folds) for e in examples], folds,
                                     found=found):
        labels += [examples[i].label for i in test]
        predicted += [classes[int(i)] for i in logits.argmax(axis=1)]
        all_logits.append(logits)
        whole_mail += [examples[i].is_mail for i in test]
    if not labels:
        return Measure(0, 0, {}), 1.0
    # The temperature from whole emails only: a bare word such as "banner" is easy to place, and
    # calibrated on those the model would be as sure of a vague email as of a clear word.
    keep = np.array(whole_mail) if any(whole_mail) else np.ones(len(labels), dtype=bool)
    calibrated = temperature_for([label for label, k in zip(labels, keep) if k], np.vstack(all_logits)[keep], classes)
    return _measure(labels, predicted), calibrated
