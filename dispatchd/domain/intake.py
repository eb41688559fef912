"""Reading an inbound mail as a request: who is the client, which type, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass

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
    client_name = type_name = None
    if isinstance(parsed, SubjectError):
        problems.append(f"subject: {parsed.reason}")
        description = mail.subject.strip() or "(no subject)"
        priority, tags = None, ()
    else:
        description, priority, tags = parsed.description, parsed.priority, parsed.tags
        client_name = _resolve_client(parsed, mail.sender, from_staff, directory, problems)
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
    )


def _resolve_client(parsed: ParsedSubject, sender: str, from_staff: bool, directory: Directory,
                    problems: list[str]) -> str | None:
    named = directory.client_named(parsed.client_label)
    if from_staff:
        if named is None:
            problems.append(f"client: {parsed.client_label!r} is not a client we know")
        return named.name if named else None
    owners = directory.clients_of_sender(sender)
    if not owners:
        problems.append(f"sender: {sender or 'no sender'} is not a known client address")
        return named.name if named else None
    if named in owners:
        return named.name
    if named is not None:
        problems.append(f"client: {sender} may not file requests for {named.name}")
        return None
    if len(owners) == 1:
        # A typo in one's own company name should not bounce a legitimate request.
        return owners[0].name
    problems.append(f"client: {parsed.client_label!r} is not one of {', '.join(c.name for c in owners)}")
    return None
