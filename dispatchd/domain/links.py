"""Client links: ``https://…/c/<token>`` opens one client's requests for one of its contacts.

The token is the link's terms (client, contact, when issued, until when) and an HMAC-SHA256 of
them under the web secret, so a changed letter is refused and rotating the secret ends every
link. It expires (``[web] link_days``) and can be revoked: a link issued before a contact's or
a client's revocation time no longer opens (``dispatchd web revoke``). Pure: the caller gives
the time and the revocations; nothing here reads the clock or the database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum

_VERSION = "1"
_SEPARATOR = "\x1f"  # cannot occur in a client's name or an address
_SIGNATURE_BYTES = 18
MAX_TOKEN_LENGTH = 600


@dataclass(frozen=True)
class ClientLink:
    client: str
    contact: str  # lower case
    issued: datetime
    expires: datetime


class LinkState(Enum):
    VALID = "valid"
    EXPIRED = "expired"  # genuine but old: the contact may ask for a fresh one by email
    REVOKED = "revoked"  # genuine, withdrawn by the team
    INVALID = "invalid"  # not ours: malformed, tampered with, or signed with another secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: bytes) -> bytes:
    return hmac.digest(secret, b"client-link:" + payload, "sha256")[:_SIGNATURE_BYTES]


def sign_link(secret: bytes, client: str, contact: str, issued: datetime, valid_for: timedelta) -> str:
    """The token of a link for ``contact`` of ``client``, issued at ``issued`` (aware)."""
    start = int(issued.timestamp())
    payload = _SEPARATOR.join((_VERSION, client, contact.strip().lower(), str(start),
                               str(start + int(valid_for.total_seconds())))).encode()
    return f"{_b64(payload)}.{_b64(_signature(secret, payload))}"


def read_link(token: str, secret: bytes) -> ClientLink | None:
    """The link's terms if ``token`` is one we signed with ``secret``; None if it is not."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    encoded, _, signature = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _signature(secret, payload)):
        return None
    parts = payload.decode("utf-8", "replace").split(_SEPARATOR)
    if len(parts) != 5 or parts[0] != _VERSION or not parts[3].isdigit() or not parts[4].isdigit():
        return None
    return ClientLink(parts[1], parts[2], datetime.fromtimestamp(int(parts[3]), timezone.utc),
                      datetime.fromtimestamp(int(parts[4]), timezone.utc))


def link_state(link: ClientLink | None, now: datetime, revoked_since: datetime | None) -> LinkState:
    """Whether a link opens at ``now``; ``revoked_since``: the latest revocation of its contact
    or its client (links issued before it are withdrawn)."""
    if link is None:
        return LinkState.INVALID
    if revoked_since is not None and link.issued < revoked_since:
        return LinkState.REVOKED
    if now >= link.expires:
        return LinkState.EXPIRED
    return LinkState.VALID
