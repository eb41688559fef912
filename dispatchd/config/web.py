"""[web]: the web side (client status pages, request form, staff dashboard).

``listen`` makes the daemon serve it too (``dispatchd web`` serves it alone); ``base_url`` is
the address people reach it at, put in the links emails carry. The signing secret for client
links and CSRF tokens is never inline: ``secret_env`` / ``secret_file``, or, without either,
one generated once and kept in the database (``dispatchd web rotate`` replaces that one).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from dispatchd.config.credentials import read_secret
from dispatchd.config.model import WebConfig
from dispatchd.tomlfile import Reader


def read_web(r: Reader, base: Path, credentials: bool = True) -> WebConfig:
    listen = r.str("listen")
    if listen is not None and parse_listen(listen) is None:
        r.problem("listen", f'{listen!r}: write HOST:PORT, e.g. "127.0.0.1:8025"')
    base_url = r.str("base_url")
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            r.problem("base_url", f"{base_url!r}: write the address people open, e.g. https://dispatch.example.com")
        base_url = base_url.rstrip("/")
    config = WebConfig(
        listen=listen,
        base_url=base_url,
        secret=read_secret(r, base, required=False, prefix="secret", credentials=credentials),
        link_days=r.int("link_days", 90, minimum=1, maximum=3650),
        max_upload_bytes=int(r.float("max_upload_mb", 20.0) * 1024 * 1024),
        max_files=r.int("max_files", 10, minimum=0, maximum=100),
        trusted_header=r.str("trusted_header"),
        staff_session_hours=r.int("staff_session_hours", 12, minimum=1, maximum=24 * 30),
    )
    r.refuse_unknown()
    return config


def parse_listen(text: str) -> tuple[str, int] | None:
    """'127.0.0.1:8025' -> ('127.0.0.1', 8025); '[::1]:8025' too; None if it is neither."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)
