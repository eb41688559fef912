from email.message import EmailMessage
from pathlib import Path

import pytest

from dispatchd.config import Client, Staff
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.models import Priority
from dispatchd.mail.parse import parse_mail
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]
RULES = load_rulebook(PROJECT / "rules")
PEOPLE = Directory(
    clients=(Client("Acme", ("*@acme.test", "bob@gmail.test"), ("ACME Corp",)),
             Client("Globex", ("*@globex.test", "bob@gmail.test"))),
    staff=(Staff("Ana", "ana@agency.test", queues=("content",)),),
)


def read(subject: str, sender: str = "carl@acme.test", default_client: str | None = None):  # type: ignore[no-untyped-def]
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = sender, subject, "<x@y.test>"
    message.set_content("body")
    return read_request(parse_mail(message.as_bytes()), PEOPLE, RULES, "brand", default_client)


@pytest.mark.parametrize("subject, sender, client, type_, problem", [
    ("[Acme] - Content - x", "carl@acme.test", "Acme", "Content", None),
    ("[acme corp] - blog - x", "carl@acme.test", "Acme", "Content", None),
    ("[Acme Inc] - Dev - x", "carl@acme.test", "Acme", "Technical", None),  # typo in own name
    ("[Globex] - Dev - x", "carl@acme.test", None, "Technical", "may not file requests for Globex"),
    ("[Acme] - Content - x", "eve@evil.test", None, "Content", "claims to be Acme (sender not on Acme's list)"),
    ("[Acmee] - Content - x", "carl@acme.test", "Acme", "Content", None),  # typo in own name
    ("[Vandelay] - Design - x", "carl@acme.test", "Acme", "Design", "'Vandelay' is not a client we know"),
    ("[Globex] - Content - x", "bob@gmail.test", "Globex", "Content", None),  # sender of two clients
    ("[Initech] - Content - x", "bob@gmail.test", None, "Content", "files for Acme, Globex"),
    ("[Acme] - Poetry - x", "carl@acme.test", "Acme", None, "'Poetry' is not a request type"),
    ("[Globex] - Content - x", "ana@agency.test", "Globex", "Content", None),  # staff files for a client
    ("[Nobody] - Content - x", "ana@agency.test", None, "Content", "is not a client we know"),
    ("hello", "carl@acme.test", "Acme", None, "subject:"),
    ("hello", "eve@evil.test", None, None, "not a known client address"),
])
def test_read_request(subject: str, sender: str, client: str | None, type_: str | None, problem: str | None) -> None:
    request = read(subject, sender)
    assert (request.client, request.type) == (client, type_)
    if problem is None:
        assert not request.problems
    else:
        assert any(problem in p for p in request.problems), request.problems


@pytest.mark.parametrize("subject, sender, claimed", [
    ("[Acme] - Content - x", "eve@evil.test", "Acme"),  # an outsider's claim is kept, not believed
    ("[Vandelay] - Design - x", "carl@acme.test", "Vandelay"),  # a client that does not exist
    ("[Globex] - Dev - x", "carl@acme.test", "Globex"),  # someone else's client
    ("[Initech] - Content - x", "bob@gmail.test", "Initech"),
    ("[Acme] - Content - x", "carl@acme.test", None),  # believed: nothing to claim
    ("[Acme Inc] - Dev - x", "carl@acme.test", None),  # a typo of one's own name is not a claim
    ("[Globex] - Content - x", "ana@agency.test", None),  # staff file for a client
    ("hello", "eve@evil.test", None),
])
def test_a_claim_is_not_an_identity(subject: str, sender: str, claimed: str | None) -> None:
    request = read(subject, sender)
    assert request.claimed_client == claimed
    if claimed:
        assert request.needs_triage and request.client != claimed


def test_priority_and_tags_survive() -> None:
    request = read("[Acme] - Content - Landing page [ABC-9] [P1]")
    assert request.priority is Priority.P1 and request.tags == ("[ABC-9]",)
    assert request.description == "Landing page [ABC-9]"


@pytest.mark.parametrize("subject, sender, client, type_, problem", [
    ("Content - Blog post", "carl@globex.test", "Globex", "Content", None),
    ("Re: Design - New banner [P1]", "carl@globex.test", "Globex", "Design", None),
    ("[Globex] - Content - x", "carl@globex.test", "Globex", "Content", None),
    ("[Acme] - Content - x", "bob@gmail.test", "Acme", "Content", None),  # a client named keeps its name
    ("Content - Blog post", "eve@evil.test", None, "Content", "claims to be Globex"),
    ("Content - Blog post", "carl@acme.test", None, "Content", "may not file requests for Globex"),
    ("hello", "carl@globex.test", "Globex", None, "subject:"),
])
def test_a_mailbox_default_client_stands_in_for_the_client_part(subject: str, sender: str, client: str | None,
                                                                type_: str | None, problem: str | None) -> None:
    request = read(subject, sender, default_client="Globex")
    assert (request.client, request.type, request.mailbox) == (client, type_, "brand")
    assert any(problem in p for p in request.problems) if problem else not request.problems
