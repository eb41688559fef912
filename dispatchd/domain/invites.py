"""iCalendar for booked calls (RFC 5545/5546): the event put in a calendar, the invitations
(``METHOD:REQUEST``, so mail programs show Accept/Decline), cancellations (``METHOD:CANCEL``,
same UID, higher SEQUENCE) and reading an attendee's answer (``METHOD:REPLY``).

Pure: the instants, the people and the stamp come in, bytes go out (``icalendar`` only
builds and parses text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//dispatchd//booking//EN"


@dataclass(frozen=True)
class CallEvent:
    """One call as every calendar sees it; ``sequence`` grows with each change (RFC 5546)."""

    uid: str
    sequence: int
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str
    organizer: str
    attendees: tuple[str, ...]
    stamp: datetime


def event_ics(call: CallEvent, method: str | None = None) -> bytes:
    """The VCALENDAR for ``call``: with ``method`` (REQUEST, CANCEL) an iTIP message for mail;
    without it the object a CalDAV PUT stores."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    if method:
        calendar.add("method", method)
    event = Event()
    event.add("uid", call.uid)
    event.add("sequence", call.sequence)
    event.add("dtstamp", call.stamp)
    event.add("dtstart", call.start)
    event.add("dtend", call.end)
    event.add("summary", call.summary)
    event.add("description", call.description)
    if call.location:
        event.add("location", call.location)
        if call.location.startswith(("https://", "http://")):
            event.add("url", call.location)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{call.organizer}")
    organizer.params["cn"] = vText(call.organizer)
    event.add("organizer", organizer)
    for address in call.attendees:
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("NEEDS-ACTION")
        attendee.params["rsvp"] = vText("TRUE")
        event.add("attendee", attendee, encode=False)
    calendar.add_component(event)
    return calendar.to_ical()


@dataclass(frozen=True)
class CalendarAnswer:
    """An attendee's answer to an invitation: ACCEPTED, DECLINED or TENTATIVE."""

    uid: str
    attendee: str
    partstat: str
    sequence: int


def read_calendar_answer(data: bytes) -> CalendarAnswer | None:
    """The answer in an iTIP ``METHOD:REPLY`` part, or None when ``data`` is not one."""
    try:
        calendar = Calendar.from_ical(data)
    except ValueError:
        return None
    if str(calendar.get("method", "")).upper() != "REPLY":
        return None
    for event in calendar.walk("VEVENT"):
        attendee = event.get("attendee")
        if isinstance(attendee, list):
            attendee = attendee[0] if attendee else None
        if attendee is None or not event.get("uid"):
            continue
        partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        address = str(attendee).removeprefix("mailto:").removeprefix("MAILTO:").lower()
        return CalendarAnswer(str(event["uid"]), address, partstat, int(event.get("sequence", 0)))
    return None


def busy_of(data: bytes, window_start: datetime, window_end: datetime) -> list[tuple[datetime, datetime]]:
    """The busy times of the events in a VCALENDAR (from a calendar-query), inside the window;
    transparent and cancelled events do not block. Recurrences arrive expanded by the server."""
    found = []
    calendar = Calendar.from_ical(data)
    for event in calendar.walk("VEVENT"):
        if str(event.get("transp", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(event.get("status", "")).upper() == "CANCELLED":
            continue
        start = event.decoded("dtstart")
        end = event.decoded("dtend") if event.get("dtend") else start + event.decoded("duration")
        if not isinstance(start, datetime):  # an all-day event blocks the whole day
            start = datetime.combine(start, datetime.min.time(), tzinfo=window_start.tzinfo)
            end = datetime.combine(end, datetime.min.time(), tzinfo=window_start.tzinfo)
        if start.tzinfo is None:  # floating time: read in the window's zone
            start, end = start.replace(tzinfo=window_start.tzinfo), end.replace(tzinfo=window_start.tzinfo)
        if end > window_start and start < window_end:
            found.append((start, end))
    return found
