"""What an HTTP answer means for a delivery, and when to try again. Pure: table-tested.

2xx: delivered. 410 Gone: the receiver was deleted; the destination is disabled (loudly) until an
operator says otherwise. 408, 425, 429 and 5xx, a timeout or a refused connection: try again
later, doubling the wait (with jitter, so a recovering receiver is not hit by every sender at
once) and never sooner than its ``Retry-After`` (Slack's 429 sends one). Any other answer (400,
401, 403, 404, a redirect to another host) will not change by itself: the event is parked for
an operator (`dispatchd integrations retry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum


class Outcome(str, Enum):
    SENT = "sent"
    RETRY = "retry"
    PARK = "park"
    GONE = "gone"


RETRIED_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Answer:
    """What came back from one attempt: a status (None: no HTTP answer at all; 0: not sent, the
    event was erased) and why."""

    status: int | None
    detail: str = ""
    retry_after: float | None = None  # seconds the receiver asked us to wait


def outcome_of(answer: Answer) -> Outcome:
    status = answer.status
    if status is None or status in RETRIED_STATUSES or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SENT
    if status == 410:
        return Outcome.GONE
    return Outcome.PARK


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    max_retry_after: float = 6 * 3600.0  # a Retry-After beyond this is taken as this

    def delay(self, attempts: int, retry_after: float | None, jitter: float) -> float:
        """Seconds before attempt ``attempts + 1``; ``jitter`` in [0, 1) takes up to half off."""
        doubled = min(self.max_seconds, self.base_seconds * 2 ** max(0, min(attempts, 30) - 1))
        wait = doubled * (1 - jitter / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After``: delay-seconds or an HTTP date (RFC 9110 10.2.3); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def next_attempt(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
