"""What the triage model reads of a request: cleaned text and the tokens it is made of.

Pure functions, shared by training and prediction so that both see exactly the same features.
A request is its subject (or the description of a well-formed one), its body with the greeting,
the signature and quoted text cut, the client, the staff first name the client greets, and an
unknown type word of a well-formed subject (``[Acme] - [layout] - …``).

Tokens carry a namespace: ``w:`` body and subject words, ``b:`` word pairs, ``s:`` subject
words (counted again, so the subject weighs more), ``c:`` character n-grams inside words (they
carry typos, inflections and German compounds), ``t:`` a type word, ``client:``, ``greet:``
and ``greetq:`` (the queues of the person greeted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

MAX_BODY_CHARS = 4000     # huge mail: only the first part is read
MAX_WORDS = 400           # words of the body that count
CHAR_GRAM_WORDS = 50      # words whose character n-grams count (prediction stays well under 1 ms)
CHAR_GRAM_SIZES = (3, 4, 5)
TYPE_WORD_HITS = 3        # a type word found in a type's vocabulary counts as this many more hits
# What a feature of each kind weighs against a word before a request's vector is normalised.
# A request has a few hundred character n-grams against some sixty words: at full weight
# their many small pulls outvoted the words ("read", "laugh" and "weather" made a radio
# script a Revision). Chosen on blind sets A–C (bench/triage_tune.py): right 81 → 87 % after
# history, 75 → 81 % on day one, wrong still ≤ 5 %.
FEATURE_WEIGHTS = {"c": 0.3, "x": 0.5}

_WORD = re.compile(r"[^\W\d_]{2,}(?:-[^\W\d_]{2,})*|\d+[^\W\d_]*", re.UNICODE)
_QUOTE_START = re.compile(
    r"^\s*(?:on\b.{0,200}\bwrote:?|am\b.{0,200}\bschrieb\b.{0,200}:?|le\b.{0,200}\ba écrit\s*:?"
    r"|-{2,}\s*(?:original message|ursprüngliche nachricht|forwarded message|weitergeleitete nachricht)\s*-{2,}"
    r"|(?:from|von|gesendet|sent):\s.+|sent from my\b.*|von meinem \w+ gesendet.*|gesendet von\b.*)\s*$",
    re.IGNORECASE)
# The line that starts a forwarded message, and the header lines under it.
_FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado)\s*-{2,}"
    r"|begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié)\s*:?\s*$",
    re.IGNORECASE)
_FORWARD_HEADER = re.compile(r"^(?:from|von|de|date|datum|sent|gesendet|envoyé|subject|betreff|objet|asunto|to|an|à|para"
                             r"|cc|reply-to)\s*:", re.IGNORECASE)
_NAME_ONLY = re.compile(r"^[^\W\d_][\w'-]*\s*,$")
# A forward with more words of its own says its request itself; one with none may be for
# information only (a person sees it).
FORWARD_OWN_WORDS = 30
_SIGN_OFF = re.compile(
    r"^\s*(?:--\s*|_{3,}|(?:best|kind|warm|many|with)?\s*(?:regards|wishes|thanks|thank you)(?: so much| again)?"
    r"|best|cheers|thx|ta|br|kr|mfg|lg|vg|bg|gruß|grüße|gruss|gruesse|danke(?: schön| dir| euch)?"
    r"|(?:viele|beste|liebe|freundliche|herzliche|schöne) grüße|mit (?:freundlichen|besten) grüßen"
    r"|(?:vielen|herzlichen) dank(?: im voraus)?)\s*[,.!]*\s*$", re.IGNORECASE)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|hallo|hallöchen|liebe|lieber|moin|servus|grüß dich|hi there|hey there"
    r"|good (?:morning|afternoon|evening)|guten (?:morgen|tag|abend)|sehr geehrte[rs]?(?: frau| herr)?"
    r"|bonjour|bonsoir|salut|cher|chère|hola|buenos días|buenas|estimad[oa])"
    r"(?:\s+(?P<name>[^\W\d_][\w'-]{0,30}))?(?:\s+(?:and|und|&)\s+(?:team|[^\W\d_]+))?\s*[,!:.\-]*\s*",
    re.IGNORECASE)
_NOT_NAMES = frozenset({"team", "all", "there", "everyone", "folks", "guys", "zusammen", "alle", "leute", "ihr",
                        "équipe", "tous", "todos", "equipo"})
# The other names of a greeting line that greets more than one person ("Hi Dev and Ana,",
# "Liebe Ana, lieber Ben,"): words after the first name, greeting words and joiners aside.
_GREETING_WORDS = frozenset({"hi", "hello", "hey", "dear", "hallo", "liebe", "lieber", "and", "und", "et", "y", "&",
                             "bonjour", "cher", "chère", "hola", "estimado", "estimada", "moin", "servus"})
_NAME_WORD = re.compile(r"[^\W\d_][\w'-]*")

# Words that say nothing about the kind of work; left out of word pairs and of the reasons shown.
STOPWORDS = frozenset("""
a an the and or but if of to in on at for with from by as is are was were be been being it its this that these
those there here we our us you your i me my he she they them their what which who whom when where why how can could
would should will shall may might must do does did done have has had not no yes so too very just also please
thanks thank hi hello dear regards best cheers some any all each more most other into about up out over again
then than get got let lets know need needs want wanted like would'd am pm re fwd fw one two new
der die das den dem des ein eine einen einem einer und oder aber wenn von zu im in am an auf für mit bei aus
ist sind war waren sein wird werden wurde es wir uns ihr euch sie ich mir mich du dir dich er unser unsere ihre
ihren was wer wie wo warum wann kann könnt könnten können könntet würde würden sollte soll müssen muss bitte
danke hallo liebe lieber gruß grüße viele noch auch schon nur sehr so noch mal doch ja nein nicht kein keine
diese dieser dieses dem den zum zur vom beim hier da dann als wie gern gerne neue neuen neuer neues
ca bzw ggf usw etc eg ie approx
""".split())


@dataclass(frozen=True)
class RequestText:
    """A request as the model reads it."""

    subject: str
    body: str = ""
    client: str | None = None
    type_word: str | None = None  # an unknown type word of a well-formed subject


@dataclass(frozen=True)
class Lexicon:
    """Words and phrases that point to a type (the rules' names, aliases and ``vocabulary``).
    Every phrase found adds the type's ``x:`` feature: evidence pooled over all of a type's
    words, which carries to requests whose exact words no example had."""

    entries: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def hits(self, text: str) -> list[str]:
        """``x:Type`` once per phrase of the type found (at most three), longest phrase first and
        no two overlapping: a word-by-word look-up, far cheaper than one big regular expression."""
        index, prefixes, order = _index(self.entries)
        found = _LEX_WORD.findall(text.lower())
        words = [w for w, _ in found]
        count: dict[str, int] = {}
        free: dict[str, int] = {}   # per type: the first word a new phrase may start at
        for i, (first, colon) in enumerate(found):
            longest: dict[str, int] = {}
            for key in ((first, first + ":") if colon else (first,)):
                end = i
                while True:
                    for name in index.get(key, ()):
                        longest[name] = end
                    if key not in prefixes or end + 1 >= len(words):
                        break
                    end += 1
                    key = f"{key} {words[end]}"
            for name, end in longest.items():
                if i >= free.get(name, 0):
                    count[name] = count.get(name, 0) + 1
                    free[name] = end + 1
        return [f"x:{name}" for name in order for _ in range(min(count.get(name, 0), 3))]


# A word as the lexicon reads it (letters or digits joined by - ' / .), and whether a colon follows ("Re:").
_LEX_WORD = re.compile(r"([^\W_]+(?:['’\-/.][^\W_]+)*)(:?)")


@lru_cache(maxsize=8)
def _index(entries: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[dict[str, tuple[str, ...]], frozenset[str],
                                                                      tuple[str, ...]]:
    """Phrase (its words joined by one space) → the types it points to; every phrase's proper prefixes."""
    index: dict[str, tuple[str, ...]] = {}
    prefixes: set[str] = set()
    for name, phrases in entries:
        for phrase in phrases:
            parts = [w + c for w, c in _LEX_WORD.findall(phrase.lower())]
            if not parts:
                continue
            key = " ".join(parts)
            if name not in index.get(key, ()):
                index[key] = (*index.get(key, ()), name)
            prefixes.update(" ".join(parts[:n]) for n in range(1, len(parts)))
    return index, frozenset(prefixes), tuple(name for name, _ in entries)


@dataclass(frozen=True)
class CleanBody:
    text: str
    greeted: str | None  # the first name after "Hi", lower case
    also_greeted: tuple[str, ...] = ()  # more names of the same greeting ("Hi Dev and Ana"), lower case


@lru_cache(maxsize=16)
def clean_body(body: str) -> CleanBody:
    """The body's own words: no quoted text, no signature, no greeting (whose name is kept).
    A forward with a line or two of its own ("Can you do this?") reads on into the forwarded
    message: that is where the request is. A forward without a word of its own stays empty."""
    lines = (body or "")[:MAX_BODY_CHARS].replace("\r", "").split("\n")
    kept: list[str] = []
    greeted = None
    also: tuple[str, ...] = ()
    forwarded = False   # reading the forwarded message now
    own: list[str] = []  # the forwarder's words, once reading the forwarded message
    in_headers = False  # its From:/Date:/Subject: lines
    for line in lines:
        stripped = line.strip()
        if forwarded:
            stripped = stripped.lstrip("> ").strip()
            if in_headers and (not stripped or _FORWARD_HEADER.match(stripped)):
                continue
            in_headers = False
            if not stripped:
                continue
            if _QUOTE_START.match(stripped) or _FORWARD.match(stripped):
                break
            if not kept and (_NAME_ONLY.match(stripped) or ((found := _GREETING.match(stripped)) is not None
                                                             and found.end() == len(stripped))):
                continue  # the forwarded message greets the forwarder ("Priya,"), not our staff
        else:
            if _FORWARD.match(stripped) and 0 < sum(len(k.split()) for k in kept) <= FORWARD_OWN_WORDS:
                forwarded = in_headers = True
                own, kept = kept, []
                continue
            if stripped.startswith(">") or _QUOTE_START.match(stripped):
                break
            if not stripped:
                continue
            if not kept and greeted is None:
                found = _GREETING.match(stripped)
                if found and (found.end() == len(stripped) or stripped[found.end() - 1:found.end()] in ",!:\n"
                              or found.group("name")):
                    name = (found.group("name") or "").lower()
                    greeted = name if name and name not in _NOT_NAMES else ""
                    also = _more_names(stripped, greeted) if greeted else ()
                    stripped = stripped[found.end():].strip()
                    if also or not stripped:  # a line that only greets
                        continue
        if kept and (_SIGN_OFF.match(stripped) or _DISCLAIMER.match(stripped)):
            break
        kept.append(stripped)
    return CleanBody("\n".join(_unsigned(own) + _unsigned(kept) if forwarded else _unsigned(kept)),
                     greeted or None, also)


def _unsigned(kept: list[str]) -> list[str]:
    """Without the signature that has no sign-off: a line that is only a name ("Megan", "T. Kessler",
    "Dan Hughes | E-commerce Manager") near the end, and the title and address lines after it."""
    for i in range(max(1, len(kept) - SIGNATURE_LINES), len(kept)):
        if _NAME_LINE.match(kept[i]):
            return kept[:i]
    return kept


def _more_names(line: str, first: str) -> tuple[str, ...]:
    """The other names of a line that only greets ("Hi Dev and Ana,", "Liebe Ana, lieber Ben"):
    every word a greeting word, a joiner or a capitalised name. () for "Hi Ben, could you …"."""
    found = _NAME_WORD.findall(line)
    if len(found) > 8 or not all(w.lower() in _GREETING_WORDS or w[0].isupper() for w in found):
        return ()
    names = [w.lower() for w in found if w.lower() not in _GREETING_WORDS and w.lower() not in _NOT_NAMES]
    return tuple(n for n in dict.fromkeys(names) if n != first)


SIGNATURE_LINES = 8
_NAME = r"(?:[^\W\d_][.]?|[^\W\d_][\w'’.-]*)"
_NAME_LINE = re.compile(rf"^(?!(?:thanks|thank|danke|hi|hello|hallo|best|cheers|please|bitte|merci|gracias)\b)(?=[^\W\d_])(?:(?-i:[A-ZÄÖÜÉ]){_NAME[3:]}(?:\s+(?:(?-i:[A-ZÄÖÜÉ])[\w'’.-]*|von|van|de|der|du)){{0,3}}"
                        r"\s*(?:[|·,–—]\s*[^.!?]*)?$", re.IGNORECASE)
_DISCLAIMER = re.compile(r"^(?:this (?:e-?mail|message) (?:and any attachments )?(?:may contain|contains|is confidential)"
                         r"|diese e-?mail (?:enthält|kann)|confidentiality notice|disclaimer\b)", re.IGNORECASE)


# A full stop after these ends no sentence ("ca. 300 words", "z.B.", "p. 4").
_NOT_ABBREVIATION = "".join(rf"(?<!\b{re.escape(a)})" for a in (
    "ca.", "z.b.", "e.g.", "i.e.", "nr.", "no.", "vs.", "bzw.", "ggf.", "usw.", "dr.", "p.", "s.", "etc.", "inkl.", "evtl."))
# Where a sentence's clauses part: "…, and also …", "… and someone who …", and one sentence
# asking for two pieces of work ("write up the descriptions and get them live in the shop",
# "die Gestaltung des Kartons und einen kleinen Text"); not "the shop and the trade" (nouns).
_SEGMENT = re.compile(
    r"(?<=[.!?;])" + _NOT_ABBREVIATION + r"\s+|\n+|\s*\b(?:and also|also|as well as|additionally|plus|another thing|separately|on top of that"
    r"|außerdem|zusätzlich|und auch|ebenso|dazu noch|und noch|et aussi|de plus|en plus|par ailleurs|además|y también"
    r"|(?<=\S )(?=(?:and|und|et|y) (?:someone|somebody|jemanden?|quelqu'un|alguien)\b)"
    r"|(?<=\S )(?=and (?:then )?(?:get|make|set up|build|design|write|update|put|add|create|translate|fix|redo|produce|draft|plan)\b)"
    r"|(?<=\S )(?=und (?:dann |auch |noch )?(?:einen|eine|ein)\b)"
    r")\b[:,]?\s*", re.IGNORECASE)
MIN_SEGMENT_WORDS = 3
PARAGRAPH_WORDS = 6


# A sentence that asks for something: its words count twice (the request among the small talk).
# "we also need", "I'd really like": one adverb between who asks and the ask.
_ALSO = r"(?: also| still| really| now| just| then| additionally| urgently| definitely)?"
_ASKS = re.compile(
    r"\b(?:could|can|would|will) (?:you|we|someone)\b|\bplease\b|\bwe(?:'d| would)?" + _ALSO + r" (?:need|want|like)\b|"
    r"\bi(?:'d| would)?" + _ALSO + r" (?:need|like)\b|\blooking for\b|\bneeds? (?:a|an|some|new)\b|"
    r"\bwe(?:'d| would) love\b|\b(?:can|could) (?:we|i) (?:get|have)\b|\bwe want\b|\bi want\b|"
    r"\bbitte\b|\b(?:könnt|könntet|kannst|könnten|würdet|würden) (?:ihr|du|sie|wir)\b|"
    r"\bwir (?:brauchen|bräuchten|benötigen|hätten gerne?|möchten|wollen|wünschen)\b|"
    r"\b(?:brauchen|bräuchten|benötigen|hätten|möchten|wollen) wir\b|\bich (?:brauche|bräuchte|hätte gerne?|möchte)\b|"
    r"^\s*(?:bräuchten|bräuchte|hätten gerne?|benötigen)\b|"
    r"\b(?:could|can|would|will) (?:the team|your team|one of you"
    r"|(?-i:[A-Z][a-z]+) (?:write|design|make|do|build|fix|look|check|help|create|update|set))\b|"
    r"\b(?:pourriez|pouvez|pourrais|peux|pourrait)[- ](?:vous|tu|on)\b"
    r"|\bnous (?:voudrions|aimerions|souhaitons|souhaiterions|avons besoin)\b|"
    r"\bil nous faut\b|\bmerci de\b|\bs'il (?:vous|te) pla[iî]t\b|\bj'aurais besoin\b|\bje (?:voudrais|souhaiterais)\b|"
    r"\b(?:podéis|podrías|podría|podrían|puedes|pueden)\b"
    r"|\b(?:necesitamos|necesitaríamos|necesito|queremos|querríamos)\b|\bnos gustaría\b|\bpor favor\b",
    re.IGNORECASE)


# Words that say a mail's asks are separate pieces of work.
_SEPARATE = re.compile(
    r"\b(?:two|three|a few|a couple of|several|2|3) (?:(?:unrelated|separate|different) )?"
    r"(?:things|requests|topics|jobs)\b"
    r"|\bunrelated\b|\b(?:totally |completely )?separately\b|\btotally separate\b|\bon a different note\b"
    r"|\b(?:zwei|drei|2|3) (?:sachen|dinge|themen|anliegen|baustellen)\b|\bunabhängig davon\b|\bgetrennt davon\b"
    r"|\bdeux (?:choses|sujets|demandes)\b|\bpar ailleurs\b|\bautre chose\b|\bdos cosas\b|\bpor otro lado\b",
    re.IGNORECASE)


# Mail that asks for no work: a sign-off of delivered work ("Looks great, approved!", "Passt so,
# Freigabe erteilt") or word that someone is away ("I'm on leave until Monday 14th, Tom covers").
# Praise opens many change requests and an away note names the work it hands over, so either
# counts only with no ask and, for a sign-off, no word of a change.
_APPROVES = re.compile(
    r"\bapproved?\b|\bsign(?:ed)?[- ]off\b|\bgood to go\b|\bgo ahead\b|\ball good\b|\bhappy with (?:it|this|that)\b"
    r"|\bno (?:further|more) (?:changes|edits|comments)\b|\bthat's the one\b|\bfreigegeben\b|\bfreigabe\b"
    r"|\babgenommen\b|\bpasst so\b|\bvalidée?s?\b|\bbon pour (?:moi|nous)\b|\bfeu vert\b|\baprobad[oa]\b",
    re.IGNORECASE)
_CHANGES = re.compile(
    r"\?|\b(?:but|however|except|only|just|still|one thing|tweak|chang\w*|fix\w*|correct\w*|typo|instead|swap"
    r"|replace|update|add|remove|move|not|aber|nur|noch|außer|bis auf|nicht|änder\w*|korrig\w*|tausch\w*|ersetz\w*"
    r"|mais|sauf|juste|seulement|encore|modifi\w*|corrig\w*|pero|solo|cambi\w*|corregir)\b",
    re.IGNORECASE)
_AWAY = re.compile(
    r"\bon (?:annual |parental |sick )?(?:leave|holiday|vacation)\b|\bout of (?:the )?office\b|\baway (?:from|until|till)\b"
    r"|\bim urlaub\b|\babwesend\b|\bnicht im büro\b|\ben (?:congé|vacances)\b|\bserai absente?\b"
    r"|\bde vacaciones\b|\bfuera de la oficina\b",
    re.IGNORECASE)
NOTHING_ASKED_WORDS = 60


def nothing_asked(request: RequestText) -> str:
    """What the mail is when it asks for no work ("a sign-off of delivered work", "word that
    someone is away"), or "" when it may ask for some."""
    text = clean_body(request.body).text
    if asks(text) or len(text.split()) > NOTHING_ASKED_WORDS:
        return ""
    if _AWAY.search(text) or _AWAY.search(request.subject):
        return "word that someone is away"
    if _APPROVES.search(text) and not _CHANGES.search(text):
        return "a sign-off of delivered work"
    return ""


def addressed_in(text: str, names: Mapping[str, object]) -> list[str]:
    """The staff first names that ``text`` addresses at the start of a clause, before an ask
    ("– Dev, can you fix it?", "2) Ana, we'd like three posts", "Ben: bitte …"), lower case."""
    if not names:
        return []
    found = _addressing(tuple(sorted(names))).findall(text[:2000])
    return list(dict.fromkeys(n.lower() for n in found))


@lru_cache(maxsize=4)
def _addressing(names: tuple[str, ...]) -> re.Pattern[str]:
    joined = "|".join(re.escape(n) for n in names)
    # The name starts its clause (a line, a sentence, a list item, after a dash): "the update is
    # Dev's, we need …" names Dev without asking him.
    return re.compile(rf"(?:^|(?<=[.!?;:–—\-)])\s*)\s*({joined})\s*[,:]\s*"
                      rf"(?={_ASKS.pattern}|we'd|we would|i'd|can|could|would|bitte|könnt)",
                      re.IGNORECASE | re.MULTILINE)


def says_separate(request: RequestText) -> bool:
    """The mail says it asks for separate things ("two things", "zwei Sachen", "separately")."""
    return bool(_SEPARATE.search(request.subject) or _SEPARATE.search(clean_body(request.body).text[:2000]))


def asks(text: str) -> bool:
    """Whether ``text`` asks for something in words of its own ("could you …", "wir bräuchten …")."""
    return bool(_ASKS.search(text))


def asking(text: str) -> list[str]:
    """The sentences of ``text`` that ask for something."""
    return [p for p in _SENTENCE.split(text) if _ASKS.search(p)]


_LIST_ITEM = re.compile(r"^\s*(?:[-–—•*·]|\d{1,2}[.)]|[a-z][.)])\s+", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])" + _NOT_ABBREVIATION + r"\s+|\n+", re.IGNORECASE)


# A line that lists asks after a colon ("We need: the copy, the design and the page built")
# starts by asking or saying what is needed; and what separates its items.
_NEEDS = re.compile(r"\b(?:need|needs|help with|that means|brauchen|bräuchten|benötigen|das heißt|il nous faut"
                    r"|besoin|necesitamos|necesitaríamos)\b", re.IGNORECASE)
_INLINE_ITEMS = re.compile(r"\s*(?:[,;]\s*(?:(?:and|und|et|y|plus|sowie|as well as)\s+)?"
                           r"|\s(?:and|und|et|y|plus|sowie|as well as)\s)\s*", re.IGNORECASE)


# Work the client does or has done, or that comes later: "the layout we do in-house", "Dev can
# upload them", "the text has been approved", "la parte técnica más adelante". Mentioned, not asked.
_NOT_OURS = re.compile(
    r"\bin[- ]house\b|\bourselves\b|\bour own (?:team|designers?|developers?|people|it|staff|template)\b"
    r"|\bwe(?:'ll| will) (?:handle|do|take care of|build|upload)\b"
    r"|\b(?:has|have) (?:already )?been (?:written|designed|done|approved|built)\b"
    r"|\b(?:is|are) already\b|\b(?:can|will) (?:upload|put|add) (?:it|them)\b|\bnothing else\b|\bno need\b"
    r"|\bdon't need\b"
    r"|\b(?:handled|done|written|designed|built) by\b|\bselbst\b|\bintern\b|\binhouse\b"
    r"|\b(?:machen|übernehmen|erledigen) wir\b|\bkümmern wir uns\b|\b(?:haben wir|ist|sind) (?:schon|bereits)\b"
    r"|\bbrauchen wir nicht\b|\bnicht nötig\b|\ben interne\b|\bnous-mêmes\b|\bnous nous en occupons\b"
    r"|\bnosotros mismos\b|\binternamente\b|\bmás adelante\b|\bplus tard\b|\blater\b|\bspäter\b",
    re.IGNORECASE)
_BOTH = re.compile(r"\b(?:both|sowohl|à la fois|tanto)\s+(.{3,}?)\s+(?:and|als auch|et|como)\s+(.{3,})", re.IGNORECASE)


def segments(request: RequestText) -> list[RequestText]:
    """The parts of the body that ask for something, each read on its own: a request asking
    for two kinds of work is mixed, and a person should route it. A sentence counts when it
    asks ("could you …", "bitte …"), split into its clauses ("…, and also …"); so does each
    item of a list that a line ending in a colon introduces ("We need:") or that follows an
    ask's colon on its line ("Could you do: the copy, the design and the build"), and each
    paragraph of a mail that says its asks are separate ("two things"). Sentences that only
    tell ("the new logo went down well", "it should work in print and also as tiles") do not,
    nor do those about work the client does itself or later ("we'll handle the layout in-house")."""
    body = clean_body(request.body).text[:2000]
    parts: list[str] = []
    listing = False   # in a list that a line such as "We need:" introduced: each item is an ask
    for line in body.split("\n"):
        item = _LIST_ITEM.match(line)
        if listing and item:
            parts.append(line[item.end():].strip())
            continue
        listing = line.rstrip().endswith(":")
        for sentence in _SENTENCE.split(line):
            head, colon, items = sentence.partition(": ")
            if colon and _INLINE_ITEMS.search(items) and len(words(head)) <= 12 \
                    and (_ASKS.search(head) or _NEEDS.search(head)):
                # "We need: the copy, the design and the page built": each item is an ask.
                parts.extend(item.strip() for item in _INLINE_ITEMS.split(items) if item and item.strip())
                sentence = head
            if _ASKS.search(sentence):
                both = _BOTH.search(sentence)
                if both:  # "help with both the writing and the design": two asks
                    parts.extend(part.strip() for part in both.groups())
                    sentence = sentence[:both.start()]
                parts.extend(c.strip() for c in _SEGMENT.split(sentence) if c and c.strip())
    if says_separate(request):
        # "Two things: first, the whitepaper … Second, …": each paragraph is one of them, also
        # when its ask is a short "Can you work those in?" after the sentence saying what.
        parts += [line for line in body.split("\n") if len(words(line)) >= PARAGRAPH_WORDS]
    return [RequestText(subject="", body=p) for p in parts
            if len(words(p)) >= MIN_SEGMENT_WORDS and not _NOT_OURS.search(p)][:12]


def words(text: str) -> list[str]:
    """Lower-case words (letters, with inner hyphens; or numbers with a unit such as 404 or 2x)."""
    return _WORD.findall(text.lower())


# "Re: deck": a reply's subject names the thread, which may be about other work than the new
# text asks for ("got it, thanks" under "Re: case study – final"); its words weigh as the body's.
_REPLY_SUBJECT = re.compile(r"\s*(?:re|aw|wg|fwd?|tr|rv|sv)\s*:", re.IGNORECASE)


def tokens(request: RequestText, greetings: Mapping[str, tuple[str, ...]] | None = None,
           lexicon: Lexicon | None = None) -> list[str]:
    """Every feature of ``request``, repeated as often as it occurs.

    ``greetings`` maps a staff first name (lower case) to the queues that person works in.
    """
    body = clean_body(request.body)
    subject_words = words(request.subject)[:60]
    body_words = words(body.text)[:MAX_WORDS]
    out: list[str] = []
    if not _REPLY_SUBJECT.match(request.subject):
        for word in subject_words:
            out.append("s:" + word)
    _add_words(out, subject_words)
    _add_words(out, body_words)
    for sentence in asking(body.text[:2000])[:4]:
        _add_words(out, words(sentence)[:40])
    gram_words = subject_words + body_words[:CHAR_GRAM_WORDS]
    if request.type_word:
        type_words = words(request.type_word)
        out.extend("t:" + w for w in type_words)
        out.extend("s:" + w for w in type_words for _ in range(2))
        _add_words(out, type_words)
        gram_words = type_words + type_words + gram_words
    _add_char_grams(out, gram_words)
    if lexicon is not None:
        out.extend(lexicon.hits(f"{request.subject}\n{request.type_word or ''}\n{body.text[:MAX_BODY_CHARS]}"))
        if request.type_word:  # the client's own name for the work: the strongest word there is
            out.extend(lexicon.hits(request.type_word) * TYPE_WORD_HITS)
    if request.client:
        out.append("client:" + request.client.lower())
    if body.greeted:
        out.append("greet:" + body.greeted)
        for queue in (greetings or {}).get(body.greeted, ()):
            out.append("greetq:" + queue)
    return out


def _add_words(out: list[str], found: list[str]) -> None:
    previous = None
    for word in found:
        if word in STOPWORDS:
            previous = None
            continue
        out.append("w:" + word)
        if previous is not None:
            out.append(f"b:{previous} {word}")
        previous = word


def _add_char_grams(out: list[str], found: list[str]) -> None:
    for word in found:
        if word in STOPWORDS or len(word) < 3:
            continue
        padded = f"c: {word} "
        length = len(padded)
        for size in CHAR_GRAM_SIZES:
            out.extend(["c:" + padded[start:start + size] for start in range(2, length - size + 1)])


def feature_weight(token: str) -> float:
    """The weight of a token's kind (``FEATURE_WEIGHTS``; 1 for words and tags)."""
    return FEATURE_WEIGHTS.get(token.partition(":")[0], 1.0)


def shown(token: str) -> str | None:
    """The words a token stands for, for a reason shown to people; None for n-grams and tags."""
    kind, _, text = token.partition(":")
    return text if kind in ("w", "b", "s", "t") else None
