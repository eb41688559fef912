"""Server answers as sentences, and the scope a token refresh sends: pure tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatchd.mail.diagnose import server_words
from dispatchd.oauth import OAuth2Config, refresh_scope


@pytest.mark.parametrize("raised, words", [
    ("b'[AUTHENTICATIONFAILED] Authentication failed.'", "Authentication failed. [AUTHENTICATIONFAILED]"),
    ('b"[UNAVAILABLE] Temporary authentication failure"', "Temporary authentication failure [UNAVAILABLE]"),
    ("b'LOGIN failed.'", "LOGIN failed."),
    ("b'caf\\xc3\\xa9 closed'", "café closed"),
    ("plain text from the server", "plain text from the server"),
    ("b'unterminated", "b'unterminated"),
    ("", "Exception"),
])
def test_server_words(raised: str, words: str) -> None:
    assert server_words(Exception(raised)) == words


@pytest.mark.parametrize("url, service, scope, sent", [
    ("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", "imap", None,
     "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
    ("https://login.microsoftonline.com/common/oauth2/v2.0/token", "smtp", None,
     "https://outlook.office.com/SMTP.Send offline_access"),
    ("https://login.microsoftonline.us/tenant/oauth2/v2.0/token", "imap", None,
     "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
    ("https://login.microsoftonline.com/common/oauth2/v2.0/token", "imap", "https://outlook.office.com/.default",
     "https://outlook.office.com/.default"),
    ("https://oauth2.googleapis.com/token", "imap", None, None),
    ("https://login.microsoftonline.com/common/oauth2/token", "imap", None, None),  # v1: resource, not scope
    (None, "smtp", None, None),
])
def test_refresh_scope(url: str | None, service: str, scope: str | None, sent: str | None) -> None:
    config = OAuth2Config(token_url=url, client_id="app", refresh_token_file=Path("t"), scope=scope, service=service)
    assert refresh_scope(config) == sent
