"""A client's timeline: their request, status changes, the team's messages to them, their own
words; never internal notes, routing reasons, escalations or refusals."""

from datetime import datetime, timedelta, timezone

import pytest

from dispatchd.domain.client_view import EventRow, client_timeline

T0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
CLIENT, STAFF = "bob@acme.test", "ana@agency.test"


def _is_clients(address: str) -> bool:
    return address.endswith("@acme.test")


@pytest.mark.parametrize("event, shown", [
    (EventRow(T0, CLIENT, "received", "subject: x", None, "received"), ("received", None, "")),
    (EventRow(T0, "dispatchd", "routed", "rule 3: type Content -> content", "received", "queued"), ("status", "queued", "")),
    (EventRow(T0, "dispatchd", "triaged", "no type", "received", "received"), None),
    (EventRow(T0, STAFF, "status", "start: internal reason", "queued", "in_progress"), ("status", "in_progress", "")),
    (EventRow(T0, STAFF, "to_client", "Here is the draft.", None, None), ("message", None, "Here is the draft.")),
    (EventRow(T0, STAFF, "comment", "client is difficult, go slow", None, None), None),
    (EventRow(T0, CLIENT, "comment", "Please use the blue logo", None, None), ("comment", None, "Please use the blue logo")),
    (EventRow(T0, "mallory@evil.test", "unverified_comment", "UNVERIFIED: cancel it", None, None), None),
    (EventRow(T0, "dispatchd", "assigned", "nobody -> ana@agency.test", None, None), None),
    (EventRow(T0, "dispatchd", "sla", "red at 100 %", None, None), None),
    (EventRow(T0, "dispatchd", "escalated", "to Morgan", None, None), None),
    (EventRow(T0, CLIENT, "refused", "sender not verified", None, None), None),
    (EventRow(T0, "dispatchd", "bounce", "550 no such user", None, None), None),
    (EventRow(T0, STAFF, "priority", "P2 -> P1", None, None), None),
    (EventRow(T0, STAFF, "due", "by Friday", None, None), ("due", None, "")),
    (EventRow(T0, CLIENT, "cancel_requested", "not needed", None, None), ("cancel_requested", None, "not needed")),
    (EventRow(T0, CLIENT, "attachments", "brief.pdf", None, None), ("files", None, "brief.pdf")),
    (EventRow(T0, STAFF, "attachments", "internal.xlsx", None, None), None),
    (EventRow(T0, "dispatchd", "some_future_kind", "secret", None, None), None),
])
def test_what_the_client_sees_of_one_event(event: EventRow, shown: tuple[str, str | None, str] | None) -> None:
    entries = client_timeline([event], _is_clients)
    assert [(e.kind, e.status, e.text) for e in entries] == ([shown] if shown else [])


def test_order_is_kept() -> None:
    events = [EventRow(T0 + timedelta(minutes=i), STAFF, "status", "", a, b)
              for i, (a, b) in enumerate([("queued", "in_progress"), ("in_progress", "delivered")])]
    assert [e.status for e in client_timeline(events, _is_clients)] == ["in_progress", "delivered"]
