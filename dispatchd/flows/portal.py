"""Client links: the "All your requests" link every client email carries, whether a link still
opens, and withdrawing links (``dispatchd web revoke``). The signing is ``domain/links``.

A link is only ever made for an address that is one of its client's (``Client.may_receive``)
and only opens while it still is: taking a contact off config.toml closes their links too.
Revocations are times kept in ``meta`` (one key per contact, one per client); a link issued
before the latest one that concerns it no longer opens. Rotating the web secret ends them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from sqlalchemy import text
from sqlmodel import Session

from dispatchd.config import Client, Config
from dispatchd.domain.intake import Directory
from dispatchd.domain.links import ClientLink, LinkState, link_state, read_link, sign_link


@dataclass(frozen=True)
class OpenedLink:
    """What a token in a URL turned out to be: its state and, when it is ours, its terms."""

    state: LinkState
    link: ClientLink | None = None
    client: Client | None = None

    @property
    def valid(self) -> bool:
        return self.state is LinkState.VALID


def client_link_url(config: Config, secret: bytes, recipient: str, client_name: str | None, now: datetime) -> str:
    """The URL of ``recipient``'s requests page, or '' when there is none to give: no
    ``[web] base_url``, no secret, or ``recipient`` is not one of the client's addresses.
    ``client_name``: the task's client (else the one client the address belongs to)."""
    base = config.web.base_url
    if not base or not secret or not recipient or config.staff_by_email(recipient) is not None:
        return ""
    client = _client_of(config, recipient, client_name)
    if client is None:
        return ""
    token = sign_link(secret, client.name, recipient, now, timedelta(days=config.web.link_days))
    return f"{base}/c/{quote(token, safe='')}"


def _client_of(config: Config, recipient: str, client_name: str | None) -> Client | None:
    if client_name:
        client = next((c for c in config.clients if c.name == client_name), None)
        return client if client is not None and client.may_receive(recipient) else None
    clients = [c for c in config.clients if c.may_receive(recipient)]
    return clients[0] if len(clients) == 1 else None


def open_link(session: Session, config: Config, secret: bytes, token: str, now: datetime) -> OpenedLink:
    """Whether ``token`` opens a client's requests now, and whose."""
    link = read_link(token, secret) if secret else None
    if link is None:
        return OpenedLink(LinkState.INVALID)
    client = next((c for c in config.clients if c.name == link.client), None)
    if client is None or not client.may_receive(link.contact) or config.staff_by_email(link.contact):
        return OpenedLink(LinkState.INVALID)  # genuine once, but no longer one of the client's addresses
    state = link_state(link, now, revoked_since(session, link))
    return OpenedLink(state, link, client)


def _contact_key(contact: str) -> str:
    return f"web_revoked:contact:{contact.strip().lower()}"


def _client_key(client: str) -> str:
    return f"web_revoked:client:{client}"


def revoked_since(session: Session, link: ClientLink) -> datetime | None:
    rows = session.connection().execute(
        text("SELECT value FROM meta WHERE key IN (:contact, :client)"),
        {"contact": _contact_key(link.contact), "client": _client_key(link.client)}).scalars().all()
    times = [datetime.fromtimestamp(int(v), timezone.utc) for v in rows if v.isdigit()]
    return max(times) if times else None


def revoke(session: Session, now: datetime, contact: str | None = None, client: str | None = None) -> None:
    """Withdraw every link issued until ``now`` to ``contact`` or to anyone of ``client``
    (inside the caller's transaction); links in emails sent afterwards open as usual."""
    keys = ([_contact_key(contact)] if contact else []) + ([_client_key(client)] if client else [])
    # Whole seconds, as links carry them: a link issued later in this second still opens.
    value = str(int(now.timestamp()))
    for key in keys:
        session.connection().execute(
            text("INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO UPDATE SET value = :value"),
            {"key": key, "value": value})


def clients_named(config: Config, address: str) -> list[str]:
    """The clients ``address`` belongs to (for ``dispatchd web link`` and its messages)."""
    return [c.name for c in Directory(config.clients, config.staff).clients_of_sender(address)]
