"""Staff sign-in links (flows/staff_signin.py) over a real database: emailed through the outbox,
single use, short-lived, rate-limited; sessions that end."""

from __future__ import annotations

import email
import re
from datetime import datetime
from email.policy import default
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.staff_signin import (SignInPolicy, link_email, redeem_link, request_link, session_email,
                                          sign_out)
from dispatchd.store.tables import Outbox, StaffSignIn
from tests.conftest import write_config

BASE = "https://desk.agency.test/staff/signin/"


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test"))
    return build_deps(config, clock=FrozenClock(datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/Berlin"))))


def clock(deps: IntakeDeps) -> FrozenClock:
    return deps.clock  # type: ignore[return-value]


def links(deps: IntakeDeps) -> list[tuple[str, str]]:
    """(recipient, token) of every sign-in email in the outbox."""
    with Session(deps.engine) as session:
        rows = session.exec(select(Outbox).where(Outbox.kind == "staff-signin").order_by(col(Outbox.id))).all()
    found = []
    for row in rows:
        text = email.message_from_bytes(row.raw, policy=default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found.append((row.recipients, re.search(re.escape(BASE) + r"(\S+)", text).group(1)))  # type: ignore[union-attr]
    return found


def test_a_link_goes_to_the_staff_address_and_opens_one_session(deps: IntakeDeps) -> None:
    assert request_link(deps, " Ana@Agency.test ", BASE) == "sent"
    [(to, token)] = links(deps)
    assert to == "ana@agency.test"
    assert link_email(deps, token) == "ana@agency.test"
    opened = redeem_link(deps, token)
    assert opened is not None and opened.email == "ana@agency.test"
    assert session_email(deps, opened.token) == "ana@agency.test"
    assert redeem_link(deps, token) is None, "single use"
    assert link_email(deps, token) is None


def test_only_hashes_are_stored(deps: IntakeDeps) -> None:
    request_link(deps, "ana@agency.test", BASE)
    [(_, token)] = links(deps)
    with Session(deps.engine) as session:
        [row] = session.exec(select(StaffSignIn)).all()
    assert token not in row.token_hash


def test_strangers_get_nothing(deps: IntakeDeps) -> None:
    assert request_link(deps, "mallory@evil.test", BASE) == "not staff"
    assert request_link(deps, "bob@acme.test", BASE) == "not staff"
    assert links(deps) == []


def test_a_link_expires(deps: IntakeDeps) -> None:
    request_link(deps, "ana@agency.test", BASE, SignInPolicy(link_minutes=15))
    [(_, token)] = links(deps)
    clock(deps).advance(minutes=15)
    assert link_email(deps, token) is None
    assert redeem_link(deps, token) is None


def test_links_are_rate_limited_per_address_and_in_all(deps: IntakeDeps) -> None:
    policy = SignInPolicy(links_per_hour=3, links_per_hour_all=5)
    assert [request_link(deps, "ana@agency.test", BASE, policy) for _ in range(4)] == ["sent"] * 3 + ["rate limited"]
    assert [request_link(deps, "ben@agency.test", BASE, policy) for _ in range(3)] == ["sent", "sent", "rate limited"]
    clock(deps).advance(hours=1, seconds=1)
    assert request_link(deps, "ana@agency.test", BASE, policy) == "sent"
    assert len(links(deps)) == 6


@pytest.mark.parametrize("token", ["", "nonsense", "x" * 500])
def test_unknown_tokens_open_nothing(deps: IntakeDeps, token: str) -> None:
    assert redeem_link(deps, token) is None
    assert session_email(deps, token) is None


def test_sessions_end_when_they_expire_or_on_sign_out(deps: IntakeDeps) -> None:
    policy = SignInPolicy(session_hours=2)
    request_link(deps, "ana@agency.test", BASE, policy)
    request_link(deps, "ben@agency.test", BASE, policy)
    (_, ana_link), (_, ben_link) = links(deps)
    ana, ben = redeem_link(deps, ana_link, policy), redeem_link(deps, ben_link, policy)
    assert ana and ben
    sign_out(deps, ana.token)
    assert session_email(deps, ana.token) is None and session_email(deps, ben.token) == "ben@agency.test"
    clock(deps).advance(hours=2)
    assert session_email(deps, ben.token) is None
