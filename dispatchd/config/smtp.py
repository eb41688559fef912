"""[smtp]: the server outgoing mail is sent through."""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path

from dispatchd.config.credentials import TLS_MODES, read_oauth2, read_secret
from dispatchd.config.model import EMAIL_PATTERN, SmtpConfig
from dispatchd.domain.sla import parse_sla
from dispatchd.tomlfile import Reader


def read_smtp(r: Reader, base: Path, credentials: bool = True) -> SmtpConfig:
    tls = r.choice("tls", TLS_MODES, "starttls")
    username = r.str("username")
    from_address = r.str("from", "", required=True)
    oauth2 = read_oauth2(r, base, credentials, service="smtp")
    if from_address and not EMAIL_PATTERN.match(parseaddr(from_address)[1]):
        r.problem("from", f"{from_address!r} is not an email address")
    config = SmtpConfig(
        host=r.str("host", "", required=True),
        port=r.int("port", 465 if tls == "ssl" else 587, minimum=1, maximum=65535),
        tls=tls,
        username=username,
        password=read_secret(r, base, required=bool(username) and oauth2 is None, credentials=credentials),
        from_address=from_address,
        oauth2=oauth2,
        timeout=r.float("timeout", 30.0),
        max_attempts=r.int("max_attempts", None, minimum=1, maximum=1000),
        give_up_after_hours=_hours(r, "give_up_after", "3 days"),
        verp=r.bool("verp", True),
        connections=r.int("connections", 4, minimum=1, maximum=20),
    )
    r.refuse_unknown()
    return config


def _hours(r: Reader, key: str, default: str) -> float:
    """A span of real time such as '3 days' or '36 hours', in hours."""
    written = r.str(key, default)
    try:
        target = parse_sla(written)
        if target.unit not in ("hours", "days", "weeks"):
            raise ValueError(f"{written!r}: write real time, e.g. '3 days' or '36 hours', not business time")
    except ValueError as exc:
        r.problem(key, str(exc))
        target = parse_sla(default)
    return target.amount * {"hours": 1, "days": 24, "weeks": 168}[target.unit]

