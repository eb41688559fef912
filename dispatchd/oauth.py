"""OAuth2 access tokens for XOAUTH2 (Gmail, Microsoft 365), from one of two places:

- a command, like mbsync's PassCmd (``oauth2_token_command``), that prints a fresh token —
  for when another tool (oama, a vendor CLI) owns the refresh token;
- a stored refresh token (``oauth2_refresh_token_file``) exchanged at ``oauth2_token_url`` with
  the client id and secret; a rotated refresh token is written back atomically.

Tokens are cached until shortly before they expire; an authentication failure asks for a new one.

Microsoft's v2.0 token endpoint refuses a refresh without ``scope`` (AADSTS70011): for it the
scope defaults to what IMAP or SMTP needs plus ``offline_access`` (so a new refresh token comes
back). Google takes the scopes granted at consent (``https://mail.google.com/``) and needs none.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dispatchd.errors import MailServerError


@dataclass(frozen=True)
class OAuth2Config:
    token_command: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None  # resolved from *_env / *_file at load time
    refresh_token_file: Path | None = None
    cache_seconds: float = 300.0
    scope: str | None = None  # oauth2_scope; None: the provider's default for ``service``
    service: str = "imap"  # imap | smtp: which default scope a Microsoft refresh asks for


# What Exchange Online's IMAP and SMTP AUTH accept (delegated permissions of the app registration).
MICROSOFT_SCOPES = {"imap": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
                    "smtp": "https://outlook.office.com/SMTP.Send offline_access"}


def refresh_scope(config: OAuth2Config) -> str | None:
    """The ``scope`` a refresh grant sends: the configured one, else Microsoft v2.0's default."""
    if config.scope:
        return config.scope
    # login.microsoftonline.com/<tenant>/oauth2/v2.0/token (and the national clouds' hosts)
    if "/oauth2/v2.0/token" in (config.token_url or "").lower():
        return MICROSOFT_SCOPES[config.service]
    return None


class TokenSource:
    def __init__(self, config: OAuth2Config):
        self.config = config
        self.token: str | None = None
        self.valid_until = 0.0
        self.lock = threading.Lock()

    def get(self, fresh: bool = False) -> str:
        """A usable access token; ``fresh`` skips the cache (after a failed login)."""
        with self.lock:
            if not fresh and self.token and time.monotonic() < self.valid_until:
                return self.token
            token, lifetime = self._from_command() if self.config.token_command else self._refresh()
            self.token, self.valid_until = token, time.monotonic() + max(0.0, lifetime - 60)
            return token

    def _from_command(self) -> tuple[str, float]:
        try:
            result = subprocess.run(self.config.token_command, shell=True, capture_output=True, text=True,  # noqa: S602
                                    timeout=60, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MailServerError("oauth2_token_command took longer than 60 s") from exc
        token = result.stdout.strip().splitlines()[-1].strip() if result.stdout.strip() else ""
        if result.returncode != 0 or not token:
            raise MailServerError(f"oauth2_token_command failed (exit {result.returncode}): "
                                  f"{result.stderr.strip()[:200]}")
        return token, self.config.cache_seconds + 60

    def _refresh(self) -> tuple[str, float]:
        config = self.config
        assert config.token_url and config.refresh_token_file
        form = {"grant_type": "refresh_token", "refresh_token": config.refresh_token_file.read_text().strip(),
                "client_id": config.client_id or ""}
        if config.client_secret:
            form["client_secret"] = config.client_secret
        scope = refresh_scope(config)
        if scope:
            form["scope"] = scope
        request = urllib.request.Request(config.token_url, data=urllib.parse.urlencode(form).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the owner's URL)
                answer = json.loads(response.read().decode())
        except urllib.error.HTTPError as exc:  # 400/401 carry the provider's reason as JSON
            answer = _error_body(exc)
        except (OSError, ValueError) as exc:
            raise MailServerError(f"OAuth2 token refresh at {config.token_url} failed: {exc}") from exc
        if "access_token" not in answer:
            raise MailServerError(refusal_sentence(config.token_url, answer))
        if answer.get("refresh_token"):
            _write_atomically(config.refresh_token_file, answer["refresh_token"])
        return answer["access_token"], float(answer.get("expires_in", 3600))


def _error_body(exc: urllib.error.HTTPError) -> dict[str, str]:
    try:
        body = json.loads(exc.read().decode() or "{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) and body.get("error") else {"error": f"HTTP {exc.code} {exc.reason}"}


def refusal_sentence(url: str, answer: dict[str, str]) -> str:
    """What the token endpoint said, and what usually causes it."""
    error = str(answer.get("error", "no access_token in the answer"))
    description = str(answer.get("error_description", "")).splitlines()[0] if answer.get("error_description") else ""
    hint = {
        "invalid_grant": "the refresh token expired or was revoked: sign in again and store the new refresh "
                         "token (Google: an app in 'Testing' publishing status gets refresh tokens that "
                         "expire after 7 days)",
        "invalid_client": "oauth2_client_id or the client secret is wrong",
        "unauthorized_client": "this client id may not use refresh tokens",
        "invalid_scope": "oauth2_scope asks for more than the app was granted",
        "invalid_request": "the request lacks something the provider needs (Microsoft v2.0: a scope)",
    }.get(error, "")
    return (f"OAuth2 token refresh at {url} refused: {error}" + (f" ({description})" if description else "")
            + (f"; {hint}" if hint else ""))


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)
