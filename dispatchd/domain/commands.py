"""Reply text -> commands. Read only from the top, one per line, stopping at the first line
that is not a command, so a signature or quoted text can never run as a command.

Case-insensitive and tolerant of punctuation: "Start.", "- approve!", "Priority: p1",
"revise: tighten the intro". In a fresh email (not a reply) a command names its task:
"start 42", "assign 42 ben". Whatever follows the commands is a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

MAX_COMMANDS = 10


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""
    task_id: int | None = None
    line: str = ""


@dataclass(frozen=True)
class ParsedReply:
    commands: tuple[Command, ...]
    note: str
    problems: tuple[str, ...] = ()


# name -> (aliases, argument: "none" | "optional" | "required")
GRAMMAR: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("start", "begin", "starting"), "none"),
    "review": (("review", "ready for review", "to review"), "none"),
    "approve": (("approve", "approved", "lgtm"), "none"),
    "confirm": (("confirm", "confirmed", "accept", "accepted"), "none"),
    "revise": (("revise", "revision", "revisions", "changes"), "optional"),
    "deliver": (("deliver", "delivered"), "none"),
    "close": (("close", "done", "closed"), "none"),
    "cancel": (("cancel", "cancelled", "canceled"), "optional"),
    "assign": (("assign", "assign to"), "required"),
    "take": (("take", "mine", "i'll take it", "ill take it"), "none"),
    "priority": (("priority", "prio"), "required"),
    "due": (("due", "deadline"), "required"),
    "note": (("note", "comment"), "required"),
    "status": (("status", "card", "info"), "none"),
    "type": (("type",), "required"),
    "client": (("client",), "required"),
    "queue": (("queue",), "required"),
    "next": (("next", "next task", "give me work"), "none"),
    "away": (("away", "away until", "out until", "ooo until"), "required"),
}
_ALIASES = sorted(((alias, name) for name, (aliases, _) in GRAMMAR.items() for alias in aliases),
                  key=lambda pair: -len(pair[0]))
_LEADING = re.compile(r"^[\s>*•·\-–—#\d.)]*?(?=[a-z])", re.IGNORECASE)
_TRAILING = re.compile(r"[\s.!?,;:)]+$")
_FREE_TEXT = ("note", "revise", "cancel")


def parse_reply(text: str, fresh: bool = False) -> ParsedReply:
    """Split ``text`` (quoted text already removed) into commands and a trailing note."""
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    problems: list[str] = []
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            if index < len(lines) and _read_line(lines[index], fresh) is not None:
                continue
            break
        command = _read_line(line, fresh)
        if command is None:
            break
        if len(commands) == MAX_COMMANDS:
            problems.append(f"only the first {MAX_COMMANDS} command lines are read")
            break
        if isinstance(command, str):
            problems.append(command)
        else:
            commands.append(command)
        index += 1
    note = "\n".join(lines[index:]).strip()
    return ParsedReply(tuple(commands), note, tuple(problems))


def _read_line(line: str, fresh: bool) -> Command | str | None:
    """A Command, a problem text (a command word used wrongly) or None (not a command line)."""
    stripped = _LEADING.sub("", line.strip(), count=1)
    lowered = stripped.lower()
    for alias, name in _ALIASES:
        if lowered == alias or re.match(rf"{re.escape(alias)}(?=[\s:.!?,;-]|$)", lowered):
            rest = stripped[len(alias):].lstrip(" :.-–—!?,;").strip()
            return _build(name, rest, line.strip(), fresh)
    return None


def _build(name: str, rest: str, line: str, fresh: bool) -> Command | str | None:
    task_id = None
    if fresh and name not in ("next", "away"):
        match = re.match(r"#?(\d{1,12})(?=\s|$)\s*", rest)
        if match:
            task_id, rest = int(match.group(1)), rest[match.end():]
    argument_kind = GRAMMAR[name][1]
    rest = rest.strip() if name in _FREE_TEXT else _TRAILING.sub("", rest)
    if argument_kind == "none" and rest:
        # "start working on the intro" is prose, not a command.
        return None
    if argument_kind == "required" and not rest:
        return f"'{line}': {name} needs a value, e.g. {_EXAMPLES[name]}"
    if name == "priority":
        level = re.fullmatch(r"p?([0-3])", rest.strip().lower())
        if not level:
            return f"'{line}': priority must be P0, P1, P2 or P3"
        rest = f"P{level.group(1)}"
    if name == "away":
        parsed_away = parse_due(re.sub(r"^until\s+", "", rest, flags=re.IGNORECASE))
        if parsed_away is None:
            return f"'{line}': write 'away until YYYY-MM-DD'"
        rest = parsed_away.isoformat()
    if name == "due":
        parsed = parse_due(rest)
        if parsed is None:
            return f"'{line}': write the date as YYYY-MM-DD or YYYY-MM-DD HH:MM"
        rest = parsed.isoformat()
    return Command(name, rest, task_id, line)


def parse_due(text: str) -> datetime | date | None:
    text = text.strip()
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            pass
    for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            pass
    return None


_EXAMPLES = {"assign": "'assign Ben'", "priority": "'priority P1'", "due": "'due 2026-12-01'",
             "note": "'note: called the client'", "type": "'type Design'", "client": "'client Acme'",
             "queue": "'queue dev'", "away": "'away until 2026-12-24'"}
