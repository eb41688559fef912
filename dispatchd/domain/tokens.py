"""Signed reply addresses: ``requests+t42.k7q2m9x4p1z8c3v6@agency.test``.

Each status email's Reply-To carries a token bound to the task and to the recipient, signed
with HMAC-SHA256 under the deployment's secret. A reply from that recipient proves it came
from someone who received our mail; a forged From: cannot produce a valid token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass

_TOKEN = re.compile(r"^t(\d{1,12})\.([a-z2-7]{16})$")
_BOUNCE = re.compile(r"^b(\d{1,12})\.([a-z2-7]{8})$")


@dataclass(frozen=True)
class ReplyToken:
    task_id: int
    signature: str


def _signature(secret: bytes, task_id: int, recipient: str) -> str:
    digest = hmac.new(secret, f"{task_id}:{recipient.strip().lower()}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def reply_address(intake: str, task_id: int, recipient: str, secret: bytes) -> str:
    """The per-task, per-recipient address replies should go to."""
    local, _, domain = intake.partition("@")
    return f"{local}+t{task_id}.{_signature(secret, task_id, recipient)}@{domain}"


def find_token(addresses: tuple[str, ...], intakes: Collection[str]) -> ReplyToken | None:
    """The token in any of ``addresses`` that is a plus-address of one of our ``intakes``
    (the signature does not name the address: a reply routes whichever mailbox it reaches)."""
    ours = {intake.lower() for intake in intakes}
    for address in addresses:
        user, _, host = address.lower().partition("@")
        base, plus, tag = user.partition("+")
        if plus and f"{base}@{host}" in ours:
            match = _TOKEN.match(tag)
            if match:
                return ReplyToken(int(match.group(1)), match.group(2))
    return None


def verify(token: ReplyToken, sender: str, secret: bytes) -> bool:
    """True when ``token`` was issued to ``sender`` for its task."""
    return hmac.compare_digest(token.signature, _signature(secret, token.task_id, sender))


def bounce_address(intake: str, outbox_id: int, secret: bytes) -> str:
    """The VERP envelope sender of one outgoing email: its bounces name it."""
    local, _, domain = intake.partition("@")
    return f"{local}+b{outbox_id}.{_signature(secret, outbox_id, 'bounce')[:8]}@{domain}"


def find_bounced_outbox_id(addresses: tuple[str, ...], intake: str, secret: bytes) -> int | None:
    """The outbox id in a VERP address among ``addresses``, if its signature holds."""
    local, _, domain = intake.lower().partition("@")
    for address in addresses:
        user, _, host = address.lower().partition("@")
        base, plus, tag = user.partition("+")
        match = _BOUNCE.match(tag) if plus and base == local and host == domain else None
        if match and hmac.compare_digest(match.group(2), _signature(secret, int(match.group(1)), "bounce")[:8]):
            return int(match.group(1))
    return None
