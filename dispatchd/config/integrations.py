"""[[webhooks]], [[slack]] and [[teams]]: where integration events are delivered.

A webhook's URL is written in config.toml and its signing secret comes from the environment or a
file. A Slack or Teams webhook URL is itself the credential (anyone holding it may post), so it
is read like a password: ``url_env`` or ``url_file``, never inline. URLs must be https, except
on loopback (tests, a local n8n). ``events`` names are checked against the shipped schema's
list, and a client's channel may only hear what a client may read (``domain.events.CLIENT_EVENTS``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from dispatchd.config.credentials import read_secret
from dispatchd.config.model import EMAIL_PATTERN, Destination
from dispatchd.domain.events import CLIENT_EVENTS, EVENT_TYPES, Audience, EventFilter
from dispatchd.tomlfile import Reader

KINDS = ("webhooks", "slack", "teams")


def read_destinations(root: Reader, base: Path, credentials: bool = True) -> tuple[Destination, ...]:
    found: list[Destination] = []
    seen: set[str] = set()
    for section in KINDS:
        for r in root.tables(section):
            destination = _read(r, section, base, credentials)
            r.refuse_unknown()
            if destination.name in seen:
                r.problem("name", f"another destination is named {destination.name!r}")
            seen.add(destination.name)
            found.append(destination)
    return tuple(found)


def _read(r: Reader, section: str, base: Path, credentials: bool) -> Destination:
    kind = "webhook" if section == "webhooks" else section
    name = r.str("name", "", required=True)
    events = _events(r)
    owners = r.str_list("owners")
    for owner in owners:
        if not EMAIL_PATTERN.match(owner):
            r.problem("owners", f"{owner!r} is not an email address")
    if kind == "webhook":
        url = r.str("url", "", required=True)
        _check_url(r, "url", url)
        signing = read_secret(r, base, required=True, prefix="secret", credentials=credentials)
        clients, queues = r.str_list("clients"), r.str_list("queues")
        audience = Audience(r.choice("audience", ("team", "client"), "team"))
        url_secret = None
    else:
        url, signing = None, None
        url_secret = read_secret(r, base, required=True, prefix="url", credentials=credentials)
        if credentials and url_secret.reveal():
            _check_url(r, "url_env" if url_secret.env else "url_file", url_secret.reveal() or "")
        client, queue = r.str("client"), r.str("queue")
        clients, queues = (client,) if client else (), (queue,) if queue else ()
        audience = Audience.CLIENT if client else Audience.TEAM
    if audience is Audience.CLIENT:
        refused = sorted(set(events) - CLIENT_EVENTS) if "events" in r.table else []
        if refused:
            r.problem("events", f"a client's channel hears only {', '.join(sorted(CLIENT_EVENTS))}; "
                                f"not {', '.join(refused)}")
        events = tuple(e for e in events if e in CLIENT_EVENTS)
    return Destination(
        name=name, kind=kind, url=url, url_secret=url_secret, signing=signing,
        filter=EventFilter(frozenset(events), clients, queues, audience), owners=owners,
        concurrency=r.int("concurrency", 4, minimum=1, maximum=64),
        timeout=_positive(r, "timeout", 10.0),
        max_attempts=r.int("max_attempts", 12, minimum=1, maximum=100))


def _events(r: Reader) -> tuple[str, ...]:
    events = r.str_list("events", EVENT_TYPES)
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        r.problem("events", f"unknown event {', '.join(map(repr, unknown))} (known: {', '.join(EVENT_TYPES)})")
    return tuple(e for e in events if e in EVENT_TYPES)


def _positive(r: Reader, key: str, default: float) -> float:
    value = r.float(key, default)
    if value is None or not 0 < value <= 120:
        r.problem(key, f"must be between 0 and 120 seconds, not {value}")
        return default
    return float(value)


def url_problem(url: str) -> str | None:
    """Why ``url`` may not receive events, or None: https, or http on loopback only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL"
    if parts.username or parts.password:
        return "must not carry a user name or password (use the signing secret)"
    return cleartext_problem(parts.scheme, parts.hostname)


def cleartext_problem(scheme: str, host: str) -> str | None:
    """Clients' data is sent there: in clear text only to this machine."""
    if scheme == "http" and not is_loopback(host):
        return "must be https (plain http only to 127.0.0.1, ::1 or localhost)"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(r: Reader, key: str, url: str) -> None:
    problem = url_problem(url) if url else None
    if problem:
        # A Slack/Teams URL is a secret: say what is wrong without printing it.
        shown = url if key == "url" else "the URL"
        r.problem(key, f"{shown} {problem}")
