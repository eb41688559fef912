"""Token refresh as Microsoft's v2.0 endpoint and Google's expect it, against a token server on
loopback that answers the way they do (Microsoft: a refresh without ``scope`` is refused with
AADSTS70011; Google: an expired refresh token is ``invalid_grant``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatchd.errors import MailServerError
from dispatchd.oauth import OAuth2Config, TokenSource
from tests.integration.form_endpoint import Form, FormEndpoint

pytestmark = pytest.mark.integration


def _answer(path: str, form: Form) -> tuple[int, dict[str, object]]:
    """POST /<tenant>/oauth2/v2.0/token (Microsoft) and /token (Google), as each answers."""
    if form.get("refresh_token") == ["expired"]:
        return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    if path.endswith("/oauth2/v2.0/token"):
        if "scope" not in form:
            return 400, {"error": "invalid_request", "error_description":
                         "AADSTS70011: The provided request must include a 'scope' input parameter.\r\n"
                         "Trace ID: 1234"}
        scopes = form["scope"][0].split()
        return 200, {"access_token": f"ms:{' '.join(sorted(scopes))}", "expires_in": 3599,
                     "refresh_token": "rotated", "scope": form["scope"][0]}
    return 200, {"access_token": "google-access", "expires_in": 3599}


@pytest.fixture
def tokens() -> Iterator[FormEndpoint]:
    server = FormEndpoint(_answer).start()
    try:
        yield server
    finally:
        server.stop()


def _source(tmp_path: Path, url: str, service: str = "imap", refresh: str = "stored", scope: str | None = None) -> TokenSource:
    token_file = tmp_path / f"{service}.token"
    token_file.write_text(refresh)
    return TokenSource(OAuth2Config(token_url=url, client_id="app", refresh_token_file=token_file, service=service,
                                    scope=scope))


@pytest.mark.parametrize("service, scope", [
    ("imap", "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
    ("smtp", "https://outlook.office.com/SMTP.Send offline_access"),
])
def test_microsoft_v2_refresh_sends_the_scope_it_requires(tmp_path: Path, tokens: FormEndpoint, service: str,
                                                          scope: str) -> None:
    url = f"http://127.0.0.1:{tokens.port}/contoso.onmicrosoft.com/oauth2/v2.0/token"
    token = _source(tmp_path, url, service).get()
    assert tokens.forms[-1]["scope"] == [scope] and token == f"ms:{' '.join(sorted(scope.split()))}"
    assert (tmp_path / f"{service}.token").read_text() == "rotated", "offline_access: a new refresh token is kept"


def test_a_configured_scope_wins_and_google_needs_none(tmp_path: Path, tokens: FormEndpoint) -> None:
    url = f"http://127.0.0.1:{tokens.port}/common/oauth2/v2.0/token"
    _source(tmp_path, url, scope="https://outlook.office.com/IMAP.AccessAsUser.All").get()
    assert tokens.forms[-1]["scope"] == ["https://outlook.office.com/IMAP.AccessAsUser.All"]
    assert _source(tmp_path, f"http://127.0.0.1:{tokens.port}/token").get() == "google-access"
    assert "scope" not in tokens.forms[-1]


def test_a_refused_refresh_is_a_sentence_with_the_likely_cause(tmp_path: Path, tokens: FormEndpoint) -> None:
    with pytest.raises(MailServerError) as refused:
        _source(tmp_path, f"http://127.0.0.1:{tokens.port}/token", refresh="expired").get()
    message = str(refused.value)
    assert "refused: invalid_grant (Token has been expired or revoked.)" in message
    assert "expire after 7 days" in message and "HTTP Error 400" not in message
