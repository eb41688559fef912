"""The booking job: proposes times, books picked ones in the calendars, withdraws cancelled
calls, and sends reminders. Runs every minute (``[schedule] booking``) and by ``dispatchd job
booking``.

Never a double booking: a picked time is first claimed in the database, under a lock on each
attendee's time (``store.calls.lock_calendars``), against every other call holding or booked
for them; then checked once more against the calendars (a time that got busy since it was
offered gets fresh options); only then is the event put there. The calendar server being
down leaves the claim in place, tells the client once, and tries again after
``[booking] retry_after``: the choice is never lost. Each step commits its mail with its
state, so a reminder or an invitation goes out once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import update
from sqlmodel import Session, col

from dispatchd.clock import as_utc
from dispatchd.domain.invites import event_ics
from dispatchd.domain.models import Status
from dispatchd.domain.slots import Interval, SlotRules, free_slots, merge, overlaps, slot_line, spread, within_hours
from dispatchd.domain.states import Transition, apply
from dispatchd.errors import CalendarUnavailable
from dispatchd.flows.call_mail import call_event, delayed_mail, invitation_mails, options_mail, reminder_mails
from dispatchd.flows.calls import instants
from dispatchd.flows.intake_deps import CalendarServer, IntakeDeps
from dispatchd.flows.outgoing import enqueue
from dispatchd.mail.compose import OutboundMail
from dispatchd.store import queries
from dispatchd.store.calls import attendees_of, calls_due, held_times, lock_calendars, reminders_due, set_attendees
from dispatchd.store.db import write_turn
from dispatchd.store.tables import CallBooking, Task

log = structlog.get_logger("dispatchd.booking")
MAX_STEPS = 4  # a call may go picked → holding (taken: wanted) → proposed in one run


def book_calls(deps: IntakeDeps) -> Counter[str]:
    """One pass over the calls with calendar work due, then the reminders due."""
    counts: Counter[str] = Counter()
    if deps.config.booking is None or deps.calendars is None:
        return counts
    with Session(deps.engine) as session:
        due = [call.id for call in calls_due(session, deps.clock.now())]
    try:
        for call_id in due:
            counts.update(advance_call(call_id, deps))  # type: ignore[arg-type]
    finally:
        deps.calendars.close()
    counts["reminded"] += send_reminders(deps)
    return +counts


def advance_call(call_id: int, deps: IntakeDeps) -> list[str]:
    """Take one call as far as it goes now (e.g. picked → claimed → booked); the steps' outcomes."""
    assert deps.calendars is not None
    outcomes = []
    for _ in range(MAX_STEPS):
        outcomes.append(_step(call_id, deps, deps.calendars))
        if outcomes[-1] not in ("claimed", "withdrawn", "taken", "busy_since_offered"):
            break
    return outcomes


def _step(call_id: int, deps: IntakeDeps, calendars: CalendarServer) -> str:
    with Session(deps.engine) as session:
        call = session.get(CallBooking, call_id)
        state = call.state if call is not None else "gone"
    try:
        if state == "wanted":
            return _propose(call_id, deps, calendars)
        if state == "picked":
            return _claim(call_id, deps)
        if state == "holding":
            return _book(call_id, deps, calendars)
        if state == "withdrawing":
            return _withdraw(call_id, deps, calendars)
    except CalendarUnavailable as exc:
        return _defer(call_id, deps, str(exc))
    return state


@contextmanager
def _transaction(deps: IntakeDeps) -> Iterator[Session]:
    """One write transaction, in SQLite's writer turn; committed unless it raises. Its rows stay
    readable afterwards (for the log line)."""
    with write_turn(deps.engine), Session(deps.engine, expire_on_commit=False) as session, session.begin():
        yield session


def staff_for(call: CallBooking, task: Task, deps: IntakeDeps) -> list[str]:
    """Who must attend, by the call's ``attend``: those of them with a calendar."""
    config = deps.config
    attend = [a for a in call.attend.split(",") if a]
    if attend == ["assignee"]:
        owners = config.queue_owners(task.queue)
        people = [task.assignee] if task.assignee else [owners[0].email] if owners else []
    elif attend == ["queue"]:
        people = [s.email for s in config.queue_owners(task.queue)]
    else:
        people = [p.email for p in (config.staff_by_name(name) for name in attend) if p is not None]
    return [p for p in dict.fromkeys(people) if p and deps.calendars is not None and deps.calendars.has_calendar(p)]


def _propose(call_id: int, deps: IntakeDeps, calendars: CalendarServer) -> str:
    booking = deps.config.booking
    assert booking is not None
    now = deps.clock.now()
    with Session(deps.engine) as session:
        call, task = _call_and_task(session, call_id)
        staff = staff_for(call, task, deps)
    rules = SlotRules(timedelta(minutes=call.duration_minutes), timedelta(hours=booking.notice_hours),
                      timedelta(minutes=booking.step_minutes), timedelta(days=booking.horizon_days))
    busy = calendars.busy(staff, now, now + rules.horizon + rules.duration) if staff else []
    with _transaction(deps) as session:
        call, task = _call_and_task(session, call_id)
        if call.state != "wanted":
            return "changed_meanwhile"
        if not staff:
            call.state, call.updated_at = "cancelled", now
            queries.add_event(session, task, now, "dispatchd", "call_impossible",
                              f"nobody of '{call.attend}' has a calendar in [booking.calendars]")
            return "no_attendee"
        refused = set(instants(call.refused))
        starts = [s for s in free_slots([*busy, *held_times(session, staff, call.id)], deps.calendar, now, rules)
                  if s not in refused]
        chosen = spread(starts, booking.proposals, ZoneInfo(call.client_zone))
        if not chosen:
            call.next_attempt_at, call.updated_at = now + timedelta(hours=12), now
            queries.add_event(session, task, now, "dispatchd", "call_no_times",
                              f"no free {call.duration_minutes} minutes in the next {booking.horizon_days} days")
            return "no_times"
        call.offered = ",".join(s.isoformat() for s in chosen)
        call.state, call.rounds, call.updated_at, call.next_attempt_at = "proposed", call.rounds + 1, now, None
        set_attendees(session, call, staff, (task.sender,))
        mail = options_mail(task, call, chosen, task.sender, deps.notices)
        call.note = ""
        lines = [slot_line(s, rules.duration, deps.calendar.zone) for s in chosen]
        queries.add_event(session, task, now, "dispatchd", "call_proposed",
                          f"to {task.sender}, with {', '.join(staff)}:\n" + "\n".join(lines))
        _send(session, [mail], deps, now)
    log.info("call.proposed", task_id=task.id, options=len(chosen))
    return "proposed"


def _claim(call_id: int, deps: IntakeDeps) -> str:
    """The client's pick, claimed against every other call of the same people."""
    now = deps.clock.now()
    with _transaction(deps) as session:
        call, task = _call_and_task(session, call_id)
        if call.state != "picked" or call.start is None:
            return "changed_meanwhile"
        staff = [a.address for a in attendees_of(session, call_id, "staff")]
        lock_calendars(session, staff)
        start, length = _utc(call.start), timedelta(minutes=call.duration_minutes)
        free = (start > now and within_hours(start, length, deps.calendar)
                and not overlaps(merge(held_times(session, staff, call.id)), start, start + length))
        if not free:
            _fresh_times(session, call, task, now, "The time you picked was taken a moment ago; here are other times.")
            return "taken"
        call.state, call.updated_at = "holding", now
    return "claimed"


def _book(call_id: int, deps: IntakeDeps, calendars: CalendarServer) -> str:
    now = deps.clock.now()
    with Session(deps.engine) as session:
        call, task = _call_and_task(session, call_id)
        staff = [a.address for a in attendees_of(session, call_id, "staff")]
        clients = [a.address for a in attendees_of(session, call_id, "client")]
    start, end = _utc(call.start), _utc(call.end)
    for owner in staff:
        if not calendars.holds(owner, call.uid) and calendars.busy([owner], start, end):
            with _transaction(deps) as session:
                call, task = _call_and_task(session, call_id)
                _fresh_times(session, call, task, now,
                             "The time you picked has just been filled in our calendar; here are other times.")
            return "busy_since_offered"
    sequence = call.sequence + 1 if call.sequence > 0 else 0
    call.sequence = sequence
    ics = event_ics(call_event(task, call, [*staff, *clients], deps.notices, now))
    for owner in staff:
        calendars.book(owner, call.uid, ics)
    with _transaction(deps) as session:
        call, task = _call_and_task(session, call_id)
        if call.state != "holding":
            return "changed_meanwhile"
        updated = call.sequence > 0
        call.state, call.sequence, call.attempts, call.last_error = "booked", sequence, 0, ""
        # A call booked within the reminder's window needs none: the invitation has just gone.
        soon = start - now <= timedelta(hours=deps.config.booking.reminder_hours)  # type: ignore[union-attr]
        call.reminded, call.client_told_delay, call.updated_at, call.next_attempt_at = soon, False, now, None
        mails = invitation_mails(task, call, staff, clients, "REQUEST", deps.notices, now, updated=updated)
        line = slot_line(start, end - start, deps.calendar.zone)
        queries.add_event(session, task, now, "dispatchd", "call_booked",
                          f"{line} ({deps.calendar.zone.key}) with {', '.join([*staff, *clients])}; uid {call.uid}")
        _move_on(session, task, now, line)
        _send(session, mails, deps, now)
    log.info("call.booked", task_id=task.id, uid=call.uid, start=start.isoformat(), sequence=sequence)
    return "booked"


def _withdraw(call_id: int, deps: IntakeDeps, calendars: CalendarServer) -> str:
    now = deps.clock.now()
    with Session(deps.engine) as session:
        call, task = _call_and_task(session, call_id)
        staff = [a.address for a in attendees_of(session, call_id, "staff")]
        clients = [a.address for a in attendees_of(session, call_id, "client")]
    for owner in staff:
        calendars.withdraw(owner, call.uid)
    with _transaction(deps) as session:
        call, task = _call_and_task(session, call_id)
        if call.state != "withdrawing":
            return "changed_meanwhile"
        after = call.after_withdraw or "cancelled"
        mails: list[OutboundMail] = []
        if call.start is not None:
            call.sequence += 1
            mails = invitation_mails(task, call, staff, clients, "CANCEL", deps.notices, now,
                                     rescheduling=after == "wanted")
        queries.add_event(session, task, now, "dispatchd", "call_withdrawn",
                          f"taken out of the calendars; {'new times follow' if after == 'wanted' else 'cancelled'}")
        call.state, call.start, call.end, call.after_withdraw = after, None, None, ""
        call.updated_at, call.next_attempt_at = now, None
        _send(session, mails, deps, now)
    return "withdrawn" if after == "wanted" else "cancelled"


def _defer(call_id: int, deps: IntakeDeps, error: str) -> str:
    """The calendar server failed: try again later; a client whose choice waits hears it once."""
    booking = deps.config.booking
    assert booking is not None
    now = deps.clock.now()
    with _transaction(deps) as session:
        call, task = _call_and_task(session, call_id)
        call.attempts += 1
        call.last_error, call.updated_at = error[:500], now
        call.next_attempt_at = now + timedelta(minutes=booking.retry_minutes)
        if call.attempts == 1:  # an outage is logged once, not once per retry
            log.warning("calendar.unavailable", task_id=task.id, uid=call.uid, error=error[:300])
        if call.state in ("picked", "holding") and not call.client_told_delay and call.start is not None:
            call.client_told_delay = True
            queries.add_event(session, task, now, "dispatchd", "call_delayed",
                              f"calendar not answering ({error[:200]}); the client's choice is kept")
            _send(session, [delayed_mail(task, call, task.sender, deps.notices)], deps, now)
    return "deferred"


def send_reminders(deps: IntakeDeps) -> int:
    """A reminder to everyone of each call starting within ``[booking] reminder_before``, once."""
    booking = deps.config.booking
    if booking is None:
        return 0
    now = deps.clock.now()
    sent = 0
    with _transaction(deps) as session:
        for call in reminders_due(session, now, timedelta(hours=booking.reminder_hours)):
            # A conditional update: of two runs that raced here, one sends.
            taken = session.connection().execute(update(CallBooking).where(
                col(CallBooking.id) == call.id, col(CallBooking.reminded).is_(False)).values(reminded=True)).rowcount
            if taken != 1:
                continue
            task = session.get(Task, call.task_id)
            assert task is not None
            staff = [a.address for a in attendees_of(session, call.id, "staff")]  # type: ignore[arg-type]
            clients = [a.address for a in attendees_of(session, call.id, "client")]  # type: ignore[arg-type]
            queries.add_event(session, task, now, "dispatchd", "call_reminded", ", ".join([*staff, *clients]))
            _send(session, reminder_mails(task, call, staff, clients, deps.notices), deps, now)
            sent += 1
    return sent


def _fresh_times(session: Session, call: CallBooking, task: Task, now: datetime, note: str) -> None:
    """The picked time cannot be had: new proposals follow, without it."""
    lost = call.start.isoformat() if call.start is not None else ""
    call.refused = ",".join(filter(None, (call.refused, _utc(call.start).isoformat() if lost else "")))
    call.state, call.start, call.end, call.note = "wanted", None, None, note
    call.updated_at, call.next_attempt_at = now, None
    session.add(call)
    queries.add_event(session, task, now, "dispatchd", "call_time_lost", note)
    log.info("call.time_lost", task_id=task.id, uid=call.uid)


def _move_on(session: Session, task: Task, now: datetime, line: str) -> None:
    """A booked call starts the work: a queued task moves to in progress."""
    if task.status != Status.QUEUED.value:
        return
    move = apply(Status(task.status), "start")
    if isinstance(move, Transition):
        source, task.status, task.updated_at = task.status, move.target.value, now
        session.add(task)
        queries.add_event(session, task, now, "dispatchd", "status", f"call booked for {line}", source, task.status)


def _send(session: Session, mails: Sequence[OutboundMail], deps: IntakeDeps, now: datetime) -> None:
    enqueue(session, [] if deps.quiet else list(mails), deps.notices, now)


def _call_and_task(session: Session, call_id: int) -> tuple[CallBooking, Task]:
    call = session.get(CallBooking, call_id)
    task = session.get(Task, call.task_id) if call is not None else None
    assert call is not None and task is not None
    return call, task


def _utc(moment: datetime | None) -> datetime:
    value = as_utc(moment)
    assert value is not None
    return value
