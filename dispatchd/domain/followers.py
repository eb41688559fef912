"""Who may follow a task: people of the task's own client, and nobody else.

A follower receives the task's status emails (with the task's description, dates and whatever
staff write to the client), so the one question is "could this leak a client's data to someone
else?". An address may follow only when it belongs to the task's client by the rule that says
who may receive the client's mail (``Client.may_receive``: its senders, contacts and digest
addresses); staff, our own addresses and everyone else are refused, whoever asks. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from dispatchd.domain.intake import Directory

MAX_FOLLOWERS = 20  # a request cc'd to a whole company is not 200 status emails per change
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def follow_refusal(address: str, client: str | None, directory: Directory, ours: Collection[str]) -> str | None:
    """None if ``address`` may follow a task of ``client``; otherwise why not (safe to tell the asker)."""
    if not _ADDRESS.match(address):
        return f"{address!r} is not an email address"
    if _plain(address) in ours:
        return f"{address} is our own address"
    if directory.is_staff(address):
        return f"{address} is on our team and sees the task anyway"
    if client is None:
        return "this request has no confirmed client yet, so it can have no followers"
    owner = next((c for c in directory.clients if c.name == client), None)
    if owner is None or not owner.may_receive(address):
        return f"{address} is not one of {client}'s addresses"
    return None


def followers_from_recipients(recipients: Iterable[str], sender: str, client: str | None, directory: Directory,
                              ours: Collection[str]) -> list[str]:
    """The colleagues cc'd (or addressed) on a request who may follow it: everyone but the sender,
    our own addresses and anyone who is not the client's; at most MAX_FOLLOWERS."""
    found: list[str] = []
    for address in dict.fromkeys(a.strip().lower() for a in recipients):
        if address == sender.lower() or follow_refusal(address, client, directory, ours) is not None:
            continue
        found.append(address)
    return found[:MAX_FOLLOWERS]


def _plain(address: str) -> str:
    """'requests+t42.abc@agency.test' -> 'requests@agency.test' (our signed addresses are ours too)."""
    local, _, domain = address.lower().partition("@")
    return f"{local.partition('+')[0]}@{domain}"
