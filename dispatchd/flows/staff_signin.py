"""Staff sign-in by an emailed link, and the sessions it opens.

A staff member types their address; if it is a [[staff]] address (the page says the same either
way, so nobody learns who is staff) a link goes out through the outbox like any email. The link
is single use (redeeming it marks it used in the same UPDATE that checks it), lives
``link_minutes`` and at most ``links_per_hour`` are sent to one address (and ``links_per_hour_all``
in all: the form cannot be used to flood anyone's inbox). Redeeming it opens a session of
``session_hours``; only hashes of links and sessions are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.notices import _organisation as organisation
from dispatchd.flows.outgoing import enqueue
from dispatchd.mail.compose import OutboundMail
from dispatchd.store.db import write_turn
from dispatchd.store.tables import StaffSession, StaffSignIn

log = structlog.get_logger("dispatchd.staff_signin")

_LINKS = StaffSignIn.__table__  # type: ignore[attr-defined]
_SESSIONS = StaffSession.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SignInPolicy:
    link_minutes: int = 15
    links_per_hour: int = 5
    links_per_hour_all: int = 50
    session_hours: int = 12


@dataclass(frozen=True)
class Opened:
    token: str  # for the cookie
    email: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(deps: IntakeDeps, address: str, link_base: str, policy: SignInPolicy = SignInPolicy()) -> str:
    """Email a sign-in link (``link_base`` + token) to ``address`` if it is staff and under the
    limits. Returns what happened, for the log and the tests: sent, not staff, rate limited."""
    email = address.strip().lower()
    person = deps.config.staff_by_email(email)
    if person is None:
        log.info("signin.not_staff", address=email[:200])
        return "not staff"
    now = deps.clock.now()
    token = secrets.token_urlsafe(32)
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        hour_ago = now - timedelta(hours=1)
        mine = session.execute(select(func.count()).select_from(_LINKS).where(
            _LINKS.c.email == email, _LINKS.c.created_at >= hour_ago)).scalar_one()
        everyone = session.execute(select(func.count()).select_from(_LINKS).where(
            _LINKS.c.created_at >= hour_ago)).scalar_one()
        if mine >= policy.links_per_hour or everyone >= policy.links_per_hour_all:
            log.warning("signin.rate_limited", address=email, last_hour=mine, all_last_hour=everyone)
            return "rate limited"
        expires = now + timedelta(minutes=policy.link_minutes)
        session.add(StaffSignIn(token_hash=token_hash(token), email=email, created_at=now, expires_at=expires))
        values = {"first_name": person.client_name or person.name, "task": None, "link": f"{link_base}{token}",
                  "minutes": policy.link_minutes, "organisation": organisation(deps.config.smtp.from_address)}
        rendered = deps.renderer.render("staff-signin", **values)
        enqueue(session, [OutboundMail("staff-signin", (email,), rendered.subject, rendered.text, rendered.html)],
                deps.notices, now)
    log.info("signin.link_sent", address=email, expires_at=expires.isoformat())
    return "sent"


def link_email(deps: IntakeDeps, token: str) -> str | None:
    """Whose link this is, if it can still be used (for the page that asks to confirm)."""
    with Session(deps.engine) as session:
        row = session.get(StaffSignIn, token_hash(token))
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= deps.clock.now():  # type: ignore[operator]
        return None
    return row.email if deps.config.staff_by_email(row.email) else None


def redeem_link(deps: IntakeDeps, token: str, policy: SignInPolicy = SignInPolicy()) -> Opened | None:
    """Use the link once and open a session; None if it is unknown, used, expired or its owner
    is no longer staff."""
    now = deps.clock.now()
    hashed = token_hash(token)
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        used = session.execute(update(_LINKS).where(
            _LINKS.c.token_hash == hashed, _LINKS.c.used_at.is_(None), _LINKS.c.expires_at > now)
            .values(used_at=now))
        if used.rowcount != 1:
            log.warning("signin.link_refused", reason="unknown, used or expired")
            return None
        email = session.execute(select(_LINKS.c.email).where(_LINKS.c.token_hash == hashed)).scalar_one()
        if deps.config.staff_by_email(email) is None:
            return None
        opened = Opened(secrets.token_urlsafe(32), email, now + timedelta(hours=policy.session_hours))
        session.add(StaffSession(token_hash=token_hash(opened.token), email=email, created_at=now,
                                 expires_at=opened.expires_at))
        # Expired links and sessions are of no use to anyone: tidy up while here.
        session.execute(delete(_LINKS).where(_LINKS.c.expires_at < now - timedelta(days=1)))
        session.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at < now))
    log.info("signin.session_opened", address=email)
    return opened


def session_email(deps: IntakeDeps, token: str | None) -> str | None:
    """The staff member a session cookie belongs to, while it lasts and they are still staff."""
    if not token or len(token) > 100:
        return None
    with Session(deps.engine) as session:
        row = session.get(StaffSession, token_hash(token))
    if row is None or as_utc(row.expires_at) <= deps.clock.now():  # type: ignore[operator]
        return None
    return row.email if deps.config.staff_by_email(row.email) else None


def sign_out(deps: IntakeDeps, token: str | None) -> None:
    if not token:
        return
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        session.execute(delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash(token)))
