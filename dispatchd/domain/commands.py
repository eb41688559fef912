"""Reply text -> commands. The text comes without quotes and signature (``domain/replytext``).

A line runs as a command only in a command's exact shape: its word (or a short sentence that
can only mean it, "Starting on it now", "I'll take it") plus an argument of the right type
("due 2026-12-10", "priority P1", "assign Ben"). Greeting lines before the commands are
skipped, politeness around them ("ok start", "start please", "Approved, thanks!") is ignored,
and so are case, bullets, typographic quotes and punctuation. Reading stops at the first line
that is not a command: whatever follows is the note. A line that looks like a command but is not
certain ("done", "let's start?") becomes a question to ask back, never a guess; a command word
with an argument of the wrong type ("due: someday") is a problem to report. Prose that merely
starts with a command word ("Due to the holidays …", "Client wants this by Friday",
"Changes look good") is prose. In a fresh email (not a reply) a command names its task:
"start 42", "assign 42 ben".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from dispatchd.domain.phrases import GREETING_LINE, GREETING_PREFIX, bare_words, normalise, strip_leading_politeness
from dispatchd.domain.slots import parse_duration

MAX_COMMANDS = 10


@dataclass(frozen=True)
class Command:
    name: str
    argument: str = ""
    task_id: int | None = None
    line: str = ""


@dataclass(frozen=True)
class ParsedReply:
    """``note``: every line that is not an understood command (nothing is dropped);
    ``questions``: what an uncertain line probably meant, to ask back before running it."""

    commands: tuple[Command, ...]
    note: str
    problems: tuple[str, ...] = ()
    questions: tuple[Command, ...] = ()


@dataclass(frozen=True)
class Spec:
    """One command's words. ``argument``: none | text (optional free text) | note (required free
    text) | name | priority | date | duration? (a call's length, or none) | addresses (one or more email addresses; ``addresses?``: or
    none) | message (words for the client after a colon, "reply: Hi Bob, …"; the lines below belong
    to it too; ``message?``: or none, "deliver"). ``everyday``: aliases that are ordinary words, which alone
    only make a question; ``phrases``: whole short sentences that mean exactly this command."""

    words: tuple[str, ...]
    argument: str = "none"
    phrases: tuple[str, ...] = ()
    everyday: tuple[str, ...] = ()


GRAMMAR: dict[str, Spec] = {
    "start": Spec(("start", "begin"), phrases=(
        "starting", "starting now", "starting on it", "starting on this", "starting work", "started",
        "on it", "i'm on it", "i am on it", "working on it", "i'll start", "i will start", "start work",
        "start working", "start on it", "i'm starting", "im on it", "i'll start on it", "i'll start now",
        "will start", "starting today", "getting started", "i'll get started", "i've started", "i have started",
        "started on it", "work started", "i'm on this", "on this", "working on this")),
    "review": Spec(("review", "ready for review", "to review"), phrases=(
        "ready to review", "for review", "sent for review", "done, ready for review", "please review",
        "ready for your review", "draft is ready for review", "draft ready for review", "over to you for review")),
    "approve": Spec(("approve", "approved", "lgtm"), phrases=("looks good to me", "approved for delivery",
                                                              "good to go", "ship it", "i approve", "all approved",
                                                              "approved from my side", "approved on my side")),
    "confirm": Spec(("confirm", "confirmed", "accept", "accepted")),
    "revise": Spec(("revise",), "text", everyday=("changes", "revision", "revisions")),
    "deliver": Spec(("deliver",), "message?", everyday=("delivered",)),
    "close": Spec(("close",), everyday=("done", "closed")),
    "cancel": Spec(("cancel",), "text", everyday=("cancelled", "canceled")),
    "assign": Spec(("assign to", "assign"), "name"),
    "take": Spec(("take",), phrases=(
        "take it", "i'll take it", "ill take it", "i will take it", "i'll take this", "i'll take this one",
        "i take it", "taking it", "taking this", "i'll do it", "i will do it", "i'll handle it", "mine"),
        everyday=("mine",)),
    "priority": Spec(("priority", "prio"), "priority"),
    "due": Spec(("due", "deadline"), "date"),
    "note": Spec(("note", "comment"), "note"),
    "status": Spec(("status",), phrases=("status?", "what's the status", "what is the status", "any update"),
                   everyday=("card", "info")),
    "type": Spec(("type",), "name"),
    "client": Spec(("client",), "name"),
    "queue": Spec(("queue",), "name"),
    "next": Spec(("next", "next task", "give me work")),
    "away": Spec(("away until", "out until", "ooo until", "away"), "date"),
    "follow": Spec(("add follower", "add followers"), "addresses"),
    "unfollow": Spec(("remove follower", "remove followers", "unfollow"), "addresses?"),
    "reply": Spec(("reply", "reply to client", "reply to the client"), "message"),
    # A call with the client: times are proposed to them by email ("schedule 30 minutes").
    "schedule": Spec(("schedule a call", "book a call", "schedule"), "duration?"),
}
# Nouns that are everyday words too: their argument must be a known name or follow a colon.
_NOUN_COMMANDS = frozenset({"type", "client", "queue"})
_ADDRESS_WORD = re.compile(r"[^\s<>,;:()\[\]\"']+@[^\s<>,;:()\[\]\"']+\.[^\s<>,;:()\[\]\"'.]+")
_FREE_TEXT = frozenset({"text", "note"})
# Extra words an argument-less command may carry and still be certain ("start this one now").
_HARMLESS_TAIL = re.compile(r"^(?:(?:it|this|this one|that|the task|now|right now|today|then|again|on it|"
                            r"work|here|from me|for me|for us)\b\s*)*$")
_SEPARATOR = re.compile(r"^\s*[:=\-]\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_QUESTION_WORDS = 5  # a line up to this long that starts with a command word may be one


# Other forms of a command word: a short line with one is probably that command ("Reviewing
# now", "Closing this one", "Started on the draft"), so it is asked back, never run.
_INFLECTIONS = {"starting": "start", "started": "start", "reviewing": "review", "reviewed": "review",
                "approving": "approve", "closing": "close", "delivering": "deliver", "taking": "take",
                "cancelling": "cancel", "canceling": "cancel", "revising": "revise", "confirming": "confirm"}


def _inflected(bare: str, line: str) -> Question | None:
    word, _, rest = bare.partition(" ")
    name = _INFLECTIONS.get(word)
    if name is None or len(rest.split()) >= _QUESTION_WORDS - 1:
        return None
    return Question(Command(name, "", None, line))


def _aliases() -> list[tuple[str, str, bool]]:
    found = [(word, name, False) for name, spec in GRAMMAR.items() for word in spec.words]
    found += [(word, name, True) for name, spec in GRAMMAR.items() for word in spec.everyday]
    return sorted(found, key=lambda item: -len(item[0]))


_ALIASES = _aliases()
_PHRASES = {phrase: name for name, spec in GRAMMAR.items() for phrase in spec.phrases}
_PHRASES_LONGEST_FIRST = sorted(_PHRASES, key=len, reverse=True)


def parse_reply(text: str, fresh: bool = False, names: frozenset[str] = frozenset()) -> ParsedReply:
    """Split ``text`` (quoted text and signature already removed) into commands and a note.
    ``names``: known staff, client, type and queue names (lower case), so "client Acme" is a
    command and "Client wants this by Friday" is not."""
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    problems: list[str] = []
    unread: list[str] = []  # lines that are not understood commands: they stay in the note
    index = _skip_greetings(lines)
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            following = read_line(lines[index], fresh, names, sentences=False) if index < len(lines) else None
            if isinstance(following, (Command, Problem)):
                continue
            break
        found = read_line(line, fresh, names, sentences=not commands)
        joined = _joined_commands(line, fresh, names) if not isinstance(found, (Command, Problem)) else []
        if joined:
            if len(commands) + len(joined) > MAX_COMMANDS:
                break
            commands.extend(joined)
            index += 1
            continue
        if not isinstance(found, (Command, Problem)):
            # "Approved. Thanks, great work!": a command as the first sentence of a line.
            first, _, others = _first_sentence(line)
            leading = read_line(first, fresh, names, sentences=not commands) if others else None
            if isinstance(leading, Command):
                found, lines[index] = leading, first
                lines.insert(index + 1, others)
        if found is None or isinstance(found, Question):
            if isinstance(found, Question) and not commands and not problems:
                return ParsedReply((), text.strip(), (), (found.command,))
            break
        if len(commands) + len(problems) == MAX_COMMANDS:
            problems.append(f"only the first {MAX_COMMANDS} command lines are read")
            break
        if isinstance(found, Problem):
            problems.append(found.text)
            unread.append(line.strip())
        else:
            if carries_message(found):
                commands.append(found)
                index += 1
                break  # the lines below are the message for the client, not commands
            found, index = _continued(found, lines, index, fresh, names)
            commands.append(found)
        index += 1
    if not commands and not problems:
        return ParsedReply((), text.strip())
    rest = "\n".join(lines[index:]).strip()
    note = "\n".join([*unread, rest] if rest else unread).strip()
    return ParsedReply(tuple(commands), note, tuple(problems))


def _continued(command: Command, lines: list[str], index: int, fresh: bool,
               names: frozenset[str]) -> tuple[Command, int]:
    """'revise: …' wrapped onto the next lines (format=flowed, a narrow window): the rest of the
    paragraph belongs to the free text, up to a blank line or a line that is a command itself."""
    if GRAMMAR[command.name].argument not in _FREE_TEXT or not command.argument:
        return command, index
    words = [command.argument]
    while index + 1 < len(lines) and lines[index + 1].strip() and \
            read_line(lines[index + 1], fresh, names, sentences=False) is None:
        index += 1
        words.append(lines[index].strip())
    return Command(command.name, " ".join(words), command.task_id, command.line), index


_CONJUNCTION = re.compile(r"\s*(?:,|&|\+|/|\band then\b|\band\b|\bthen\b|\bund\b)\s*", re.IGNORECASE)


def _joined_commands(line: str, fresh: bool, names: frozenset[str]) -> list[Command]:
    """"Approve & deliver", "approve and deliver": argument-less commands joined on one line.
    Every part must be a command, or the line is not read this way."""
    parts = [part for part in _CONJUNCTION.split(normalise(line)) if bare_words(part)]
    if len(parts) < 2:
        return []
    found = [read_line(part, fresh, names, sentences=False) for part in parts]
    # "Reviewed and approved": a past form says what was done, the command word what to do.
    actions = [f for f in found if isinstance(f, Command)]
    described = [f for f in found if isinstance(f, Question) and normalise(f.command.line).lower().split()[0] in _INFLECTIONS]
    if not actions or len(actions) + len(described) != len(found):
        return []
    if not all(GRAMMAR[f.name].argument in ("none", "text", "message?") and not f.argument for f in actions):
        return []
    return [Command(f.name, "", f.task_id, line.strip()) for f in actions]


def _first_sentence(line: str) -> tuple[str, str, str]:
    """(first sentence, separator, the rest) of ``line``; the rest is empty for one sentence."""
    parts = _SENTENCE_END.split(line.strip(), maxsplit=1)
    return (parts[0], " ", parts[1]) if len(parts) == 2 else (line.strip(), "", "")


@dataclass(frozen=True)
class Problem:
    text: str


@dataclass(frozen=True)
class Question:
    command: Command


def read_line(line: str, fresh: bool = False, names: frozenset[str] = frozenset(),
              sentences: bool = True) -> Command | Problem | Question | None:
    """One line as a Command, a Problem (a command word used wrongly), a Question (probably a
    command) or None (prose). ``sentences``: also read the short sentences ("On it.") that mean
    a command; after a command they are the note ("start\n\nOn it.")."""
    original = line.strip()
    cased = strip_leading_politeness(GREETING_PREFIX.sub("", normalise(original), count=1))
    bare = bare_words(cased)
    if not bare:
        return None
    phrase = next((p for p in _PHRASES_LONGEST_FIRST if bare == p or
                   (bare.startswith(p + " ") and _HARMLESS_TAIL.match(bare[len(p) + 1:]))), None)
    if phrase is not None:
        return Command(_PHRASES[phrase], "", None, original) if sentences else None
    for alias, name, everyday in _ALIASES:
        if bare == alias or re.match(rf"{re.escape(alias)}(?=[\s:=\-#]|$)", bare):
            return _build(name, everyday, bare[len(alias):], cased[len(alias):], original, fresh, names)
    return _inflected(bare, original)


def _build(name: str, everyday: bool, rest: str, cased_rest: str, line: str, fresh: bool,
           names: frozenset[str]) -> Command | Problem | Question | None:
    task_id = None
    if fresh and name not in ("next", "away"):
        match = re.match(r"\s*#?(\d{1,12})(?=\s|$)", rest)
        if match:
            task_id, rest = int(match.group(1)), rest[match.end():]
            cased_rest = cased_rest[match.end():]
    separated = bool(_SEPARATOR.match(rest)) and bool(_SEPARATOR.sub("", rest, count=1).strip())
    rest = _SEPARATOR.sub("", rest, count=1).strip()
    kind = GRAMMAR[name].argument
    if everyday and not (separated and kind in _FREE_TEXT):
        # "Done", "Changes look good": ordinary words; alone at most a question, never a command.
        return Question(Command(name, "", task_id, line)) if not rest else None
    if kind == "duration?":
        return _duration(name, rest, separated, task_id, line)
    if kind in ("message", "message?"):
        # A colon makes it a message for the client ("reply: Hi Bob, …", "deliver: the files are
        # attached"); "Reply from the client was positive" is prose, a bare "deliver" a move.
        after = cased_rest.lstrip()
        if after.startswith(":"):
            return Command(name, after[1:].strip(), task_id, line)
        if kind == "message":
            return None
        kind = "none"
    if kind == "none" or (kind == "text" and not separated):
        if not rest or _HARMLESS_TAIL.match(rest):
            return Command(name, "", task_id, line)
        return Question(Command(name, "", task_id, line)) if len(rest.split()) < _QUESTION_WORDS else None
    if kind in ("addresses", "addresses?"):
        found = _ADDRESS_WORD.findall(cased_rest)
        if found:
            return Command(name, ", ".join(dict.fromkeys(a.lower() for a in found)), task_id, line)
        if kind == "addresses?" and not rest:
            return Command(name, "", task_id, line)
        return Problem(f"'{line}': {name} needs an email address, e.g. {_EXAMPLES[name]}")
    if kind in _FREE_TEXT:
        argument = _SEPARATOR.sub("", cased_rest, count=1).strip()
        if not argument:
            return Problem(f"'{line}': {name} needs a value, e.g. {_EXAMPLES[name]}")
        return Command(name, argument, task_id, line)
    if not rest:
        return Problem(f"'{line}': {name} needs a value, e.g. {_EXAMPLES[name]}")
    value = _typed_argument(name, rest, separated, names)
    if value is None:
        # "Due to the holidays …": a sentence that starts with a command word. One word or a
        # colon after the command word is someone trying the command ("due: friday").
        return Problem(_WRONG[name].format(line=line)) if separated or len(rest.split()) == 1 else None
    if name in ("assign", "type", "client", "queue"):
        value = _cased(cased_rest, value)
    return Command(name, value, task_id, line)


def _duration(name: str, rest: str, separated: bool, task_id: int | None, line: str) -> Command | Problem | None:
    """'schedule', 'schedule 30 minutes', 'schedule: 1 hour'; 'Schedule is tight' is prose."""
    if not rest or _HARMLESS_TAIL.match(rest):
        return Command(name, "", task_id, line)
    try:
        parse_duration(re.sub(r"^(?:for|of)\s+", "", rest))
    except ValueError:
        return Problem(f"'{line}': write the length as e.g. 'schedule 30 minutes'") if separated else None
    return Command(name, re.sub(r"^(?:for|of)\s+", "", rest), task_id, line)


def _typed_argument(name: str, rest: str, separated: bool, names: frozenset[str]) -> str | None:
    if name == "priority":
        level = re.fullmatch(r"p?([0-3])", rest)
        return f"P{level.group(1)}" if level else None
    if name in ("due", "away"):
        parsed = parse_due(re.sub(r"^(?:date\s+)?(?:until|is|on|by|at|to|=|:)?\s*", "", rest))
        return parsed.isoformat() if parsed is not None else None
    if re.search(r"[|;!?,]|\s-\s|\d{4,}", rest):
        return None
    value = re.sub(r"^to\s+", "", rest) if name == "assign" else rest
    known = value in names
    if name in _NOUN_COMMANDS and names and not (known or separated):
        return None
    if not known and len(value.split()) > 2 and "@" not in value:
        return None
    return value


def _cased(cased_rest: str, value: str) -> str:
    """``value`` as the sender wrote it ("ACME Corp", not "acme corp")."""
    start = cased_rest.lower().find(value)
    return cased_rest[start:start + len(value)] if start >= 0 else value


def _skip_greetings(lines: list[str]) -> int:
    index = 0
    while index < len(lines) and (not lines[index].strip() or GREETING_LINE.match(normalise(lines[index]))):
        index += 1
    return index


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


def carries_message(command: Command) -> bool:
    """Whether ``command`` brings words for the client ("reply: …", "deliver: …"): then the reply's
    lines below it are the rest of that message."""
    kind = GRAMMAR[command.name].argument if command.name in GRAMMAR else ""
    return kind.startswith("message") and ":" in command.line


def with_message_folded(parsed: ParsedReply) -> ParsedReply:
    """A reply whose last command carries a message ("reply: Hi Bob,") with the lines below it
    moved from the (internal) note into that message: they were written for the client."""
    if not parsed.commands or not carries_message(parsed.commands[-1]) or not parsed.note:
        return parsed
    last = parsed.commands[-1]
    message = "\n".join(part for part in (last.argument, parsed.note) if part).strip()
    folded = Command(last.name, message, last.task_id, last.line)
    return ParsedReply((*parsed.commands[:-1], folded), "", parsed.problems, parsed.questions)


def subject_command_text(subject: str) -> tuple[str, bool]:
    """What a subject says as a command: the words before a reply marker ("APPROVED - RE: [#12] …")
    or, with no reply marker, the whole subject without its task tag (an iPhone reply whose
    subject was replaced by "start"), and whether the words came before a reply marker."""
    marker = re.search(r"\b(?:re|aw|fw|fwd|wg|tr|rv|sv|antw|réf|ref)\s*:", subject, re.IGNORECASE)
    if marker:
        return re.sub(r"[\s\-–—:|]+$", "", subject[:marker.start()]).strip(), True
    return re.sub(r"\[#\d+\]", "", subject).strip(), False


_EXAMPLES = {"assign": "'assign Ben'", "priority": "'priority P1'", "due": "'due 2026-12-01'",
             "note": "'note: called the client'", "type": "'type Design'", "client": "'client Acme'",
             "queue": "'queue dev'", "away": "'away until 2026-12-24'",
             "follow": "'add follower carol@acme.com'", "unfollow": "'remove follower carol@acme.com'",
             "reply": "'reply: Hi Bob, the draft is attached.'"}
_WRONG = {"priority": "'{line}': priority must be P0, P1, P2 or P3",
          "due": "'{line}': write the date as YYYY-MM-DD or YYYY-MM-DD HH:MM",
          "away": "'{line}': write 'away until YYYY-MM-DD'",
          "assign": "'{line}': write 'assign' and a staff member's name, e.g. 'assign Ben'",
          "type": "'{line}': write 'type' and a request type, e.g. 'type Design'",
          "client": "'{line}': write 'client' and a client's name, e.g. 'client Acme'",
          "queue": "'{line}': write 'queue' and a queue, e.g. 'queue dev'"}
