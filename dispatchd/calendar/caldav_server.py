"""The attendees' calendars over CalDAV (RFC 4791): three verbs, ``busy``, ``book``, ``withdraw``.

Each staff member's calendar is a collection URL from ``[booking.calendars]``; one account
(``[booking] username``/``password_env``) reads and writes them, as a delegate would. A call
is stored at ``<calendar>/<uid>.ics``, so putting it again (a retry after a timeout whose PUT
did arrive, a reschedule) replaces it instead of adding a second event. Free/busy comes from
the ``free-busy-query`` REPORT (Radicale, Nextcloud, Fastmail); a server that refuses it is
read with a ``calendar-query`` of the window instead. Every fault becomes
``CalendarUnavailable``: the booking job tries again later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timezone

import structlog
from caldav import DAVClient
from caldav.lib.error import DAVError, NotFoundError
from icalendar import Calendar

from dispatchd.config import BookingConfig
from dispatchd.domain.invites import busy_of
from dispatchd.domain.slots import Interval
from dispatchd.errors import CalendarUnavailable

log = structlog.get_logger("dispatchd.calendar")
FAULTS = (DAVError, OSError, ValueError)  # HTTP/TLS/socket errors of niquests/requests are OSErrors


class CaldavCalendars:
    """The booking job's way to the calendars: connected when first used in a job run, closed after it."""

    def __init__(self, config: BookingConfig):
        self.config = config
        self._local = threading.local()  # a connection per thread: jobs run on the scheduler's threads

    def _dav(self) -> DAVClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = DAVClient(
                url=self.config.url, username=self.config.username, password=self.config.password.reveal(),
                timeout=int(self.config.timeout), enable_rfc6764=False)
        return client

    def close(self) -> None:
        """Close this thread's connection (the job's run is over)."""
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None

    def has_calendar(self, owner: str) -> bool:
        return owner in self.config.calendars

    def busy(self, owners: Iterable[str], start: datetime, end: datetime) -> list[Interval]:
        """Every busy interval of the ``owners``' calendars between ``start`` and ``end`` (UTC)."""
        found: list[Interval] = []
        for owner in owners:
            url = self.config.calendars.get(owner)
            if url:
                found.extend(self._busy_of(url, start, end))
        return found

    def _busy_of(self, url: str, start: datetime, end: datetime) -> list[Interval]:
        calendar = self._dav().calendar(url=url)
        try:
            answer = calendar.freebusy_request(start, end)
            return list(_freebusy_periods(answer.data))
        except NotFoundError as exc:
            raise CalendarUnavailable(f"no calendar at {url}") from exc
        except DAVError as exc:
            log.info("calendar.freebusy_refused", url=url, error=str(exc)[:200])
        except FAULTS as exc:
            raise CalendarUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc
        try:
            events = calendar.search(start=start, end=end, event=True, expand=True)
            return [Interval(s.astimezone(timezone.utc), e.astimezone(timezone.utc))
                    for event in events for s, e in busy_of(event.data.encode(), start, end)]
        except FAULTS as exc:
            raise CalendarUnavailable(f"{url}: {type(exc).__name__}: {exc}") from exc

    def holds(self, owner: str, uid: str) -> bool:
        """Whether ``owner``'s calendar already has the call ``uid`` (put by an earlier try)."""
        try:
            response = self._dav().request(self._href(owner, uid), "GET")
        except FAULTS as exc:
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return response.status == 200

    def book(self, owner: str, uid: str, ics: bytes) -> None:
        """Put the event in ``owner``'s calendar (replacing an earlier version of it)."""
        try:
            response = self._dav().put(self._href(owner, uid), ics.decode(),
                                       {"Content-Type": "text/calendar; charset=utf-8"})
        except FAULTS as exc:
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status not in (200, 201, 204):
            raise CalendarUnavailable(f"PUT {uid}.ics answered {response.status} {response.reason}")
        log.info("calendar.booked", owner=owner, uid=uid)

    def withdraw(self, owner: str, uid: str) -> None:
        """Take the event out of ``owner``'s calendar; one that is not there is fine."""
        try:
            response = self._dav().delete(self._href(owner, uid))
        except NotFoundError:
            return
        except FAULTS as exc:
            raise CalendarUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status not in (200, 204, 404):
            raise CalendarUnavailable(f"DELETE {uid}.ics answered {response.status} {response.reason}")
        log.info("calendar.withdrawn", owner=owner, uid=uid)

    def _href(self, owner: str, uid: str) -> str:
        url = self.config.calendars.get(owner)
        if not url:
            raise CalendarUnavailable(f"no calendar configured for {owner}")
        return url.rstrip("/") + f"/{uid}.ics"


def _freebusy_periods(data: str | bytes) -> Iterable[Interval]:
    calendar = Calendar.from_ical(data)
    for component in calendar.walk("VFREEBUSY"):
        periods = component.get("freebusy", [])
        for prop in periods if isinstance(periods, list) else [periods]:
            if str(prop.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            for start, end_or_length in prop.dt if isinstance(prop.dt, list) else [prop.dt]:
                end = end_or_length if isinstance(end_or_length, datetime) else start + end_or_length
                yield Interval(start.astimezone(timezone.utc), end.astimezone(timezone.utc))
