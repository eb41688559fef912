"""The emails of a call: proposed times, "which one?", the invitation or cancellation (with the
iCalendar part), the reminder, and "we have your time" while the calendar is down.

Each person reads times in their own zone: the client in their client's ``timezone`` (else the
agency's), staff in the [calendar]'s; the email names the zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dispatchd.clock import as_utc
from dispatchd.config import Config
from dispatchd.domain.invites import CallEvent, event_ics
from dispatchd.domain.models import InboundMail
from dispatchd.domain.slots import slot_line, zone_label
from dispatchd.flows.notices import NoticeContext, task_mail
from dispatchd.mail.compose import OutboundMail
from dispatchd.store.tables import CallBooking, Task


def client_zone(task: Task, config: Config) -> ZoneInfo:
    """The zone the client reads times in: their client's ``timezone``, else the agency's."""
    client = next((c for c in config.clients if c.name == task.client), None)
    return ZoneInfo(client.timezone if client and client.timezone else config.calendar.timezone)


def _length(call: CallBooking) -> timedelta:
    return timedelta(minutes=call.duration_minutes)


def _start(call: CallBooking) -> datetime:
    """The call's start in UTC (SQLite hands it back without a zone)."""
    start = as_utc(call.start)
    assert start is not None
    return start


def options_mail(task: Task, call: CallBooking, offered: Sequence[datetime], to: str, ctx: NoticeContext) -> OutboundMail:
    zone = ZoneInfo(call.client_zone)
    lines = [slot_line(start, _length(call), zone) for start in offered]
    first = offered[0].astimezone(zone)
    values = {"lines": lines, "minutes": call.duration_minutes, "zone_label": zone_label(zone, offered[0]),
              "note": call.note, "example": f"{first:%A} {first:%H:%M}"}
    return task_mail("client-call-options", to, task, values, ctx, in_reply_to=task.message_id,
                     references=(task.message_id,))


def which_mail(mail: InboundMail, task: Task, call: CallBooking, offered: Sequence[datetime],
               ctx: NoticeContext) -> OutboundMail:
    """The polite "which one?" to an answer that named no offered time, in its thread."""
    zone = ZoneInfo(call.client_zone)
    values = {"lines": [slot_line(start, _length(call), zone) for start in offered],
              "zone_label": zone_label(zone, offered[0])}
    return task_mail("client-call-which", mail.sender, task, values, ctx, auto_submitted="auto-replied",
                     in_reply_to=mail.message_id, references=(*mail.references, mail.message_id))


def delayed_mail(task: Task, call: CallBooking, to: str, ctx: NoticeContext) -> OutboundMail:
    zone = ZoneInfo(call.client_zone)
    values = {"when": slot_line(_start(call), _length(call), zone), "zone_label": zone_label(zone, _start(call))}
    return task_mail("client-call-delayed", to, task, values, ctx, in_reply_to=task.message_id,
                     references=(task.message_id,))


def call_event(task: Task, call: CallBooking, people: Sequence[str], ctx: NoticeContext, now: datetime) -> CallEvent:
    """The call as calendars see it; the organiser is the task's intake address, so the
    attendees' Accept/Decline comes back to dispatchd."""
    link = meeting_link(ctx.config, task, call)
    return CallEvent(uid=call.uid, sequence=call.sequence, start=_start(call), end=_start(call) + _length(call),
                     summary=f"Call about request #{task.id}: {task.description[:80]}",
                     description=f"Request #{task.id}: {task.description}\n{link}".strip(), location=link,
                     organizer=ctx.config.mailbox_named(task.mailbox).address, attendees=tuple(people), stamp=now)


def meeting_link(config: Config, task: Task, call: CallBooking) -> str:
    template = config.booking.meeting_link if config.booking else ""
    return template.replace("{task}", str(task.id)).replace("{uid}", call.uid)


def invitation_mails(task: Task, call: CallBooking, staff: Sequence[str], client: Sequence[str], method: str,
                     ctx: NoticeContext, now: datetime, updated: bool = False,
                     rescheduling: bool = False) -> list[OutboundMail]:
    """One email per attendee with the iTIP ``method`` (REQUEST or CANCEL), all with the same
    UID and SEQUENCE."""
    event = call_event(task, call, [*staff, *client], ctx, now)
    ics = event_ics(event, method)
    names = [_name(a, ctx.config) for a in staff] + [task.sender_name or a if a == task.sender else a for a in client]
    mails = []
    for address in [*staff, *client]:
        for_client = address in client
        zone = ZoneInfo(call.client_zone) if for_client else ctx.calendar.zone
        values = {"summary": event.summary, "when": slot_line(event.start, _length(call), zone),
                  "zone_label": zone_label(zone, event.start), "link": event.location, "people": names,
                  "cancelled": method == "CANCEL", "updated": updated, "rescheduling": rescheduling,
                  "for_client": for_client}
        mails.append(_with_calendar(task_mail("call-invitation", address, task, values, ctx,
                                              in_reply_to=task.message_id, references=(task.message_id,)),
                                    ics, method))
    return mails


def reminder_mails(task: Task, call: CallBooking, staff: Sequence[str], client: Sequence[str],
                   ctx: NoticeContext) -> list[OutboundMail]:
    mails = []
    for address in [*staff, *client]:
        for_client = address in client
        zone = ZoneInfo(call.client_zone) if for_client else ctx.calendar.zone
        values = {"summary": f"Call about request #{task.id}: {task.description[:80]}",
                  "when": slot_line(_start(call), _length(call), zone), "zone_label": zone_label(zone, _start(call)),
                  "link": meeting_link(ctx.config, task, call), "for_client": for_client}
        mails.append(task_mail("call-reminder", address, task, values, ctx, in_reply_to=task.message_id,
                               references=(task.message_id,)))
    return mails


def _name(address: str, config: Config) -> str:
    person = config.staff_by_email(address)
    return person.client_name if person else address


def _with_calendar(mail: OutboundMail, ics: bytes, method: str) -> OutboundMail:
    return replace(mail, calendar=ics, calendar_method=method)
