"""The subject convention: ``[Client] - Type - Description``, as real people type it.

Pure functions. Tolerates reply/forward prefixes in many languages, optional brackets,
the separators - – — | :, stray spaces, any case and an optional ``[P0]``..``[P3]`` tag.
Other bracketed tags (a client's own ticket numbers such as ``[ABC-123]``) are kept.
"""

from __future__ import annotations

import re

from dispatchd.domain.models import ParsedSubject, Priority, SubjectError

# Re, Fwd, Fw, AW, WG, SV, VS, Antw, RIF, Odp, Vá, 回复, 转发, 答复, Ynt, Tr, Enc, RV, Doorst …
_PREFIX = re.compile(
    r"^\s*(?:re|r|fwd?|fw|aw|wg|sv|vs|antw|antwort|rif|i|odp|pd|v[áa]|tr|enc|rv|ynt|ilt|doorst|"
    r"回复|回覆|答复|转发|轉寄|返信|転送)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE,
)
_PRIORITY_TAG = re.compile(r"\[\s*(p[0-3])\s*\]", re.IGNORECASE)
_TASK_REF = re.compile(r"\[#(\d{1,12})\]")
_BRACKETED = re.compile(r"^\s*\[([^\[\]]*)\]\s*")
_LEADING_SEPARATORS = re.compile(r"^[\s\-–—|:]+")
# A hyphen separates only when spaced ("Blog - post"), so "e-mail" or "follow-up" survive.
_SEPARATOR = re.compile(r"\s+-+\s+|\s*[–—|:]\s*|\s+-+(?=\S)|(?<=\S)-+\s+")
_FOREIGN_TAG = re.compile(r"\[[^\[\]#]{1,40}\]")
_SPACES = re.compile(r"\s+")

MAX_LABEL = 60


def strip_prefixes(subject: str) -> str:
    """Remove any number of reply/forward prefixes: 'RE: AW: Fwd: x' -> 'x'."""
    previous = None
    while previous != subject:
        previous = subject
        subject = _PREFIX.sub("", subject, count=1)
    return subject.strip()


def task_reference(subject: str) -> int | None:
    """The task id of a ``[#42]`` tag anywhere in the subject, if present."""
    match = _TASK_REF.search(subject or "")
    return int(match.group(1)) if match else None


def parse_subject(subject: str) -> ParsedSubject | SubjectError:
    """Read ``[Client] - Type - Description`` out of a raw (already decoded) subject line."""
    text = _SPACES.sub(" ", (subject or "").replace("\x00", "")).strip()
    text = strip_prefixes(text)
    if not text:
        return SubjectError("the subject is empty")
    priority = None
    found = _PRIORITY_TAG.search(text)
    if found:
        priority = Priority(found.group(1).upper())
        text = (text[: found.start()] + " " + text[found.end():]).strip()
        text = _SPACES.sub(" ", text)
    client, rest = _take_part(text)
    if client is None:
        return SubjectError("the subject does not start with the client name, e.g. [Acme]")
    type_label, description = _take_part(rest)
    if type_label is None or not description:
        return SubjectError(
            "the subject needs three parts, client, type and description, separated by ' - '"
        )
    description = _LEADING_SEPARATORS.sub("", description).strip()
    if not description:
        return SubjectError("the description after the type is empty")
    if len(client) > MAX_LABEL or len(type_label) > MAX_LABEL:
        return SubjectError("the client or type part is too long to be a name")
    tags = tuple(_FOREIGN_TAG.findall(description))
    return ParsedSubject(client, type_label, description, priority, tags)


def _take_part(text: str) -> tuple[str | None, str]:
    """Split one leading part off: a [bracketed] label, or text up to the first separator."""
    text = _LEADING_SEPARATORS.sub("", text) if not text.startswith("[") else text
    bracketed = _BRACKETED.match(text)
    if bracketed:
        label = bracketed.group(1).strip()
        # The closing bracket is itself a separator: "[Acme]Content - x" is fine.
        return (label or None), _LEADING_SEPARATORS.sub("", text[bracketed.end():])
    separator = _SEPARATOR.search(text)
    if not separator or separator.start() == 0:
        return None, text
    return text[: separator.start()].strip() or None, text[separator.end():]
