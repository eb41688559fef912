"""The automatic-reply budget (RFC 3834 spirit): how often we may answer, before we stop.

Headers catch well-behaved robots (``domain/loops``). These caps catch the rest: a responder
that strips headers, or one that changes its address but sends the same text each time.
Pure: the caller counts recent replies and messages; this decides.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyLimits:
    per_sender_per_hour: int = 30
    per_thread_per_hour: int = 10
    per_hour: int = 1000
    same_body_senders: int = 5


@dataclass(frozen=True)
class RecentActivity:
    replies_to_sender: int
    replies_in_thread: int
    replies_total: int
    senders_with_same_body: int


def breaker_reason(activity: RecentActivity, limits: ReplyLimits) -> str | None:
    """Why answering now could feed a loop, or None if it is safe."""
    if activity.replies_to_sender >= limits.per_sender_per_hour:
        return f"{activity.replies_to_sender} automatic replies to this sender in the last hour"
    if activity.replies_in_thread >= limits.per_thread_per_hour:
        return f"{activity.replies_in_thread} automatic replies in this thread in the last hour"
    if activity.replies_total >= limits.per_hour:
        return f"{activity.replies_total} automatic replies in the last hour (global cap)"
    if activity.senders_with_same_body >= limits.same_body_senders:
        return f"the same text came from {activity.senders_with_same_body} addresses in the last hour"
    return None


MIN_FINGERPRINT_WORDS = 8


def body_fingerprint(text: str) -> str | None:
    """A hash of the words of a body, blind to spacing, case, digits and quoting; None for
    short texts ("Thanks!", "see attached"), which people legitimately repeat."""
    words = re.sub(r"[\d>]+", " ", text.lower()).split()
    if len(words) < MIN_FINGERPRINT_WORDS:
        return None
    return hashlib.sha256(" ".join(words[:400]).encode()).hexdigest()[:32]
