"""Whom dispatchd believes: whether a reply's words count as those of the person it claims.

Anyone can write any From: header. Words that change what staff do (a new invoice address,
"send the files to …") count as the client's only with evidence that the sender really is
that address: a valid signed reply address issued to it for this task, a thread dispatchd
started with it (a Message-ID of ours, sent to that address, in In-Reply-To/References), or a
DKIM/SPF/DMARC pass recorded by the receiving server we trust. Without evidence the words are
kept, marked unverified; a stranger's words on a task number they guessed are not kept at all.
Pure: the flow gathers the evidence (``flows/replies.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from dispatchd.config import Client


class Party(str, Enum):
    """Who the sender is to the task, going by the address alone."""

    STAFF = "staff"
    CLIENT = "client"  # on the list of the task's client
    REQUESTER = "requester"  # the address that sent the request (a task without a client)
    STRANGER = "stranger"


@dataclass(frozen=True)
class Evidence:
    signed_reply_address: bool = False
    our_thread: bool = False  # a reply to mail dispatchd sent to this very address
    authenticated: bool = False  # DKIM/SPF/DMARC pass from the trusted authserv-id

    def reasons(self) -> tuple[str, ...]:
        return tuple(reason for present, reason in (
            (self.signed_reply_address, "signed reply address"),
            (self.our_thread, "reply in a thread we started with this address"),
            (self.authenticated, "DKIM/SPF/DMARC pass"),
        ) if present)


@dataclass(frozen=True)
class Verdict:
    party: Party
    verified: bool
    stored: bool  # whether the words are kept on the task at all
    reason: str


NO_EVIDENCE = ("no signed reply address, not in a thread we started with this address, "
               "no DKIM/SPF/DMARC pass")


def party_of(sender: str, *, is_staff: bool, task_client: str | None, sender_clients: tuple[str, ...],
             task_sender: str | None) -> Party:
    """The sender's relation to the task: staff, the task's client, its requester, or nobody."""
    if is_staff:
        return Party.STAFF
    if task_client and task_client in sender_clients:
        return Party.CLIENT
    if sender and task_sender and sender.lower() == task_sender.lower():
        return Party.REQUESTER
    return Party.STRANGER


def judge(party: Party, evidence: Evidence) -> Verdict:
    """Whether a reply's words are the sender's (``verified``) and whether they go on the task.

    A stranger is believed only where dispatchd itself wrote to that address about the task
    (a follower, someone a person added); a domain that authenticates proves who they are,
    not that the task is theirs. Everyone else's unproven words are kept, marked unverified.
    """
    proof = tuple(r for r in evidence.reasons() if party is not Party.STRANGER or r != "DKIM/SPF/DMARC pass")
    if proof:
        return Verdict(party, True, True, "; ".join(proof))
    if party is Party.STRANGER:
        return Verdict(party, False, False, f"sender is not on this task ({NO_EVIDENCE})")
    return Verdict(party, False, True, NO_EVIDENCE)


def digest_recipients(client: Client, recent_senders: Iterable[str]) -> tuple[str, ...]:
    """Who gets ``client``'s weekly digest: its ``digest_to`` when configured; otherwise its
    contacts and those who wrote recently that are on its list. Never someone who merely named
    the client, whatever a task says (a person may have moved an outsider's task to it)."""
    if client.digest_to:
        return tuple(sorted(set(client.digest_to)))
    recent = (a.lower() for a in recent_senders if a and client.owns_sender(a))
    return tuple(sorted({*client.contacts, *recent}))


def may_receive(address: str, task_client: Client | None, task_sender: str | None) -> bool:
    """Whether client-facing mail about a task may go to ``address``: one of the task's client's
    addresses, or, for a task without a client, the address that sent it."""
    if task_client is not None:
        return task_client.may_receive(address)
    return bool(address) and address.lower() == (task_sender or "").lower()


def is_clients_task(sender: str, client: Client, sender_is_staff: bool, routed_by_person: bool) -> bool:
    """Whether a task stored with ``client`` is one the client's own mail may list: sent from one
    of its addresses, filed by staff, or given to it by a person in triage. Tasks stored before
    claims stopped counting (an outsider's "[Acme] - …" made it Acme's) stay out."""
    return client.owns_sender(sender) or sender_is_staff or routed_by_person
