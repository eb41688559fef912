"""The outbox sender against a real SMTP server: several connections at once, each
recipient's mail in the order it was queued, and an outage stopping every connection."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime, timezone

import pytest
from sqlmodel import Session

from dispatchd.config import load_config
from dispatchd.daemon import build_deps, build_outbox
from dispatchd.flows.outbox import ORPHAN_CHECK_SECONDS, RetryPolicy
from dispatchd.store.tables import Outbox
from tests.integration.conftest import Deployment

pytestmark = pytest.mark.integration


def queue_mail(deployment: Deployment, recipients: list[str]) -> None:
    deps = build_deps(load_config(deployment.config))
    now = datetime.now(timezone.utc)
    with Session(deps.engine) as session, session.begin():
        for n, to in enumerate(recipients):
            message_id = f"<q{n}@agency.test>"
            raw = f"From: requests@agency.test\r\nTo: {to}\r\nMessage-ID: {message_id}\r\nSubject: {n}\r\n\r\nhi\r\n"
            session.add(Outbox(message_id=message_id, kind="staff-status", envelope_from="requests@agency.test",
                               recipients=to, subject=str(n), raw=raw.encode(), next_attempt_at=now, created_at=now))


def test_mail_goes_out_over_several_connections_in_order_per_recipient(deployment: Deployment) -> None:
    recipients = [f"person{n % 8}@acme.test" for n in range(48)]
    queue_mail(deployment, recipients)
    deps = build_deps(load_config(deployment.config))
    report = asyncio.run(build_outbox(deps).drain())
    assert report.sent == 48
    received = deployment.smtp.messages
    ids = [email.message_from_bytes(m.data)["Message-ID"] for m in received]
    assert sorted(ids) == sorted(f"<q{n}@agency.test>" for n in range(48)), "each email exactly once"
    assert len({m.peer for m in received}) > 1, "more than one connection at once"
    for person in set(recipients):
        queued = [f"<q{n}@agency.test>" for n, to in enumerate(recipients) if to == person]
        arrived = [i for i, m in zip(ids, received) if m.rcpt_tos == [person]]
        assert arrived == queued, f"{person}'s mail kept its order"
        assert len({m.peer for m in received if m.rcpt_tos == [person]}) == 1


def test_an_outage_costs_no_email_an_attempt(deployment: Deployment) -> None:
    queue_mail(deployment, [f"person{n}@acme.test" for n in range(30)])
    deps = build_deps(load_config(deployment.config))
    deployment.smtp.stop()
    try:
        report = asyncio.run(build_outbox(deps, RetryPolicy(base_seconds=60)).drain())
    finally:
        deployment.smtp.start()
    rows = deployment.outbox()
    assert report.sent == 0 and {r.status for r in rows} == {"pending"}
    assert sum(r.attempts for r in rows) == 0, "the server's fault is no email's: all handed back untried"


def test_mail_another_instance_is_sending_is_looked_at_again_within_seconds(deployment: Deployment) -> None:
    """Not at the idle wake-up half a minute on: if that instance is dead, its claims go back
    to the queue at the next look (ORPHAN_CHECK_SECONDS)."""
    queue_mail(deployment, ["person@acme.test"])
    deps = build_deps(load_config(deployment.config))
    sender = build_outbox(deps)
    assert sender.next_look() == sender.next_due() == 0.0
    with Session(deps.engine) as session, session.begin():
        row = session.get(Outbox, 1)
        assert row is not None
        row.status, row.claimed_by = "sending", "local:1:elsewhere"
    assert sender.next_due() is None
    assert sender.next_look() == ORPHAN_CHECK_SECONDS
    with Session(deps.engine) as session, session.begin():
        row = session.get(Outbox, 1)
        assert row is not None
        row.status, row.claimed_by = "sent", None
    assert sender.next_look() is None
