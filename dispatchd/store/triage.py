"""The triage model in the database: its rows, its arrays as .npz bytes, what it reads of tasks.

A model is stored as NumPy arrays (``np.savez_compressed``, read back with ``allow_pickle=False``)
so that loading one from a shared database can never run code. Every instance on PostgreSQL
reads the same active row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from dispatchd.domain.triage import TriageModel
from dispatchd.domain.triage_text import Lexicon
from dispatchd.store.tables import RequestText, Task, TriageModelRow


def dump_model(model: TriageModel) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, classes=np.array(model.classes, dtype=str),
                        vocabulary=np.array(model.vocabulary, dtype=str), idf=model.idf.astype(np.float32),
                        weights=model.weights.astype(np.float32), intercept=model.intercept,
                        temperature=np.array([model.temperature]),
                        lexicon_types=np.array([n for n, phrases in model.lexicon.entries for _ in phrases], dtype=str),
                        lexicon_phrases=np.array([p for _, phrases in model.lexicon.entries for p in phrases], dtype=str))
    return buffer.getvalue()


def load_model(version: int, data: bytes) -> TriageModel:
    """Raises ValueError (or a zip/NumPy error) for bytes that are not a whole model."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return TriageModel.from_arrays(
            version, tuple(str(c) for c in arrays["classes"]), tuple(str(v) for v in arrays["vocabulary"]),
            arrays["idf"], arrays["weights"], arrays["intercept"], float(arrays["temperature"][0]),
            _lexicon(arrays["lexicon_types"], arrays["lexicon_phrases"]) if "lexicon_types" in arrays else None)


def _lexicon(types: np.ndarray, phrases: np.ndarray) -> Lexicon:
    grouped: dict[str, list[str]] = {}
    for name, phrase in zip(types, phrases):
        grouped.setdefault(str(name), []).append(str(phrase))
    return Lexicon(tuple((name, tuple(found)) for name, found in grouped.items()))


def active_version(session: Session) -> int | None:
    return session.exec(select(TriageModelRow.id).where(col(TriageModelRow.active))).first()


def active_row(session: Session) -> TriageModelRow | None:
    return session.exec(select(TriageModelRow).where(col(TriageModelRow.active))).first()


def next_version(session: Session) -> int:
    return int(session.exec(select(func.max(TriageModelRow.id))).one() or 0) + 1


def save_model(session: Session, row: TriageModelRow, activate: bool) -> None:
    if activate:
        session.execute(update(TriageModelRow).values(active=False))
    row.active = activate
    session.add(row)


def activate(session: Session, version: int) -> bool:
    """Make ``version`` the active model (a restore); False if there is no such model."""
    if session.get(TriageModelRow, version) is None:
        return False
    session.execute(update(TriageModelRow).values(active=False))
    session.execute(update(TriageModelRow).where(col(TriageModelRow.id) == version).values(active=True))
    return True


def model_rows(session: Session, limit: int = 10) -> list[TriageModelRow]:
    """The newest models first, without their arrays."""
    return list(session.exec(select(TriageModelRow).order_by(col(TriageModelRow.id).desc()).limit(limit)).all())


def summary(row: TriageModelRow) -> dict[str, Any]:
    return json.loads(row.summary) if row.summary else {}


@dataclass(frozen=True)
class LabelledText:
    task_id: int
    label: str | None
    queue: str
    text: RequestText
    created_at: datetime


def labelled_texts(session: Session, batch: int = 5000) -> Iterator[LabelledText]:
    """Every stored request text with its task's type and queue as they stand now (after any
    correction), newest first, read in batches."""
    query = (select(RequestText, Task.type, Task.queue).join(Task, col(Task.id) == col(RequestText.task_id))
             .order_by(col(RequestText.task_id).desc()))
    for text, label, queue in session.exec(query.execution_options(yield_per=batch)):
        yield LabelledText(text.task_id, label, queue, text, text.created_at)


def mark_corrected(session: Session, task_id: int) -> RequestText | None:
    """A person set this task's type or queue; returns its text row (None for older tasks)."""
    row = session.get(RequestText, task_id)
    if row is not None and not row.corrected:
        row.corrected = True
        session.add(row)
    return row


def model_routed(session: Session) -> int:
    """How many requests the model routed by itself."""
    return int(session.exec(select(func.count()).select_from(RequestText).where(RequestText.origin == "model")).one())


def corrected_model_tasks(session: Session, limit: int = 200) -> list[tuple[int, str, str | None, str]]:
    """Model-routed requests a person re-typed or re-queued since, newest first:
    (task, type predicted, type now, queue now)."""
    query = (select(RequestText.task_id, RequestText.predicted, Task.type, Task.queue)
             .join(Task, col(Task.id) == col(RequestText.task_id))
             .where(RequestText.origin == "model", col(RequestText.corrected))
             .order_by(col(RequestText.task_id).desc()).limit(limit))
    return [(task_id, predicted or "-", actual, queue) for task_id, predicted, actual, queue in session.exec(query).all()]
