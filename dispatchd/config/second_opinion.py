"""[second_opinion]: an OpenAI-compatible chat endpoint (Ollama, llama.cpp's server, vLLM, a
hosted API) asked about the requests the triage model left in triage. Off unless the table is
there. The mail of clients goes to that endpoint, so the URL must be https, or plain http only
to this machine (a local Ollama); a bearer token comes from the environment or a file, never
inline, like every other secret.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlsplit

from dispatchd.config.credentials import read_secret
from dispatchd.config.integrations import cleartext_problem
from dispatchd.config.model import SecondOpinionConfig
from dispatchd.tomlfile import Reader

MAX_TIMEOUT_SECONDS = 120.0  # a job runs every minute: one call must not hold it for longer than two
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(seconds?|secs?|s|minutes?|mins?|m)\s*$", re.IGNORECASE)


def read_second_opinion(r: Reader, base: Path, credentials: bool = True) -> SecondOpinionConfig | None:
    """None when config.toml has no [second_opinion] table: no request is ever sent anywhere."""
    if not r.table:
        return None
    url = (r.str("url", "", required=True) or "").rstrip("/")
    if url:
        problem = endpoint_problem(url)
        if problem:
            r.problem("url", f"{url} {problem}")
    model = r.str("model", "", required=True)
    if "model" in r.table and not (model or "").strip():
        r.problem("model", 'name the model the endpoint serves, e.g. "llama3.1:8b"')
    settings = SecondOpinionConfig(
        url=url, model=(model or "").strip(),
        api_key=read_secret(r, base, required=False, prefix="api_key", credentials=credentials),
        timeout=_timeout(r, "timeout", 15.0),
        threshold=_fraction(r, "threshold", 0.8),
        max_per_run=r.int("max_per_run", 20, minimum=1, maximum=1000))
    r.refuse_unknown()
    return settings


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` may not be the API's base, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return 'must be the http(s) URL of an OpenAI-compatible API, e.g. "http://127.0.0.1:11434/v1"'
    if parts.username or parts.password:
        return "must not carry a user name or password (use api_key_env)"
    if parts.query or parts.fragment:
        return "must be the API's base URL, without ?query or #fragment"
    if parts.path.rstrip("/").endswith("/chat/completions"):
        return "must be the API's base URL: /chat/completions is added to it"
    return cleartext_problem(parts.scheme, parts.hostname)


def _timeout(r: Reader, key: str, default: float) -> float:
    """"15 seconds", "1 minute" or a number of seconds: above 0, at most two minutes."""
    if key not in r.table:
        r.known.add(key)
        return default
    written = r.either(key, (str, int, float), default)
    if isinstance(written, bool):
        seconds = -1.0
    elif isinstance(written, (int, float)):
        seconds = float(written)
    else:
        match = _SECONDS.match(written)
        seconds = float(match.group(1)) * (60 if match.group(2).lower().startswith("m") else 1) if match else -1.0
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        r.problem(key, f'must be a time above 0 and up to 2 minutes, e.g. "15 seconds"; got {written!r}')
        return default
    return seconds


def _fraction(r: Reader, key: str, default: float) -> float:
    value = r.float(key, default)
    if value is None or not math.isfinite(value) or not 0 < value <= 1:
        r.problem(key, f"must be a confidence above 0 and at most 1, e.g. 0.8; got {value!r}")
        return default
    return float(value)
