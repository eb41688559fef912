"""OAuth2 access tokens for XOAUTH2 (Gmail, Microsoft 365), from one of two places:

- a command, like mbsync's PassCmd (``oauth2_token_command``), that prints a fresh token —
  for when another tool (oama, a vendor CLI) owns the refresh token;
- a stored refresh token (``oauth2_refresh_token_file``) exchanged at ``oauth2_token_url`` with
  the client id and secret; a rotated refresh token is written back atomically.

Tokens are cached until shortly before they expire; an authentication failure asks for a new one.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
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
        request = urllib.request.Request(config.token_url, data=urllib.parse.urlencode(form).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the owner's URL)
                answer = json.loads(response.read().decode())
        except (OSError, ValueError) as exc:
            raise MailServerError(f"OAuth2 token refresh at {config.token_url} failed: {exc}") from exc
        if "access_token" not in answer:
            raise MailServerError(f"OAuth2 token refresh refused: {answer.get('error', answer)}")
        if answer.get("refresh_token"):
            _write_atomically(config.refresh_token_file, answer["refresh_token"])
        return answer["access_token"], float(answer.get("expires_in", 3600))


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.chmod(temp, 0o600)
    os.replace(temp, path)
