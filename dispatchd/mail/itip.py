"""Calendar answers in mail (RFC 6047): the ``text/calendar; method=REPLY`` part that Gmail,
Outlook and Apple Calendar send when someone accepts or declines an invitation."""

from __future__ import annotations

import email
import email.policy

from dispatchd.domain.invites import CalendarAnswer, read_calendar_answer

_LIMIT = 256 * 1024  # a calendar part is a few kB; more is not an answer to us


def calendar_answer(raw: bytes) -> CalendarAnswer | None:
    """The attendee's answer a message carries, or None. Most mail has no calendar part at all:
    the bytes are looked at before anything is parsed."""
    if b"text/calendar" not in raw and b"application/ics" not in raw:
        return None
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in message.walk():
        if part.get_content_type() not in ("text/calendar", "application/ics"):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and len(payload) <= _LIMIT:
            answer = read_calendar_answer(payload)
            if answer is not None:
                return answer
    return None
