"""XOAUTH2 for Gmail / Microsoft 365 style set-ups, against Dovecot's oauth2 passdb with a token
introspection endpoint on loopback, and an SMTP server that only takes XOAUTH2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatchd.devservers import Dovecot, SmtpCapture
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail
from tests.integration.form_endpoint import Form, FormEndpoint

pytestmark = pytest.mark.integration
USER = "requests@agency.test"


class IdentityProvider:
    """Token introspection (RFC 7662) for Dovecot and a token endpoint for refresh grants."""

    def __init__(self) -> None:
        self.valid = {"access-1"}
        self.refreshes: list[Form] = []
        self.endpoint = FormEndpoint(self.answer)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def answer(self, path: str, form: Form) -> tuple[int, dict[str, object]]:
        if path == "/introspect":
            token = form.get("token", [""])[0]
            return 200, {"active": True, "username": USER} if token in self.valid else {"active": False}
        # /token: a refresh grant rotates both tokens
        self.refreshes.append(form)
        new = f"access-{len(self.refreshes) + 1}"
        self.valid.add(new)
        return 200, {"access_token": new, "expires_in": 3600, "refresh_token": f"refresh-{new}"}


@pytest.fixture
def identity() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.endpoint.start()
    try:
        yield provider
    finally:
        provider.endpoint.stop()


@pytest.fixture
def oauth_dovecot(identity: IdentityProvider) -> Iterator[Dovecot]:
    server = Dovecot(oauth2_introspection_url=f"{identity.url}/introspect").start()
    try:
        yield server
    finally:
        server.stop()


def oauth_config(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, auth: str) -> Deployment:
    config = write_config(tmp_path, dovecot.port, smtp.port, mailbox=USER)
    text = config.read_text().replace('password_env = "DISPATCHD_TEST_PASSWORD"\n', auth, 1)
    text = text.replace('timeout = 5\n', 'timeout = 5\nusername = "requests@agency.test"\n' + auth, 1)
    config.write_text(text)
    return Deployment(tmp_path, dovecot, smtp, USER)


def test_xoauth2_with_a_token_command(tmp_path: Path, oauth_dovecot: Dovecot) -> None:
    with SmtpCapture(oauth2_token="access-1") as smtp:
        deployment = oauth_config(tmp_path, oauth_dovecot, smtp,
                                  'auth = "xoauth2"\noauth2_token_command = "echo access-1"\n')
        deployment.deliver(make_mail("[Acme] - Content - Via OAuth"))
        assert deployment.run_once() == 0
        assert len(deployment.tasks()) == 1
        assert smtp.recorder.logins and set(smtp.recorder.logins) == {USER}  # type: ignore[attr-defined]
        assert len(smtp.messages) == 2


def test_xoauth2_with_a_stored_refresh_token(tmp_path: Path, oauth_dovecot: Dovecot,
                                             identity: IdentityProvider) -> None:
    (tmp_path / "refresh.token").write_text("refresh-0\n")
    auth = (f'auth = "xoauth2"\noauth2_token_url = "{identity.url}/token"\noauth2_client_id = "dispatchd"\n'
            'oauth2_refresh_token_file = "refresh.token"\n')
    with SmtpCapture(oauth2_token="access-3") as smtp:
        deployment = oauth_config(tmp_path, oauth_dovecot, smtp, auth)
        deployment.deliver(make_mail("[Acme] - Content - Refreshed"))
        assert deployment.run_once() == 0
        # One token for all the sender's connections: each its own refreshed again and again, and
        # with rotating refresh tokens all but one connection's logins were refused.
        assert len(smtp.messages) == 2 and {r.status for r in deployment.outbox()} == {"sent"}
    assert len(deployment.tasks()) == 1
    assert identity.refreshes[0]["refresh_token"] == ["refresh-0"]
    assert identity.refreshes[0]["client_id"] == ["dispatchd"]
    assert (tmp_path / "refresh.token").read_text().startswith("refresh-access-"), "a rotated token is kept"


def test_a_bad_token_is_an_outage_not_a_crash(tmp_path: Path, oauth_dovecot: Dovecot,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with SmtpCapture() as smtp:
        deployment = oauth_config(tmp_path, oauth_dovecot, smtp,
                                  'auth = "xoauth2"\noauth2_token_command = "echo revoked"\n')
        assert deployment.run_once() == 3
    assert "AUTHENTICATIONFAILED" in capsys.readouterr().err
