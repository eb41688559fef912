"""The new part of a reply: what the sender wrote themselves, split from what they quoted and
from their signature.

Quoted text can never run as a command, so everything that looks quoted goes:
- every line starting with ``>`` (also an accidental send that is nothing but ``> approve``);
- everything after an attribution line ("On … wrote:", "Am … schrieb …:", "Le … a écrit :",
  "El … escribió:" and the other languages mail-parser-reply knows), unless what follows is a
  ``>`` block with new text under it (bottom-posting: the new text stays);
- Outlook's header blocks (From:/Sent:/To:, Von:/Gesendet:/An:, De:/Envoyé:/À: …), its
  underscore separator line and "-----Original Message-----" in its languages.

The signature is cut off at a ``--`` line, a "Sent from my iPhone" line, a closing line
("Best regards", "Viele Grüße", "Cordialement", "Saludos" …) near the end, or a last paragraph
of contact details (phone numbers, addresses, ``|``-separated titles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

_QUOTED = re.compile(r"^\s*>")
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SEPARATORS = re.compile(
    r"^\s*(?:[_\-=]{20,}"
    r"|-{2,} ?(?:original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|-{2,} ?on .{5,200} wrote ?-{2,}"
    r"|messaggio originale|oorspronkelijk bericht|forwarded message|weitergeleitete nachricht"
    r"|message transféré|mensaje reenviado) ?-{2,})\s*$", re.IGNORECASE)
_SIG_DASHES = re.compile(r"^\s*(?:--|—|-- ?|__)\s*$")
_SENT_FROM = re.compile(
    r"^\s*(?:sent from (?:my|mail for|outlook)|get outlook for|von meinem .{1,40} gesendet|gesendet von"
    r"|envoyé de mon|envoyé depuis|obtenir outlook|enviado desde mi|enviado desde|obtener outlook)\b",
    re.IGNORECASE)
_CLOSINGS = re.compile(
    r"^\s*(?:(?:best|kind|warm|many|warmest|kindest)(?: regards| wishes)?|regards|cheers|best wishes|all the best"
    r"|thanks(?: (?:again|a lot|so much))?|thank you(?: very much)?|many thanks|sincerely|yours|ta"
    r"|(?:mit )?(?:freundlichen|besten|lieben|herzlichen|viele|beste|liebe) gr(?:ü|ue)(?:ß|ss)en?|viele grüße|vg|lg|mfg"
    r"|gruß|gruss|danke(?: schön| sehr)?|vielen dank"
    r"|cordialement|bien (?:cordialement|à vous)|merci(?: beaucoup)?|bonne journée|salutations|amicalement|bises"
    r"|(?:un )?saludos?(?: cordiales)?|atentamente|gracias|muchas gracias|un abrazo)\s*[,.!-]*"
    r"(?:\s*(?-i:[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,2})\s*[.!]?)?\s*$", re.IGNORECASE)
# Attribution lines the library's patterns miss (its Spanish one wants two spaces before
# "escribió"; Gmail wraps long ones onto a second line).
_ATTRIBUTION_END = re.compile(
    r"^.{0,300}\b(?:wrote|writes|schrieb|a écrit|a ecrit|escribió|escribio|ha scritto|schreef|skrev|napisał|"
    r"napsal\(a\)|kirjoitti|pisze|escreveu|написал\(а\)|написал|написала)\s*:\s*$", re.IGNORECASE)
# "Op … schreef Test Agency <…>:", "Am … schrieb X:": the writer's name after the verb.
_ATTRIBUTION_NAMED = re.compile(
    r"^\s*(?:on|am|le|el|il|op|den|dne|w dniu|em|il giorno)\s.{0,200}\b(?:wrote|schrieb|schreef|skrev|a écrit|"
    r"escribió|ha scritto|escreveu|pisze|napsal)\b.{0,160}:\s*$", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*(?:on|am|le|el|il|op|den|dne|w dniu)\s", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:from|von|de|da|van|från|od|fra)\s?:", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(?:sent|date|to|gesendet|datum|an|envoyé|date|à|enviado|fecha|para|"
                           r"inviato|data|verzonden|skickat|sendt|odesláno)\s?:", re.IGNORECASE)
_CONTACT = re.compile(
    r"(?:\+?\d[\d ()./-]{6,}\d|[\w.+-]+@[\w-]+\.[\w.-]+|https?://|www\.|\s\|\s"
    r"|^\s*(?:tel|phone|mobile|mob|cell|fax|m|t|e|w|p|direct|office|handy|tél|móvil)\.?\s*:)", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyText:
    """``body``: the sender's own words; ``signature``: their sign-off (never read as commands)."""

    body: str
    signature: str = ""


# Banners a mail server puts on top of what the sender wrote ("CAUTION: This email originated
# from outside of the organization …"): not the sender's words, so not where reading starts.
_BANNER = re.compile(
    r"^\s*(?:\[?external\]?:?(?:\s|$)|external email|caution:|warning:|attention:|achtung:|vorsicht:|"
    r"this (?:e-?mail|message) (?:originated|was sent|came) from outside|you don't often get email from|"
    r"some people who received this message don't often get email from|diese e-?mail stammt von au(?:ß|ss)erhalb)",
    re.IGNORECASE)


# What a person writes above the quote fits in this; the rest of a huge body is not read for
# commands (a hostile 1 MB body must not cost seconds of regex time).
MAX_READ = 100_000


def split_reply(text: str) -> ReplyText:
    """``text`` (a plain-text body) without what it quotes, its body split from its signature."""
    lines = _normalise(text[:MAX_READ]).split("\n")
    while lines and (not lines[0].strip() or _BANNER.match(lines[0])):
        lines = lines[1:]
    lines = _without_quotes(lines)
    body, signature = _split_signature(lines)
    return ReplyText("\n".join(body).strip(), "\n".join(signature).strip())


def latest_reply(text: str) -> str:
    """The text the sender wrote themselves, without what they quoted or their signature."""
    return split_reply(text).body


def _normalise(text: str) -> str:
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).replace("\xa0", " ")
    return "\n".join(line.rstrip() for line in text.split("\n"))


def _without_quotes(lines: list[str]) -> list[str]:
    """Drop ``>`` lines, attribution lines and, after an unquoted header block, the rest."""
    # Quoted lines go anyway: the patterns only look for the unquoted lines that introduce them
    # (searching inside deep quotes made the library's patterns slow).
    text = "\n".join("" if _QUOTED.match(line) else line for line in lines)
    kept: list[str] = []
    headers = _header_lines(text)
    index = 0
    while index < len(lines):
        line = lines[index]
        if _SEPARATORS.match(line):
            break
        if index in headers:
            end = headers[index]
            following = next((candidate for candidate in lines[end:] if candidate.strip()), "")
            if not _QUOTED.match(following):
                break  # an Outlook block or an unquoted original: all of it is the old message
            index = end  # bottom-posting: skip the attribution, the '>' block goes below
            continue
        if not _QUOTED.match(line):
            kept.append(line)
        index += 1
    return kept


def _header_lines(text: str) -> dict[int, int]:
    """Start line -> line after the end, for each attribution line or header block in ``text``."""
    found: dict[int, int] = {}
    for match in _header_regex().finditer(text):
        if not match.group(0).strip():
            continue
        start_line = text.count("\n", 0, match.start())
        if text[match.start()] == "\n":
            start_line += 1
        end_line = text.count("\n", 0, match.end()) + 1
        found.setdefault(start_line, end_line)
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if _ATTRIBUTION_END.match(line) or _ATTRIBUTION_NAMED.match(line):
            above = number - 1
            start = above if above >= 0 and _ATTRIBUTION_START.match(lines[above]) \
                and not _ATTRIBUTION_END.match(lines[above]) else number
            found.setdefault(start, number + 1)
        elif _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(after) for after in lines[number + 1:number + 4]):
            found.setdefault(number, number + 1)
    return found


@lru_cache(maxsize=1)
def _header_regex() -> re.Pattern[str]:
    """mail-parser-reply's attribution and header patterns for every language it knows."""
    languages = [name for name in MAIL_LANGUAGES if name != "david"]
    return EmailMessage(text="", languages=languages).HEADER_REGEX


def _split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    for index, line in enumerate(lines):
        if _SIG_DASHES.match(line) or _SENT_FROM.match(line):
            return _split_signature(lines[:index])[0], lines[index:]
    end = len(lines)
    # A closing line ("Best regards,") followed by at most a few short lines (name, title).
    for index in range(max(1, len(lines) - 6), len(lines)):
        if _CLOSINGS.match(lines[index]) and all(len(rest.split()) <= 8 for rest in lines[index + 1:]):
            end = index
            break
    body, signature = lines[:end], lines[end:]
    named = _name_and_contact_block(body)
    if named is not None:
        body, signature = body[:named], body[named:] + signature
    # A last paragraph of contact details (after a blank line) is a signature too.
    paragraph_start = max((i for i, line in enumerate(body) if not line.strip()), default=-1) + 1
    paragraph = [line for line in body[paragraph_start:] if line.strip()]
    if paragraph_start > 0 and paragraph and (_looks_like_contact_block(paragraph) or _just_a_name(paragraph)):
        body, signature = body[:paragraph_start], body[paragraph_start:] + signature
    return body, signature


_NAME = re.compile(r"^\s*[A-Z][\w'.-]+(?:\s+(?:[A-Z][\w'.-]+|von|van|de|der|la|del|y)){1,3}\s*$")
_LABELLED = re.compile(r"^\s*[\w ]{1,20}:\s*\S")  # "note: …" may be a command, "T: +49 …" is not


def _name_and_contact_block(lines: list[str]) -> int | None:
    """Where a sign-off without a blank line starts: a name ("Ben Miller") followed only by
    short lines, one of them contact details ("Team Lead | Agency", "+49 30 …")."""
    start = len(lines)
    while start > 1 and lines[start - 1].strip() and len(lines[start - 1].split()) <= 8 \
            and (not _LABELLED.match(lines[start - 1]) or _CONTACT.search(lines[start - 1])):
        start -= 1
    for index in range(max(start, 1), len(lines)):
        if _NAME.match(lines[index]) and any(_CONTACT.search(line) for line in lines[index + 1:]):
            return index
    return None


_SIGNED = re.compile(r"^\s*(?:-\s*)?(?:[A-Z][a-zà-ÿ'.-]+|[A-Z]{1,3}\.?)(?:\s+(?:[A-Z][a-zà-ÿ'.-]+|[A-Z]\.)){0,2}\s*$")


def _just_a_name(paragraph: list[str]) -> bool:
    """A last paragraph that is only a name or initials ("Ana", "Ben M.", "- JW"): a sign-off."""
    return len(paragraph) == 1 and _SIGNED.match(paragraph[0]) is not None


def _looks_like_contact_block(paragraph: list[str]) -> bool:
    """Short lines of which at least one carries a phone number, an address, a URL or '|'."""
    if len(paragraph) > 8 or any(len(line.split()) > 10 for line in paragraph):
        return False
    return any(_CONTACT.search(line) for line in paragraph)
