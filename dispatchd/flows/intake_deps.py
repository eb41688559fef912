"""What intake needs (``IntakeDeps``) and which faults are the machine's, not a message's."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from dispatchd.clock import Clock
from dispatchd.config import Config
from dispatchd.domain.intake import Directory
from dispatchd.domain.routing import Rulebook
from dispatchd.domain.sla import BusinessCalendar
from dispatchd.domain.slots import Interval
from dispatchd.flows.notices import NoticeContext
from dispatchd.flows.triage import ModelSlot
from dispatchd.llm.breaker import CircuitBreaker
from dispatchd.mail.compose import bare_address
from dispatchd.render import Renderer
from dispatchd.store.blobs import BlobStore
from dispatchd.store.coordination import Coordinator

# Faults of the machine, not of the message: leave the message on the server and retry.
INFRASTRUCTURE_ERRORS = (OperationalError, OSError)


class CalendarServer(Protocol):
    """What the booking job needs of the calendars (``calendar/caldav_server.CaldavCalendars``)."""

    def has_calendar(self, owner: str) -> bool: ...
    def busy(self, owners: Iterable[str], start: datetime, end: datetime) -> list[Interval]: ...
    def holds(self, owner: str, uid: str) -> bool: ...
    def book(self, owner: str, uid: str, ics: bytes) -> None: ...
    def withdraw(self, owner: str, uid: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class IntakeDeps:
    """What ingesting a message needs; built once by the daemon, shared with the CLI and tests."""

    config: Config
    rulebook: Rulebook
    renderer: Renderer
    calendar: BusinessCalendar
    clock: Clock
    blobs: BlobStore
    engine: Engine
    secret: bytes
    coordinator: Coordinator
    quiet: bool = False  # dispatchd import --quiet: tasks and records as usual, no mail to anyone
    triage: ModelSlot = field(default_factory=ModelSlot)  # the triage model in use (none by default)
    web_secret: bytes = b""  # signs client links and the web side's CSRF tokens ([web] secret_env/_file)
    calendars: CalendarServer | None = None  # the attendees' calendars, for booking calls ([booking])
    # The chat endpoint's health for the second opinion ([second_opinion]): kept across reloads.
    second_opinion_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)

    @property
    def notices(self) -> NoticeContext:
        return NoticeContext(self.config, self.rulebook, self.renderer, self.secret, self.calendar,
                             self.web_secret, self.clock)

    @property
    def directory(self) -> Directory:
        return Directory(self.config.clients, self.config.staff)


def our_addresses(config: Config) -> frozenset[str]:
    return frozenset({*config.intake_addresses, bare_address(config.smtp.from_address).lower()} - {""})
