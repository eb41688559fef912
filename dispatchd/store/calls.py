"""Queries about calls: a task's call, the work due for the booking job, who holds which time.

Personal data (the client's address, the staff's) lives in ``call_attendee`` and
``call_booking`` rows keyed by ``task_id``: ``forget_calls`` erases a task's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, text
from sqlmodel import Session, col, select

from dispatchd.clock import as_utc
from dispatchd.domain.slots import Interval
from dispatchd.store.coordination import lock_key
from dispatchd.store.tables import CallAttendee, CallBooking

OPEN_STATES = ("wanted", "proposed", "picked", "holding", "booked", "withdrawing")
# A call in these states has its time: no other call of its attendees may overlap it.
HOLDING_STATES = ("holding", "booked")
JOB_STATES = ("wanted", "picked", "holding", "withdrawing")


def call_of(session: Session, task_id: int) -> CallBooking | None:
    """The task's open call, if it has one."""
    return session.exec(select(CallBooking).where(CallBooking.task_id == task_id,
                                                  col(CallBooking.state).in_(OPEN_STATES))
                        .order_by(col(CallBooking.id).desc())).first()


def call_by_uid(session: Session, uid: str) -> CallBooking | None:
    return session.exec(select(CallBooking).where(CallBooking.uid == uid)).first()


def calls_due(session: Session, now: datetime) -> list[CallBooking]:
    """Calls with calendar work to do now (proposals, bookings, withdrawals), oldest first."""
    return list(session.exec(select(CallBooking).where(
        col(CallBooking.state).in_(JOB_STATES),
        or_(col(CallBooking.next_attempt_at).is_(None), col(CallBooking.next_attempt_at) <= now))
        .order_by(col(CallBooking.id))).all())


def reminders_due(session: Session, now: datetime, before: timedelta) -> list[CallBooking]:
    """Booked calls starting within ``before`` from now whose reminder has not gone out."""
    return list(session.exec(select(CallBooking).where(
        CallBooking.state == "booked", col(CallBooking.reminded).is_(False),
        col(CallBooking.start) <= now + before, col(CallBooking.start) > now)
        .order_by(col(CallBooking.start))).all())


def attendees_of(session: Session, booking_id: int, role: str | None = None) -> list[CallAttendee]:
    query = select(CallAttendee).where(CallAttendee.booking_id == booking_id)
    if role is not None:
        query = query.where(CallAttendee.role == role)
    return list(session.exec(query.order_by(col(CallAttendee.id))).all())


def set_attendees(session: Session, booking: CallBooking, staff: Sequence[str], client: Sequence[str]) -> None:
    """The people of ``booking`` from now on (answers already recorded stay with their address)."""
    wanted = {**{a: "staff" for a in staff}, **{a: "client" for a in client}}
    for row in attendees_of(session, booking.id):  # type: ignore[arg-type]
        if row.address not in wanted:
            session.delete(row)
        else:
            row.role = wanted.pop(row.address)
            session.add(row)
    for address, role in wanted.items():
        session.add(CallAttendee(booking_id=booking.id, task_id=booking.task_id, address=address, role=role))
    session.flush()


def lock_calendars(session: Session, addresses: Iterable[str]) -> None:
    """Serialise claims on the same people's time until the transaction ends. PostgreSQL: an
    advisory transaction lock per person, in one order so two claims never deadlock. SQLite
    has one writer at a time (the caller holds ``write_turn``)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for address in sorted(set(addresses)):
        session.connection().execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": lock_key(f"calendar:{address}")})


def held_times(session: Session, addresses: Iterable[str], besides: int | None = None) -> list[Interval]:
    """The times other calls of these staff hold (booked, or being booked right now)."""
    people = list(set(addresses))
    if not people:
        return []
    rows = session.exec(select(CallBooking).join(CallAttendee, col(CallAttendee.booking_id) == CallBooking.id)
                        .where(col(CallAttendee.address).in_(people), CallAttendee.role == "staff",
                               col(CallBooking.state).in_(HOLDING_STATES))).all()
    return [Interval(as_utc(r.start), as_utc(r.end)) for r in {r.id: r for r in rows}.values()  # type: ignore[arg-type]
            if r.id != besides and r.start is not None and r.end is not None]


def forget_calls(session: Session, task_id: int) -> int:
    """Erase a task's calls and the addresses of their attendees; returns the rows removed."""
    removed = session.execute(delete(CallAttendee).where(col(CallAttendee.task_id) == task_id)).rowcount
    removed += session.execute(delete(CallBooking).where(col(CallBooking.task_id) == task_id)).rowcount
    return int(removed or 0)
