"""Webhook signatures as Stripe and GitHub make them: HMAC-SHA256 over "<timestamp>.<body>".

The header reads ``Dispatchd-Signature: t=1767225600,v1=5257a8…``. A receiver recomputes the
HMAC with the shared secret over the timestamp, a dot and the raw body, compares in constant
time, and refuses timestamps older than a few minutes (a replayed request). README "Verifying a
webhook" shows the same steps for receivers.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Dispatchd-Signature"
TOLERANCE_SECONDS = 300


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: true if ``header`` signs ``body`` with ``secret`` and is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or abs(now - int(parts["t"])) > tolerance:
        return False
    expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
