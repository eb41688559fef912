"""Reading ``Authentication-Results`` (RFC 8601) written by a server we trust.

Only headers whose authserv-id is the configured one count: anyone can add such a header
to a message, but our own receiving server puts its own on top and names itself.
"""

from __future__ import annotations

import re

_RESULT = re.compile(r"\b(dkim|spf|dmarc)\s*=\s*(\w+)([^;]*)", re.IGNORECASE)
_PROPERTY = re.compile(r"\b(header\.d|header\.i|header\.from|smtp\.mailfrom|smtp\.from)\s*=\s*([^\s;]+)", re.IGNORECASE)


def passing_domains(headers: tuple[str, ...], trusted_authserv_id: str | None) -> set[str]:
    """Domains for which the trusted server saw DKIM, SPF or DMARC pass."""
    if not trusted_authserv_id:
        return set()
    domains: set[str] = set()
    for header in headers:
        authserv, _, results = header.partition(";")
        if authserv.strip().lower().split()[:1] != [trusted_authserv_id.lower()]:
            continue
        for _method, verdict, properties in _RESULT.findall(results):
            if verdict.lower() != "pass":
                continue
            for _, value in _PROPERTY.findall(properties):
                domains.add(value.strip('"<>').rpartition("@")[2].lower())
    return domains


def sender_authenticated(sender: str, headers: tuple[str, ...], trusted_authserv_id: str | None) -> bool:
    domain = sender.rpartition("@")[2].lower()
    return bool(domain) and domain in passing_domains(headers, trusted_authserv_id)
