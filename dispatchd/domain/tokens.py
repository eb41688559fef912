"""Signed reply addresses: ``requests+t42.k7q2m9x4p1z8c3v6@agency.test``.

Each status email's Reply-To carries a token bound to the task and to the recipient, signed
with HMAC-SHA256 under the deployment's secret. A reply from that recipient proves it came
from someone who received our mail; a forged From: cannot produce a valid token.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

_TOKEN = re.compile(r"^t(\d{1,12})\.([a-z2-7]{16})$")
_BOUNCE = re.compile(r"^m(\d{1,12})\.([0-9a-f]{12})\.([a-z2-7]{8})$")
_BOUNCE_BY_ROW_ID = re.compile(r"^b(\d{1,12})\.([a-z2-7]{8})$")  # earlier releases; bounces may come late
_OUR_MESSAGE_ID = re.compile(r"^<dispatchd\.(\d{1,12})\.([0-9a-f]{12})[0-9a-f]*@")


@dataclass(frozen=True)
class ReplyToken:
    task_id: int
    signature: str


@dataclass(frozen=True)
class BouncedEmail:
    """Which of our emails a bounce is about, from its VERP address: the task and the start of
    the random part of its Message-ID (or, for mail sent by earlier releases, its outbox row id)."""

    task_id: int | None = None
    message_token: str | None = None
    outbox_id: int | None = None


def _signature(secret: bytes, task_id: int | str, recipient: str) -> str:
    digest = hmac.digest(secret, f"{task_id}:{recipient.strip().lower()}".encode(), "sha256")
    return base64.b32encode(digest[:10]).decode().lower()  # 10 bytes are the first 16 base32 letters


def reply_address(intake: str, task_id: int, recipient: str, secret: bytes) -> str:
    """The per-task, per-recipient address replies should go to."""
    local, _, domain = intake.partition("@")
    return f"{local}+t{task_id}.{_signature(secret, task_id, recipient)}@{domain}"


def _tags(addresses: tuple[str, ...], intakes: Collection[str]) -> Iterator[str]:
    """The plus-tags of those ``addresses`` that are plus-addresses of one of our ``intakes``."""
    ours = {intake.lower() for intake in intakes}
    for address in addresses:
        user, _, host = address.lower().partition("@")
        base, plus, tag = user.partition("+")
        if plus and f"{base}@{host}" in ours:
            yield tag


def find_token(addresses: tuple[str, ...], intakes: Collection[str]) -> ReplyToken | None:
    """The token in any of ``addresses`` that is a plus-address of one of our ``intakes``
    (the signature does not name the address: a reply routes whichever mailbox it reaches)."""
    for tag in _tags(addresses, intakes):
        match = _TOKEN.match(tag)
        if match:
            return ReplyToken(int(match.group(1)), match.group(2))
    return None


def verify(token: ReplyToken, sender: str, secret: bytes) -> bool:
    """True when ``token`` was issued to ``sender`` for its task."""
    return hmac.compare_digest(token.signature, _signature(secret, token.task_id, sender))


def bounce_address(intake: str, message_id: str, secret: bytes) -> str:
    """The VERP envelope sender of one outgoing email (one of ours, from ``new_message_id``):
    its bounces name the email. Known before the email is stored, so queuing needs no id."""
    match = _OUR_MESSAGE_ID.match(message_id)
    if match is None:
        raise ValueError(f"not a Message-ID of ours: {message_id}")
    reference = f"{match.group(1)}.{match.group(2)}"
    local, _, domain = intake.partition("@")
    return f"{local}+m{reference}.{_signature(secret, reference, 'bounce')[:8]}@{domain}"


def find_bounced_email(addresses: tuple[str, ...], intake: str, secret: bytes) -> BouncedEmail | None:
    """The email a VERP address among ``addresses`` names, if its signature holds."""
    for tag in _tags(addresses, (intake,)):
        match = _BOUNCE.match(tag)
        if match:
            reference = f"{match.group(1)}.{match.group(2)}"
            if hmac.compare_digest(match.group(3), _signature(secret, reference, "bounce")[:8]):
                return BouncedEmail(task_id=int(match.group(1)) or None, message_token=match.group(2))
        match = _BOUNCE_BY_ROW_ID.match(tag)
        if match and hmac.compare_digest(match.group(2), _signature(secret, int(match.group(1)), "bounce")[:8]):
            return BouncedEmail(outbox_id=int(match.group(1)))
    return None
