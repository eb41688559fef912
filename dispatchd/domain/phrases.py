"""How people wrap a command in a line: greetings, politeness, typographic quotes, bullets,
emoji. Pure text helpers shared by the command grammar and the client intents."""

from __future__ import annotations

import re

_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
                              "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ", "\u2009": " ",
                              "\u202f": " "})
_LEADING_MARKS = re.compile(r"^[\s>*•·\-#\d.)\]\[]*?(?=[^\s>*•·\-#\d.)\]\[])")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200d]")

_GREETINGS = (r"hi|hello|hey|dear|hallo|hola|bonjour|salut|coucou|good morning|good afternoon|morning|"
              r"guten morgen|guten tag|moin|servus|liebe[rs]?|sehr geehrte[rs]?|buenos d[ií]as|buenas tardes|"
              r"buenas|estimad[oa]s?|cher|ch[èe]re|greetings|hi there|hello there")
# A whole line that only greets: "Hi team,", "Hallo zusammen", "Dear Ms. Smith,", "Ben,".
GREETING_LINE = re.compile(rf"^(?:(?:{_GREETINGS})(?:\s+[\w.'&-]+){{0,4}}\s*[,!:.]?|[A-Z][\w'-]+(?: [A-Z][\w'-]+)?,)\s*$",
                           re.IGNORECASE)
# A greeting in front of the words on the same line: "Hi, start please", "Hi Ben, approved".
GREETING_PREFIX = re.compile(rf"^(?:{_GREETINGS})(?:\s+[\w.'&-]+){{0,2}}\s*[,!:]\s+(?=\S)", re.IGNORECASE)

_POLITE_WORDS = (r"ok(?:ay)?|sure|yes|yep|yeah|alright|all right|right|great|cool|perfect|fine|so|and|"
                 r"please|pls|plz|kindly|thanks|thank you|thx|ja|oui|bitte|merci|gracias|super|"
                 r"now|then|asap|cheers|danke|many thanks|thanks a lot|thank you very much|as well|too|again|"
                 r"will do|got it|sure thing|no problem|noted|understood|hi|hello|hey|go ahead and|go ahead")
_LEADING_POLITENESS = re.compile(rf"^(?:(?:{_POLITE_WORDS})\b[\s,.!:;-]*)+", re.IGNORECASE)
_TRAILING_POLITENESS = re.compile(rf"(?:[\s,.!:;-]+(?:{_POLITE_WORDS})\b)+[\s,.!:;-]*$", re.IGNORECASE)
_TRAILING_MARKS = re.compile(r"[\s.!?,;:)(\]\[\"'*~^-]+$|(?:\s*[:;]-?[)(dp])+$", re.IGNORECASE)


def normalise(line: str) -> str:
    """``line`` with typographic quotes/dashes made plain, emoji and leading bullets removed and
    runs of spaces collapsed. Case and trailing punctuation are kept (free text needs them)."""
    text = _EMOJI.sub(" ", line.translate(_TYPOGRAPHIC))
    text = _LEADING_MARKS.sub("", text.strip(), count=1)
    return " ".join(text.split())


def strip_leading_politeness(text: str) -> str:
    """"ok start" -> "start", "Thanks, approved" -> "approved" (any case)."""
    return _LEADING_POLITENESS.sub("", text, count=1)


def bare_words(text: str) -> str:
    """Lower case, politeness on both ends and trailing punctuation gone: the words that matter."""
    text = strip_leading_politeness(text.lower())
    previous = None
    while previous != text:
        previous = text
        text = _TRAILING_MARKS.sub("", text)
        text = _TRAILING_POLITENESS.sub("", text)
    return text.strip()
