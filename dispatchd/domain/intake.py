"""Reading an inbound mail as a request: who is the client, which type, what is wrong.

A claim is not an identity: the client a subject names becomes the request's client only when
the sender is on that client's list (or is staff). Whatever the subject names is kept as
``claimed_client`` so the person who triages can see it ("claims to be Acme").
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from dispatchd.config import Client, Staff
from dispatchd.domain.models import InboundMail, ParsedSubject, Request, SubjectError
from dispatchd.domain.routing import Rulebook, normalise_label
from dispatchd.domain.subject import parse_subject, strip_prefixes


@dataclass(frozen=True)
class Directory:
    """The people dispatchd knows, from config.toml."""

    clients: tuple[Client, ...]
    staff: tuple[Staff, ...]

    def client_named(self, label: str) -> Client | None:
        wanted = normalise_label(label)
        return next((c for c in self.clients
                     if wanted in {normalise_label(n) for n in (c.name, *c.aliases)}), None)

    def clients_of_sender(self, address: str) -> list[Client]:
        return [c for c in self.clients if c.owns_sender(address)]

    def is_staff(self, address: str) -> bool:
        return any(s.email == address.lower() for s in self.staff)


def read_request(mail: InboundMail, directory: Directory, rulebook: Rulebook, mailbox: str = "",
                 default_client: str | None = None) -> Request:
    """Turn ``mail`` into a Request; anything that stops routing is listed in ``problems``.

    A mailbox with a ``default_client`` also takes "Type - Description": the client is the
    one the address belongs to (the sender must still be one of its addresses).
    """
    parsed = parse_subject(mail.subject)
    if default_client and (isinstance(parsed, SubjectError) or directory.client_named(parsed.client_label) is None):
        implied = parse_subject(f"[{default_client}] - {strip_prefixes(mail.subject or '')}")
        parsed = implied if isinstance(implied, ParsedSubject) else parsed
    from_staff = directory.is_staff(mail.sender)
    problems: list[str] = []
    client_name = type_name = claimed = None
    if isinstance(parsed, SubjectError):
        problems.append(f"subject: {parsed.reason}")
        description = mail.subject.strip() or "(no subject)"
        priority, tags = None, ()
    else:
        description, priority, tags = parsed.description, parsed.priority, parsed.tags
        named = directory.client_named(parsed.client_label)
        claimed = named.name if named else parsed.client_label.strip()
        client_name = _resolve_client(parsed, named, mail.sender, from_staff, directory, problems)
        request_type = rulebook.find_type(parsed.type_label)
        if request_type is None:
            known = ", ".join(t.name for t in rulebook.types)
            problems.append(f"type: {parsed.type_label!r} is not a request type we know ({known})")
        else:
            type_name = request_type.name
    if isinstance(parsed, SubjectError) and not from_staff:
        owners = directory.clients_of_sender(mail.sender)
        if not owners:
            problems.append(f"sender: {mail.sender or 'no sender'} is not a known client address")
        elif len(owners) == 1:
            client_name = owners[0].name  # helps whoever triages it
    return Request(
        sender=mail.sender, client=client_name, type=type_name, priority=priority,
        description=description, body=mail.text, subject=mail.subject, tags=tags,
        attachment_names=tuple(a.filename for a in mail.attachments),
        problems=tuple(problems), from_staff=from_staff, mailbox=mailbox,
        claimed_client=_claim(claimed, client_name, problems),
    )


def _claim(claimed: str | None, client: str | None, problems: list[str]) -> str | None:
    """What the subject named, worth keeping when it did not make the client (a typo of one's own
    name that did is not a claim)."""
    if client is not None and not any(p.startswith(("client:", "sender:")) for p in problems):
        return None
    return claimed or None


def _resolve_client(parsed: ParsedSubject, named: Client | None, sender: str, from_staff: bool,
                    directory: Directory, problems: list[str]) -> str | None:
    """The client a request belongs to (``named``: the one the subject names, if we know it):
    never one the sender merely names (see the module)."""
    if from_staff:
        if named is None:
            problems.append(f"client: {parsed.client_label!r} is not a client we know")
        return named.name if named else None
    owners = directory.clients_of_sender(sender)
    if not owners:
        claim = named.name if named else parsed.client_label.strip()
        problems.append(f"sender: {sender or 'no sender'} is not a known client address"
                        + (f"; claims to be {claim} (sender not on {claim}'s list)" if claim else ""))
        return None
    if named in owners:
        return named.name
    if named is not None:
        problems.append(f"client: {sender} may not file requests for {named.name}")
        return None
    typo_of = [c for c in owners if _looks_like_name_of(parsed.client_label, c)]
    if len(typo_of) == 1:
        # A typo in one's own company name should not bounce a legitimate request.
        return typo_of[0].name
    known = ", ".join(c.name for c in owners)
    problems.append(f"client: {parsed.client_label!r} is not a client we know ({sender} files for {known})")
    # The sender is on this client's list: whoever triages may as well see which client it is.
    return owners[0].name if len(owners) == 1 else None


def _looks_like_name_of(label: str, client: Client) -> bool:
    """'Acme Inc' or 'Acmee' for Acme; 'Vandelay' is another company, not a typo."""
    wanted = normalise_label(label)
    for name in (normalise_label(n) for n in (client.name, *client.aliases)):
        if name and (wanted.startswith(name) or name.startswith(wanted) and len(wanted) >= 3
                     or SequenceMatcher(None, wanted, name).ratio() >= 0.8):
            return True
    return False
