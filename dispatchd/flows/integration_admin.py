"""What `dispatchd integrations` does: list destinations, post a test event, re-queue parked ones."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dispatchd.clock import Clock
from dispatchd.config import Config
from dispatchd.domain.events import SCHEMA_VERSION, TEST_EVENT, iso
from dispatchd.flows.integrations import web_base_url
from dispatchd.store import integrations as store
from dispatchd.store.db import write_turn
from dispatchd.webhooks.http import HttpPoster
from dispatchd.webhooks.outcomes import Answer
from dispatchd.webhooks.requests import request_for

log = structlog.get_logger("dispatchd.integrations")


def destinations_overview(config: Config, engine: Engine) -> list[dict[str, Any]]:
    """One row per configured destination (and per one removed from config that still has rows)."""
    with Session(engine) as session:
        summary = store.delivery_summary(session)
        states = {d.name: store.destination_state(session, d.name) for d in config.destinations}
    rows = []
    for destination in config.destinations:
        counts, state = summary.get(destination.name, {}), states[destination.name]
        rows.append(dict(
            name=destination.name, kind=destination.kind, audience=destination.filter.audience.value,
            sent=counts.get("sent", 0), pending=counts.get("pending", 0) + counts.get("sending", 0),
            parked=counts.get("parked", 0), last_delivery=_when(counts.get("last_delivery")),
            disabled=state.disabled if state and state.disabled else "", last_error=counts.get("last_error", "")))
    return rows


def retry(engine: Engine, name: str | None, now: datetime) -> int:
    """Parked events back in the queue (same event ids); the destination(s) enabled again and
    their owners to be told afresh of the next trouble."""
    with write_turn(engine), Session(engine) as session, session.begin():
        count = store.requeue_parked(session, name, now)
        for state_name in [name] if name else _state_names(session):
            if store.destination_state(session, state_name) is not None:
                store.set_destination(session, state_name, disabled=None, disabled_at=None, owners_told_at=None)
    log.info("integration.requeued", destination=name or "all", count=count)
    return count


def send_test(config: Config, name: str, clock: Clock) -> Answer:
    """Post a ``test`` event to the destination now (not stored, not retried)."""
    destination = config.destination_named(name)
    assert destination is not None
    now = clock.now()
    event = {"id": f"evt_{uuid.uuid4().hex}", "type": TEST_EVENT, "schema_version": SCHEMA_VERSION,
             "occurred_at": iso(now), "internal": False, "task": None,
             "data": {"message": "dispatchd can reach this destination"}}
    body, headers = request_for(destination, event, web_base_url(config, destination), int(now.timestamp()))

    async def post() -> Answer:
        poster = HttpPoster(1, destination.timeout)
        try:
            url = destination.target()
            return await poster.post(url, body, headers, now) if url else Answer(None, "no URL")
        finally:
            await poster.close()
    return asyncio.run(post())


def _state_names(session: Session) -> list[str]:
    from sqlmodel import select

    from dispatchd.store.tables import IntegrationDestination
    return list(session.exec(select(IntegrationDestination.name)).all())


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ""
