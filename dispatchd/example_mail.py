"""Loading ``rules/example-mail/*.jsonl``: labelled requests as clients write them, one JSON
object per line (``label``, ``subject``, ``body``, optional ``source`` and ``note``).

They teach the triage model from day one how plain-words mail asks for each kind of work, and
what mail asks for none (``"label": "not a request"``). Whole mail, greetings and signatures
included, is what the model reads in production; a type's ``examples`` are single sentences.
Labels are checked at training, not here: mail for a type an owner removed is dropped then, as
history of it is, so removing a type never needs the corpus edited.
"""

from __future__ import annotations

import json
from pathlib import Path

from dispatchd.domain.routing import ExampleMail
from dispatchd.errors import Problem

DIRECTORY = "example-mail"
FIELDS = frozenset({"label", "subject", "body", "source", "note"})


def load_example_mail(rules_dir: Path) -> tuple[tuple[ExampleMail, ...], list[Problem]]:
    """Every example mail under ``rules_dir/example-mail/``, files by name; the problems name file and line."""
    found: list[ExampleMail] = []
    problems: list[Problem] = []
    for path in sorted((rules_dir / DIRECTORY).glob("*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(path, None, "", f"cannot be read: {error}"))
            continue
        for number, line in enumerate(lines, start=1):
            if line.strip():
                mail = _example(line, path, number, problems)
                if mail is not None:
                    found.append(mail)
    return tuple(found), problems


def _example(line: str, path: Path, number: int, problems: list[Problem]) -> ExampleMail | None:
    def refuse(key: str, reason: str) -> None:
        problems.append(Problem(path, number, key, reason))

    try:
        raw = json.loads(line)
    except json.JSONDecodeError as error:
        refuse("", f"not a JSON object: {error.msg} at column {error.colno}")
        return None
    if not isinstance(raw, dict):
        refuse("", "not a JSON object: each line is one mail, {\"label\": …, \"subject\": …, \"body\": …}")
        return None
    for key in sorted(set(raw) - FIELDS):
        refuse(key, f"unknown field; known: {', '.join(sorted(FIELDS))}")
    values = {}
    for key in ("label", "subject", "body", "source"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            refuse(key, f"must be a string, not {type(value).__name__}")
            return None
        values[key] = value
    if not values["label"].strip():
        refuse("label", 'missing: a type\'s name, or "not a request"')
        return None
    if not (values["subject"].strip() or values["body"].strip()):
        refuse("body", "the mail has neither subject nor body")
        return None
    return ExampleMail(values["label"].strip(), values["subject"], values["body"], values["source"])
