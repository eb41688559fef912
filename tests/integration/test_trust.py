"""Whom dispatchd tells and whom it believes (issue 20, and issue 23's "a claim is not an identity"),
end to end through real Dovecot and the SMTP sink. Each test here failed on the code before it."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


def test_an_outsiders_claim_does_not_make_them_the_client(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Design - Spring sale banner", sender="PR Desk <pr@brightmedia.test>"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.client, task.claimed_client, task.queue) == (None, "Acme", "triage")
    [notice] = deployment.received_by("morgan@agency.test")
    body = notice.get_body(("plain",)).get_content()
    assert "Client:    unknown (claims to be Acme (sender not on Acme's list))" in body


def test_a_client_that_does_not_exist_goes_to_triage(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Vandelay] - Design - Latex catalogue"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.queue, task.status, task.claimed_client) == ("triage", "received", "Vandelay")
    [notice] = deployment.received_by("morgan@agency.test")
    assert "names Vandelay, which is not a client we know" in notice.get_body(("plain",)).get_content()


def test_the_digest_never_reaches_an_outsider_who_named_the_client(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Pillar page on pricing", message_id="<acme@client.test>"),
                       make_mail("[Acme] - Design - Press kit", sender="pr@brightmedia.test"))
    assert deployment.run_once() == 0
    assert deployment.cli("job", "digest") == 0
    assert not [m for m in deployment.received_by("pr@brightmedia.test") if "Press kit" not in m["Subject"]]
    [digest] = [m for m in deployment.received_by("bob@acme.test") if m["Auto-Submitted"] != "auto-replied"]
    body = digest.get_body(("plain",)).get_content()
    assert "Pillar page on pricing" in body and "Press kit" not in body
