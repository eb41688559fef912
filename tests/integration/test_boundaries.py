"""Nothing crosses a client boundary: a realistic mix of mail (two clients, an outsider who names a
client, a client's sender who names another client, a forged comment, a stranger guessing a task
number, staff moving work on) runs end to end through Dovecot and the SMTP sink, with every
scheduled job; then every (recipient × kind of mail) that reached the sink is checked against
whose data it carries. Each request carries a marker word so its data can be found in any mail."""

from __future__ import annotations

import email
import email.policy
from collections import defaultdict

import pytest

from dispatchd.config import load_config
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
STAFF = ("ana@agency.test", "ben@agency.test", "morgan@agency.test")


def _reply(deployment: Deployment, staff: str, marker: str, body: str) -> None:
    notice = [m for m in deployment.received_by(staff) if marker in m["Subject"]][-1]
    deployment.deliver(make_mail(f"Re: {notice['Subject']}", sender=staff, body=body, to=notice["Reply-To"],
                                 headers={"In-Reply-To": notice["Message-ID"]}))
    assert deployment.run_once() == 0


def test_no_mail_crosses_a_client_boundary(deployment: Deployment) -> None:
    d = deployment
    d.deliver(
        make_mail("[Acme] - Content - Pillar page ACMEONE", sender="Bob <bob@acme.test>",
                  headers={"Cc": "Carol <carol@acme.test>, Max <max@globex.test>, pr@brightmedia.test"}),
        make_mail("[Globex] - Design - Logo refresh GLOBEXTWO", sender="Gina <gina@globex.test>"),
        make_mail("[Acme] - Design - Press kit OUTSIDERTHREE", sender="PR <pr@brightmedia.test>"),
        make_mail("[Globex] - Content - Joint webinar CROSSFOUR", sender="Carl <carl@acme.test>"),
        make_mail("hello, a banner please GLOBEXFIVE", sender="Ivy <intern@globex.test>"),
    )
    assert d.run_once() == 0
    # The forged comment (an Acme address on Globex's task) and a stranger guessing a number.
    d.deliver(make_mail("[#2] new invoice address", sender="alice@acme.test", body="FORGEDSIX pay to XX00"),
              make_mail("[#1] hi", sender="eve@evil.test", body="EVESEVEN send me everything"),
              make_mail("[#1] please hurry", sender="alice@acme.test", body="UNVERIFIEDEIGHT"))
    assert d.run_once() == 0
    _reply(d, "ben@agency.test", "ACMEONE", "assign Ana\nstart")
    _reply(d, "ben@agency.test", "GLOBEXTWO", "start")
    _reply(d, "morgan@agency.test", "OUTSIDERTHREE", "client Acme")  # a person moves the outsider's task
    _reply(d, "morgan@agency.test", "GLOBEXFIVE", "type Design")
    confirmation = d.received_by("gina@globex.test")[0]
    d.deliver(make_mail(f"Re: {confirmation['Subject']}", sender="gina@globex.test", body="Blue, please.",
                        to=confirmation["Reply-To"], headers={"In-Reply-To": confirmation["Message-ID"]}))
    assert d.run_once() == 0
    for job in ("digest", "staff-digest", "health", "sla"):
        assert d.cli("job", job) == 0

    config = load_config(d.config)
    tasks = {t.description.split()[-1]: t for t in d.tasks()}
    assert (tasks["OUTSIDERTHREE"].client, tasks["CROSSFOUR"].client) == ("Acme", None)

    def may_see(recipient: str, marker: str) -> bool:
        task = tasks.get(marker)
        if task is None:  # words someone wrote on a task: never sent to a client
            return False
        if task.client is None:
            return recipient == task.sender
        return any(c.name == task.client and c.may_receive(recipient) for c in config.clients)

    kinds = {row.message_id: row.kind for row in d.outbox()}
    matrix: dict[tuple[str, str], int] = defaultdict(int)
    markers = [*tasks, "FORGEDSIX", "EVESEVEN", "UNVERIFIEDEIGHT"]
    for received in d.smtp.messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        kind = kinds[message["Message-ID"]]
        text = "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")
        for recipient in received.rcpt_tos:
            matrix[(recipient, kind)] += 1
            if recipient in STAFF:
                continue
            leaked = [m for m in markers if m in text + message["Subject"] and not may_see(recipient, m)]
            assert not leaked, f"{kind} to {recipient} carries {leaked}"
            assert not any(s in text for s in STAFF), f"{kind} to {recipient} names a staff address"
    seen = {(r, k) for r, k in matrix}
    # The mail that could cross was really sent (or really withheld): the matrix is not empty by accident.
    assert {("bob@acme.test", "client-received"), ("bob@acme.test", "client-status"), ("bob@acme.test", "client-digest"),
            ("gina@globex.test", "client-digest"), ("gina@globex.test", "client-status"),
            ("carl@acme.test", "client-format-help"), ("intern@globex.test", "client-format-help"),
            ("intern@globex.test", "client-status")} <= seen, sorted(seen)
    assert not [r for r, _ in seen if r in ("pr@brightmedia.test", "eve@evil.test")], sorted(seen)
    assert ("carol@acme.test", "client-status") in seen, "a colleague cc'd follows; outsiders cc'd do not"
    assert not [k for r, k in seen if r == "max@globex.test"], "another client's address cc'd hears nothing of Acme's"
