"""Reading TOML files so that every refusal can name the file, the line and the key."""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from dispatchd.errors import Problem

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


@dataclass
class TomlFile:
    """A parsed TOML document plus the lines its keys came from."""

    path: Path
    data: dict[str, Any]
    lines: list[str]
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, key_path: tuple[str | int, ...]) -> int | None:
        """Best-effort line number of ``key_path`` such as ("staff", 1, "email")."""
        table: tuple[str | int, ...] = ()
        array_counts: dict[str, int] = {}
        best: int | None = None
        for number, text in enumerate(self.lines, start=1):
            header = _HEADER.match(text)
            if header:
                name = header.group(2).strip()
                if header.group(1) == "[[":
                    array_counts[name] = array_counts.get(name, -1) + 1
                    table = (*name.split("."), array_counts[name])
                else:
                    table = tuple(name.split("."))
                if table == key_path:
                    return number
                if key_path[: len(table)] == table and best is None:
                    best = number
                continue
            key = _KEY.match(text)
            if key:
                full = (*table, *key.group(1).strip("\"'").split("."))
                if full == key_path[: len(full)] and len(full) >= len(table) + 1:
                    if full == key_path or key_path[: len(full)] == full:
                        return number
        return best

    def problem(self, key_path: tuple[str | int, ...], reason: str) -> None:
        """Record a problem at ``key_path``; rendered later as file:line: key: reason."""
        label = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in key_path)
        label = label.replace(".[", "[")
        self.problems.append(Problem(self.path, self.line_of(key_path), label, reason))


def load_toml(path: Path) -> TomlFile:
    """Parse ``path``; a syntax error becomes a one-problem TomlFile with empty data."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return TomlFile(path, {}, [], [Problem(path, None, "", f"cannot read: {exc.strerror}")])
    lines = text.splitlines()
    try:
        data = copy.deepcopy(_parse(text))  # a copy: whoever reads it may not change the cache's
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        return TomlFile(path, {}, lines, [Problem(path, line, "", f"not valid TOML: {exc}")])
    return TomlFile(path, data, lines)


@lru_cache(maxsize=16)
def _parse(text: str) -> dict[str, Any]:
    """Parsed once per text: the rules' examples are 600 KB of TOML (60 ms to parse, 2 ms to
    copy), read at every start, reload and ``check``, and by a test process hundreds of times."""
    return tomllib.loads(text)


class Reader:
    """Typed, located access to one table of a TomlFile; collects problems instead of raising."""

    def __init__(self, doc: TomlFile, table: dict[str, Any], path: tuple[str | int, ...]):
        self.doc = doc
        self.table = table
        self.path = path
        self.known: set[str] = set()

    def _get(self, key: str, kind: type | tuple[type, ...], default: Any, required: bool) -> Any:
        self.known.add(key)
        if key not in self.table:
            if required:
                self.doc.problem((*self.path, key), "is required")
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.doc.problem((*self.path, key), f"must be a {name}, not {type(value).__name__}")
            return default
        return value

    def either(self, key: str, kinds: tuple[type, ...], default: Any = None) -> Any:
        """A value that may be of several types (``true`` or ``"authenticated"``)."""
        self.known.add(key)
        value = self.table.get(key, default)
        if not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.doc.problem((*self.path, key), f"must be a {names}, not {type(value).__name__}")
            return default
        return value

    def str(self, key: str, default: str | None = None, required: bool = False) -> Any:
        return self._get(key, str, default, required)

    def int(self, key: str, default: int | None = None, required: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self._get(key, int, default, required)
        if isinstance(value, int) and key in self.table:
            if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
                self.problem(key, f"must be between {minimum} and {maximum}, not {value}")
                return default
        return value

    def float(self, key: str, default: float | None = None) -> Any:
        return self._get(key, float, default, False)

    def bool(self, key: str, default: bool = False) -> bool:
        return self._get(key, bool, default, False)

    def day(self, key: str) -> date | None:
        """A calendar day, written as a TOML date (2026-12-01) or a string ("2026-12-01")."""
        value = self._get(key, (str, date), None, False)
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.problem(key, f"must be a day such as 2026-12-01, not {value!r}")
            return None

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None,
               required: bool = False) -> Any:
        value = self.str(key, default, required)
        if value is not None and value not in choices:
            self.problem(key, f"must be one of {', '.join(choices)}; got {value!r}")
            return default
        return value

    def str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self._get(key, (list, str), list(default), False)
        if isinstance(value, str):
            value = [value]
        if not all(isinstance(item, str) for item in value):
            self.problem(key, "must be a list of strings")
            return default
        return tuple(value)

    def table_of(self, key: str) -> Reader:
        value = self._get(key, dict, {}, False)
        return Reader(self.doc, value, (*self.path, key))

    def tables(self, key: str) -> list[Reader]:
        value = self._get(key, list, [], False)
        readers = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                readers.append(Reader(self.doc, item, (*self.path, key, index)))
            else:
                self.doc.problem((*self.path, key, index), "must be a table ([[...]])")
        return readers

    def problem(self, key: str, reason: str) -> None:
        self.doc.problem((*self.path, key), reason)

    def refuse_unknown(self) -> None:
        """Typos in key names are the commonest config bug; name them instead of ignoring."""
        for key in self.table:
            if key not in self.known:
                self.doc.problem((*self.path, key), f"unknown key (known: {', '.join(sorted(self.known))})")
