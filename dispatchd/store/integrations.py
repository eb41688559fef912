"""Queries over integration events and their deliveries. Callers own the session and transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from dispatchd.store.tables import IntegrationDelivery, IntegrationDestination, IntegrationEvent

_DELIVERY = IntegrationDelivery.__table__  # type: ignore[attr-defined]
_EVENT = IntegrationEvent.__table__  # type: ignore[attr-defined]
_DESTINATION = IntegrationDestination.__table__  # type: ignore[attr-defined]
OPEN = ("pending", "sending")


@dataclass(frozen=True)
class NewEvent:
    row: int
    type: str
    internal: bool
    client: str | None
    queue: str | None
    task_id: int | None


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what it sends."""

    id: int
    attempts: int
    claimed_by: str
    event_id: str
    task_id: int | None
    body: str


def unfanned_events(session: Session, limit: int) -> list[NewEvent]:
    """The oldest events not yet given their deliveries (skipping those another instance holds)."""
    rows = session.execute(select(_EVENT.c.id, _EVENT.c.type, _EVENT.c.internal, _EVENT.c.client,
                                  _EVENT.c.queue, _EVENT.c.task_id)
                           .where(_EVENT.c.fanned_out.is_(False)).order_by(_EVENT.c.id).limit(limit)
                           .with_for_update(skip_locked=True)).all()
    return [NewEvent(*row) for row in rows]


def record_fan_out(session: Session, deliveries: list[dict[str, object]], fanned: Iterable[int],
                   unwanted: Iterable[int]) -> None:
    """Insert the deliveries, mark their events fanned out, and drop the events nobody wants
    (nothing to send, so nothing personal kept)."""
    connection = session.connection()
    if deliveries:
        connection.execute(insert(_DELIVERY), deliveries)
    fanned, unwanted = list(fanned), list(unwanted)
    if fanned:
        connection.execute(update(_EVENT).where(_EVENT.c.id.in_(fanned)).values(fanned_out=True))
    if unwanted:
        connection.execute(delete(_EVENT).where(_EVENT.c.id.in_(unwanted)))


def claim_deliveries(session: Session, destination: str, now: datetime, limit: int, claimer: str) -> list[Claimed]:
    """Up to ``limit`` due deliveries to ``destination``, each the oldest open one of its task
    there: a task's events go one at a time, in order. Marked 'sending' by ``claimer``."""
    earlier = aliased(IntegrationDelivery)
    blocked = exists().where(earlier.destination == IntegrationDelivery.destination,
                             earlier.task_id == IntegrationDelivery.task_id,
                             col(earlier.id) < col(IntegrationDelivery.id), col(earlier.status).in_(OPEN))
    ids = session.execute(select(IntegrationDelivery.id).where(  # type: ignore[call-overload]
        IntegrationDelivery.destination == destination, IntegrationDelivery.status == "pending",
        IntegrationDelivery.next_attempt_at <= now, ~blocked)
        .order_by(col(IntegrationDelivery.id)).limit(limit).with_for_update(skip_locked=True)).scalars().all()
    if not ids:
        return []
    connection = session.connection()
    connection.execute(update(_DELIVERY).where(_DELIVERY.c.id.in_(ids))
                       .values(status="sending", claimed_at=now, claimed_by=claimer))
    rows = connection.execute(select(_DELIVERY.c.id, _DELIVERY.c.attempts, _EVENT.c.event_id, _DELIVERY.c.task_id,
                                     _EVENT.c.body)
                              .join(_EVENT, _EVENT.c.id == _DELIVERY.c.event_row)
                              .where(_DELIVERY.c.id.in_(ids)).order_by(_DELIVERY.c.id)).all()
    return [Claimed(row.id, row.attempts, claimer, row.event_id, row.task_id, row.body) for row in rows]


def record_delivery(session: Session, claimed: Claimed, status: str, attempts: int, next_at: datetime,
                    sent_at: datetime | None, response: int | None, error: str) -> bool:
    """The result of one attempt; False if the claim was no longer ours (another sender has it)."""
    result = session.connection().execute(_RECORD, dict(
        b_id=claimed.id, b_claimer=claimed.claimed_by, b_status=status, b_attempts=attempts, b_next=next_at,
        b_sent=sent_at, b_response=response, b_error=error[:2000]))
    return bool(result.rowcount)


_RECORD = update(_DELIVERY).where(
    _DELIVERY.c.id == bindparam("b_id"), _DELIVERY.c.status == "sending",
    _DELIVERY.c.claimed_by == bindparam("b_claimer"),
).values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), next_attempt_at=bindparam("b_next"),
         sent_at=bindparam("b_sent"), response=bindparam("b_response"), last_error=bindparam("b_error"),
         claimed_at=None, claimed_by=None)


def unclaim(session: Session, claimed: Claimed) -> None:
    """A claimed delivery that was not tried goes back as it was (no attempt counted)."""
    session.connection().execute(update(_DELIVERY).where(
        _DELIVERY.c.id == claimed.id, _DELIVERY.c.status == "sending", _DELIVERY.c.claimed_by == claimed.claimed_by)
        .values(status="pending", claimed_at=None, claimed_by=None))


def release_orphaned(session: Session, live_instances: set[str]) -> int:
    """Claims of senders that are gone go back to pending: the resend carries the same event id."""
    result = session.connection().execute(update(_DELIVERY).where(
        _DELIVERY.c.status == "sending",
        or_(_DELIVERY.c.claimed_by.is_(None), _DELIVERY.c.claimed_by.not_in(live_instances)))
        .values(status="pending", claimed_at=None, claimed_by=None))
    return result.rowcount or 0


def park_open(session: Session, destination: str, reason: str) -> int:
    """Every pending delivery to ``destination`` parked (it is gone)."""
    result = session.connection().execute(update(_DELIVERY).where(
        _DELIVERY.c.destination == destination, _DELIVERY.c.status == "pending")
        .values(status="parked", last_error=reason[:2000]))
    return result.rowcount or 0


def next_due(session: Session, destination: str) -> datetime | None:
    return session.execute(select(func.min(_DELIVERY.c.next_attempt_at)).where(
        _DELIVERY.c.destination == destination, _DELIVERY.c.status == "pending")).scalar()


def destination_state(session: Session, name: str) -> IntegrationDestination | None:
    return session.get(IntegrationDestination, name)


def set_destination(session: Session, name: str, **values: object) -> None:
    """Create or update a destination's state row."""
    row = session.get(IntegrationDestination, name) or IntegrationDestination(name=name)
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()


def requeue_parked(session: Session, destination: str | None, now: datetime) -> int:
    """Parked deliveries (to one destination, or all) back to pending, due now, attempts forgotten."""
    where = [_DELIVERY.c.status == "parked"]
    if destination is not None:
        where.append(_DELIVERY.c.destination == destination)
    result = session.connection().execute(update(_DELIVERY).where(and_(*where)).values(
        status="pending", attempts=0, next_attempt_at=now, last_error=""))
    return result.rowcount or 0


def delivery_summary(session: Session) -> dict[str, dict[str, object]]:
    """Per destination: counts by status, the last delivery and the last failure."""
    summary: dict[str, dict[str, object]] = {}
    for name, status, count in session.execute(select(_DELIVERY.c.destination, _DELIVERY.c.status, func.count())
                                               .group_by(_DELIVERY.c.destination, _DELIVERY.c.status)):
        summary.setdefault(name, {})[status] = count
    for name, last in session.execute(select(_DELIVERY.c.destination, func.max(_DELIVERY.c.sent_at))
                                      .group_by(_DELIVERY.c.destination)):
        summary.setdefault(name, {})["last_delivery"] = last
    failing = select(_DELIVERY.c.destination, _DELIVERY.c.last_error, _DELIVERY.c.response).where(
        _DELIVERY.c.last_error != "").order_by(_DELIVERY.c.id.desc())
    for name, error, response in session.execute(failing.limit(200)):
        summary.setdefault(name, {}).setdefault("last_error", f"{response or '-'}: {error}")
    return summary
