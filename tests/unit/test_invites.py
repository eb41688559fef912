"""iCalendar invitations, cancellations and answers (RFC 5545/5546), read back with icalendar."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from icalendar import Calendar

from dispatchd.domain.invites import CallEvent, busy_of, event_ics, read_calendar_answer

UTC = timezone.utc
CALL = CallEvent(uid="call-7-ab@agency.test", sequence=2, start=datetime(2026, 12, 8, 14, tzinfo=UTC),
                 end=datetime(2026, 12, 8, 14, 45, tzinfo=UTC), summary="Call about request #7",
                 description="Request #7", location="https://meet.agency.test/7", organizer="requests@agency.test",
                 attendees=("morgan@agency.test", "bob@acme.test"), stamp=datetime(2026, 12, 7, 9, tzinfo=UTC))


@pytest.mark.parametrize("method, status", [("REQUEST", "CONFIRMED"), ("CANCEL", "CANCELLED"), (None, "CONFIRMED")])
def test_invitation_round_trip(method: str | None, status: str) -> None:
    calendar = Calendar.from_ical(event_ics(CALL, method))
    assert calendar.get("method") == method if method else "method" not in calendar
    event = calendar.walk("VEVENT")[0]
    assert (str(event["uid"]), int(event["sequence"]), str(event["status"])) == (CALL.uid, 2, status)
    assert event.decoded("dtstart") == CALL.start and event.decoded("dtend") == CALL.end
    assert str(event["organizer"]) == "mailto:requests@agency.test"
    assert sorted(str(a) for a in event["attendee"]) == ["mailto:bob@acme.test", "mailto:morgan@agency.test"]
    assert all(a.params["RSVP"] == "TRUE" for a in event["attendee"])


def _reply(partstat: str, method: str = "REPLY") -> bytes:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\n"
            f"UID:{CALL.uid}\r\nSEQUENCE:2\r\nDTSTAMP:20261207T100000Z\r\n"
            f"ATTENDEE;PARTSTAT={partstat}:mailto:Bob@Acme.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


@pytest.mark.parametrize("partstat", ["ACCEPTED", "DECLINED", "TENTATIVE"])
def test_answers_are_read(partstat: str) -> None:
    answer = read_calendar_answer(_reply(partstat))
    assert answer is not None and (answer.uid, answer.attendee, answer.partstat, answer.sequence) == \
        (CALL.uid, "bob@acme.test", partstat, 2)


@pytest.mark.parametrize("data", [_reply("ACCEPTED", "REQUEST"), event_ics(CALL, "REQUEST"), b"not a calendar", b""])
def test_what_is_not_an_answer(data: bytes) -> None:
    assert read_calendar_answer(data) is None


def test_busy_of_skips_transparent_and_cancelled_events() -> None:
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n"
            "BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261208T090000Z\r\nDTEND:20261208T100000Z\r\nEND:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261208T110000Z\r\nDTEND:20261208T120000Z\r\n"
            "TRANSP:TRANSPARENT\r\nEND:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:c\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261208T130000Z\r\nDTEND:20261208T140000Z\r\n"
            "STATUS:CANCELLED\r\nEND:VEVENT\r\n"
            "BEGIN:VEVENT\r\nUID:d\r\nDTSTAMP:20261201T000000Z\r\nDTSTART;VALUE=DATE:20261209\r\nDTEND;VALUE=DATE:20261210\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n").encode()
    found = busy_of(text, datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 14, tzinfo=UTC))
    assert found == [(datetime(2026, 12, 8, 9, tzinfo=UTC), datetime(2026, 12, 8, 10, tzinfo=UTC)),
                     (datetime(2026, 12, 9, tzinfo=UTC), datetime(2026, 12, 10, tzinfo=UTC))]


def test_invitation_mail_carries_the_calendar_twice() -> None:
    """text/calendar; method=REQUEST beside the text (what Gmail and Outlook turn into Accept/Decline
    buttons) and the same as invite.ics for other programs."""
    import email
    import email.policy

    from dispatchd.mail.compose import OutboundMail, compose

    ics = event_ics(CALL, "REQUEST")
    raw = compose(OutboundMail("call-invitation", ("bob@acme.test",), "[#7] Invitation", "Booked.", html="<p>x</p>",
                               calendar=ics, calendar_method="REQUEST"),
                  "Agency <requests@agency.test>", "requests@agency.test", "<m@agency.test>", CALL.stamp)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {p.get_content_type(): p for p in message.walk()}
    assert list(parts) == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/calendar",
                           "application/ics"]
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    assert parts["text/calendar"].get_payload(decode=True) == ics == parts["application/ics"].get_payload(decode=True)
    assert parts["application/ics"].get_filename() == "invite.ics"
