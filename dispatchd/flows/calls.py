"""Calls, as intake sees them: a call wanted (a request type that needs one, a staff
``schedule``), the client's answer to the proposed times, and calendar answers to invitations.

All of it changes rows inside intake's transaction and nothing else: the calendars are read
and written by the booking job (``flows/booking``), so a client's choice is committed with
their reply and is never lost when the calendar server is down.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session

from dispatchd.config import Config
from dispatchd.domain.call_answers import CANCEL, NONE, PICK, RESCHEDULE, UNCLEAR, read_answer
from dispatchd.domain.commands import ParsedReply
from dispatchd.domain.intents import read_intent
from dispatchd.domain.invites import CalendarAnswer
from dispatchd.domain.models import InboundMail
from dispatchd.domain.slots import slot_line, zone_label
from dispatchd.flows.call_mail import client_zone, which_mail
from dispatchd.flows.notices import NoticeContext
from dispatchd.mail.compose import OutboundMail, bare_address
from dispatchd.store import queries
from dispatchd.store.calls import attendees_of, call_by_uid, call_of, set_attendees
from dispatchd.store.tables import CallBooking, Task

log = structlog.get_logger("dispatchd.calls")


def want_call(session: Session, task: Task, duration: timedelta, attend: tuple[str, ...], config: Config,
              now: datetime, actor: str, message_id: str | None) -> CallBooking | str:
    """Ask the booking job to propose times for a call about ``task``; returns the call, or why
    not (a call is already booked or being booked)."""
    current = call_of(session, task.id)  # type: ignore[arg-type]
    if current is not None and current.state not in ("wanted", "proposed"):
        return f"a call is already {current.state} for request #{task.id}; the client may reply 'reschedule'"
    minutes = max(5, int(duration.total_seconds() // 60))
    if current is not None:
        current.duration_minutes, current.attend, current.state = minutes, ",".join(attend), "wanted"
        current.next_attempt_at, current.updated_at = None, now
        session.add(current)
        call = current
    else:
        domain = bare_address(config.mailbox_named(task.mailbox).address).rpartition("@")[2] or "dispatchd.invalid"
        call = CallBooking(task_id=task.id, uid=f"call-{task.id}-{secrets.token_hex(8)}@{domain}", state="wanted",
                           duration_minutes=minutes, attend=",".join(attend),
                           client_zone=client_zone(task, config).key, created_at=now, updated_at=now)
        session.add(call)
        session.flush()
        set_attendees(session, call, (), (task.sender,))
    queries.add_event(session, task, now, actor, "call_wanted", f"a {minutes}-minute call with {', '.join(attend)}; "
                      "times will be proposed to the client", message_id)
    log.info("call.wanted", task_id=task.id, message_id=message_id, minutes=minutes)
    return call


def instants(text: str) -> list[datetime]:
    """'2026-12-08T14:00:00+00:00,…' (how offered and refused times are kept) -> datetimes."""
    return [datetime.fromisoformat(item) for item in text.split(",") if item]


def offered_times(call: CallBooking) -> list[datetime]:
    return instants(call.offered)


def proposed_call_times(session: Session, task_id: int) -> tuple[tuple[str, ...], str]:
    """The times on offer for the task's call, as the client reads them, and their zone's name."""
    call = call_of(session, task_id)
    if call is None or call.state != "proposed":
        return (), ""
    offered = offered_times(call)
    zone = ZoneInfo(call.client_zone)
    length = timedelta(minutes=call.duration_minutes)
    return tuple(slot_line(start, length, zone) for start in offered), zone_label(zone, offered[0]) if offered else ""


def answer_about_call(session: Session, mail: InboundMail, task: Task, text: str, parsed: ParsedReply,
                      ctx_notices: NoticeContext, notices: list[OutboundMail], now: datetime) -> str | None:
    """A client's reply read as an answer about the task's call; None when it is not one (the
    reply then goes the usual way). Picking a time records it here; the booking job books it."""
    call = call_of(session, task.id)  # type: ignore[arg-type]
    if call is None or call.state in ("wanted", "withdrawing"):
        return None
    offered = offered_times(call)
    zone = ZoneInfo(call.client_zone)
    answer = read_answer(text, offered, timedelta(minutes=call.duration_minutes), zone)
    if answer.kind in (RESCHEDULE, CANCEL):
        return _withdraw(session, call, task, answer.kind, mail, now)
    if call.state != "proposed":
        return None
    if answer.kind == PICK:
        start = offered[answer.index - 1]
        call.state, call.start = "picked", start
        call.end = start + timedelta(minutes=call.duration_minutes)
        call.next_attempt_at, call.updated_at = None, now
        session.add(call)
        line = slot_line(start, timedelta(minutes=call.duration_minutes), zone)
        queries.add_event(session, task, now, mail.sender, "call_picked", f"{line} ({zone.key}): {text[:200]}",
                          mail.message_id)
        log.info("call.picked", task_id=task.id, message_id=mail.message_id, start=start.isoformat())
        return f"call on task {task.id}: picked option {answer.index}"
    if answer.kind == NONE:
        call.refused = ",".join(filter(None, (call.refused, call.offered)))
        call.state, call.note = "wanted", "None of the times we sent suit you, so here are others."
        call.next_attempt_at, call.updated_at = None, now
        session.add(call)
        queries.add_event(session, task, now, mail.sender, "call_times_refused", text[:500], mail.message_id)
        return f"call on task {task.id}: new times wanted"
    if parsed.commands or parsed.questions or read_intent(text) is not None:
        return None  # about the request, not the call
    assert answer.kind == UNCLEAR
    queries.add_event(session, task, now, mail.sender, "call_answer_unclear", text[:500], mail.message_id)
    notices.append(which_mail(mail, task, call, offered, ctx_notices))
    return None if len(text.split()) > 12 else f"call on task {task.id}: asked which time"


def _withdraw(session: Session, call: CallBooking, task: Task, kind: str, mail: InboundMail, now: datetime) -> str:
    """'reschedule' / 'cancel call': a time not yet booked is simply let go; a booked one is
    taken out of the calendars (and cancelled by mail) by the booking job."""
    after = "wanted" if kind == RESCHEDULE else "cancelled"
    if call.state in ("proposed", "picked"):
        call.state, call.start, call.end = after, None, None
    else:
        call.state, call.after_withdraw = "withdrawing", after
    call.note = "Here are new times for our call." if after == "wanted" else ""
    call.next_attempt_at, call.updated_at = None, now
    session.add(call)
    queries.add_event(session, task, now, mail.sender, "call_rescheduled" if after == "wanted" else "call_cancelled",
                      "by the client's reply", mail.message_id)
    log.info("call.withdrawn", task_id=task.id, message_id=mail.message_id, then=after)
    return f"call on task {task.id}: {kind}"


def drop_call(session: Session, task: Task, now: datetime, actor: str, message_id: str | None) -> None:
    """The task was cancelled: so is its call. A booked one leaves the calendars and both sides
    get the cancellation (the booking job); one not booked yet simply ends."""
    call = call_of(session, task.id)  # type: ignore[arg-type]
    if call is None:
        return
    if call.state in ("holding", "booked", "withdrawing"):
        call.state, call.after_withdraw = "withdrawing", "cancelled"
    else:
        call.state, call.start, call.end = "cancelled", None, None
    call.next_attempt_at, call.updated_at = None, now
    session.add(call)
    queries.add_event(session, task, now, actor, "call_cancelled", "the request was cancelled", message_id)
    log.info("call.withdrawn", task_id=task.id, message_id=message_id, then="cancelled")


def record_calendar_answer(session: Session, mail: InboundMail, answer: CalendarAnswer, now: datetime) -> int | None:
    """An attendee's Accept/Decline (``METHOD:REPLY``): kept on the call's task, never answered.
    Only an invited attendee's own answer changes their recorded answer; one sent by anybody
    else is noted as such. Returns the task's id, or None when the call is unknown."""
    call = call_by_uid(session, answer.uid)
    task = session.get(Task, call.task_id) if call is not None else None
    if call is None or task is None:
        return None
    who = answer.attendee
    invited = next((a for a in attendees_of(session, call.id) if a.address == who), None)  # type: ignore[arg-type]
    if invited is None or mail.sender.lower() != who:
        queries.add_event(session, task, now, mail.sender or "unknown", "call_answer_ignored",
                          f"{answer.partstat.lower()} for {who or 'nobody'}, sent by {mail.sender or 'nobody'}: "
                          "not an invited attendee's own answer", mail.message_id)
        return task.id
    invited.partstat, invited.answered_at = answer.partstat, now
    session.add(invited)
    queries.add_event(session, task, now, who, "call_answer", f"{answer.partstat.lower()} (sequence {answer.sequence})",
                      mail.message_id)
    log.info("call.answered", task_id=task.id, message_id=mail.message_id, partstat=answer.partstat)
    return task.id
