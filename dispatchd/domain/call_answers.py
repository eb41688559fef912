"""A client's answer to proposed call times, in plain words.

"2", "option 2", "#2 works for us", "the second one", "Tuesday 3pm", "Tue 15:00", or the slot's
line pasted back pick a slot; "none of these work" asks for new ones; "reschedule" and
"cancel call" concern a booked call. Anything else is unclear and is asked back ("which
one?"), never guessed. Times are read in the client's zone, where the proposals were shown.
Pure: the offered starts come in, an ``Answer`` goes out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dispatchd.domain.phrases import GREETING_LINE, normalise
from dispatchd.domain.slots import slot_line

PICK, NONE, RESCHEDULE, CANCEL, UNCLEAR = "pick", "none", "reschedule", "cancel", "unclear"

_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
             "fifth": 5, "5th": 5, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_FILLER = (r"thanks?|thank you|please|cheers|that|this|it|works?|would work|suits? (?:us|me)|is fine|"
           r"fine|great|perfect|ok|okay|for (?:us|me)|sounds good|good|let's do|lets do|we'll take|"
           r"i'll take|we take|i take|take|go with|we'll go with|i'll go with|is best|best|"
           r"the|one|slot|option|number|no\.?|choice|time|please book|book|yes|hi|hello|\W")
_NUMBER = re.compile(rf"^(?:(?:{_FILLER})\s*)*#?\s*([1-9])\s*[.):]?\s*(?:(?:{_FILLER})\s*)*$")
_ORDINAL = re.compile(rf"^(?:(?:{_FILLER})\s*)*({'|'.join(_ORDINALS)})\s*(?:(?:{_FILLER})\s*)*$")
_NONE = re.compile(r"\b(?:none of (?:these|those|them|the (?:times|slots|options))|neither|no(?:ne)? (?:of )?"
                   r"(?:these|those) (?:times |slots |options )?(?:work|suit)|none work|none suit|"
                   r"(?:doesn't|does not|don't|do not|won't|will not) (?:work|suit)|can't make (?:any|it)|"
                   r"cannot make (?:any|it)|other (?:times|options|slots)|another time|different time|none)\b")
_RESCHEDULE = re.compile(r"^(?:please\s+)?(?:reschedule|re-schedule|move (?:the|our) call|new time)\b")
_CANCEL = re.compile(r"^(?:please\s+)?(?:cancel (?:the |our )?(?:call|meeting|appointment))\b")
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\b")
_DATE = re.compile(r"\b([0-3]?\d)(?:st|nd|rd|th)?\s*(?:of\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CLOCK = re.compile(r"\b(?:at\s+)?([0-2]?\d)(?:[:.h]([0-5]\d))?\s*(am|pm|a\.m\.|p\.m\.|uhr|h)?\b")


@dataclass(frozen=True)
class Answer:
    kind: str          # pick | none | reschedule | cancel | unclear
    index: int = 0     # the slot picked, 1-based (kind pick)


def read_answer(text: str, offered: Sequence[datetime], duration: timedelta, zone: ZoneInfo) -> Answer:
    """What the client's reply ``text`` (quotes and signature gone) says about ``offered``."""
    # Not ``normalise``: it drops a leading "2." as a list marker, and here that is the answer.
    lines = [" ".join(line.replace("\u2019", "'").split()).lower() for line in text.split("\n")]
    lines = [line for line in lines if line and not GREETING_LINE.match(normalise(line))]
    if not lines:
        return Answer(UNCLEAR)
    first = lines[0]
    if _RESCHEDULE.match(first):
        return Answer(RESCHEDULE)
    if _CANCEL.match(first):
        return Answer(CANCEL)
    for line in lines[:3]:
        picked = _picked(line, offered, duration, zone)
        if picked is not None:
            return Answer(PICK, picked) if picked else Answer(UNCLEAR)
    if _NONE.search(" ".join(lines[:3])):
        return Answer(NONE)
    return Answer(UNCLEAR)


def _picked(line: str, offered: Sequence[datetime], duration: timedelta, zone: ZoneInfo) -> int | None:
    """The 1-based slot ``line`` names; 0 when it names a slot that is not on offer or several;
    None when it names no slot at all."""
    quoted = _by_line(line, offered, duration, zone)
    if quoted is not None:
        return quoted
    number = _NUMBER.match(line)
    if number is None:
        ordinal = _ORDINAL.match(line)
        chosen = _ORDINALS[ordinal.group(1)] if ordinal else None
    else:
        chosen = int(number.group(1))
    if chosen is not None:
        return chosen if chosen <= len(offered) else 0
    return _by_time(line, offered, zone)


def _by_line(line: str, offered: Sequence[datetime], duration: timedelta, zone: ZoneInfo) -> int | None:
    """The slot's own line, with or without its number, dashes and commas as they came back."""
    bare = _bare(re.sub(r"^\s*[1-9]\s*[.)]\s*", "", line))
    for index, start in enumerate(offered, 1):
        if bare and bare == _bare(slot_line(start, duration, zone)):
            return index
    return None


def _bare(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower().replace("–", "-")).strip()


def _by_time(line: str, offered: Sequence[datetime], zone: ZoneInfo) -> int | None:
    """'Tuesday 3pm', 'Tue at 15:00', '8 Dec 10:30', 'Tuesday' (when one slot is that day)."""
    weekday = _DAY.search(line)
    on_date = _DATE.search(line)
    clock = _clock(line)
    if weekday is None and on_date is None and clock is None:
        return None
    if weekday is None and on_date is None and not re.search(r"\d[:.h]\d\d|\d\s*(?:am|pm|uhr)", line):
        return None  # a bare number is an option, not a time; "at 3" alone is too vague
    matches = []
    for index, start in enumerate(offered, 1):
        local = start.astimezone(zone)
        if weekday is not None and local.weekday() != _WEEKDAYS[weekday.group(1)]:
            continue
        if on_date is not None and (local.day, local.month) != (int(on_date.group(1)),
                                                                _MONTHS.index(on_date.group(2)) + 1):
            continue
        if clock is not None and (local.hour, local.minute) != clock:
            continue
        matches.append(index)
    return matches[0] if len(matches) == 1 else 0


def _clock(line: str) -> tuple[int, int] | None:
    without_dates = _DATE.sub(" ", line)
    for match in _CLOCK.finditer(without_dates):
        hour, minute, suffix = int(match.group(1)), int(match.group(2) or 0), (match.group(3) or "").replace(".", "")
        if not suffix and match.group(2) is None:
            continue  # "2" alone is not a time
        if suffix == "pm" and hour < 12:
            hour += 12
        if suffix == "am" and hour == 12:
            hour = 0
        if hour < 24:
            return hour, minute
    return None
