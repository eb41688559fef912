"""Passwords, client secrets and OAuth2 settings: never inline, from the environment or a file."""

from __future__ import annotations

import os
from pathlib import Path

from dispatchd.config.model import Secret
from dispatchd.oauth import OAuth2Config
from dispatchd.tomlfile import Reader

TLS_MODES = ("ssl", "starttls", "none")


def read_secret(r: Reader, base: Path, required: bool, prefix: str = "password", credentials: bool = True) -> Secret:
    """Where a secret comes from; with ``credentials`` it must be there now."""
    if prefix in r.table:
        r.known.add(prefix)
        r.problem(prefix, f"inline secrets are refused; use {prefix}_env or {prefix}_file")
    env = r.str(f"{prefix}_env")
    file = r.str(f"{prefix}_file")
    if env and file:
        r.problem(f"{prefix}_file", f"give {prefix}_env or {prefix}_file, not both")
    if required and not (env or file):
        r.problem(f"{prefix}_env", f"is required (or {prefix}_file)")
    if credentials and env and env not in os.environ:
        r.problem(f"{prefix}_env", f"environment variable {env} is not set")
    secret_file = base / file if file else None
    if credentials and secret_file and not secret_file.is_file():
        r.problem(f"{prefix}_file", f"{secret_file} does not exist")
    return Secret(env=env, file=secret_file)



def read_oauth2(r: Reader, base: Path, credentials: bool = True, service: str = "imap") -> OAuth2Config | None:
    """auth = "xoauth2": a token command, or a refresh token with its token endpoint."""
    if r.choice("auth", ("password", "xoauth2"), "password") != "xoauth2":
        for key in ("oauth2_token_command", "oauth2_token_url", "oauth2_client_id", "oauth2_refresh_token_file",
                    "oauth2_client_secret_env", "oauth2_client_secret_file", "oauth2_scope"):
            if key in r.table:
                r.problem(key, 'only used with auth = "xoauth2"')
                r.known.add(key)
        return None
    command = r.str("oauth2_token_command")
    url = r.str("oauth2_token_url")
    refresh = r.str("oauth2_refresh_token_file")
    client_id = r.str("oauth2_client_id")
    secret = read_secret(r, base, required=False, prefix="oauth2_client_secret", credentials=credentials)
    if not command and not (url and refresh and client_id):
        r.problem("auth", "xoauth2 needs oauth2_token_command, or oauth2_token_url + oauth2_client_id + "
                          "oauth2_refresh_token_file")
    refresh_path = base / refresh if refresh else None
    if credentials and refresh_path is not None and not refresh_path.is_file():
        r.problem("oauth2_refresh_token_file", f"{refresh_path} does not exist")
    return OAuth2Config(token_command=command, token_url=url, client_id=client_id,
                        client_secret=secret.reveal() if credentials else None,
                        refresh_token_file=refresh_path, scope=r.str("oauth2_scope"), service=service)

