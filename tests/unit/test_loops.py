from pathlib import Path

import pytest

from dispatchd.domain.loops import automation_reason
from dispatchd.mail.parse import parse_mail

DATA = Path(__file__).resolve().parents[1] / "data"
OURS = frozenset({"requests@agency.test"})


def reason(raw: bytes) -> str | None:
    return automation_reason(parse_mail(raw), OURS, "agency.test")


def mail(*headers: str, sender: str = "bob@acme.test", subject: str = "[Acme] - Content - x") -> bytes:
    lines = [f"From: {sender}", f"Subject: {subject}", "Message-ID: <m@acme.test>", *headers]
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


@pytest.mark.parametrize("raw, expected", [
    (mail(), None),
    (mail("Auto-Submitted: no"), None),
    (mail("Auto-Submitted: auto-replied"), "Auto-Submitted: auto-replied"),
    (mail("Auto-Submitted: auto-generated"), "Auto-Submitted: auto-generated"),
    (mail("X-Autoreply: yes"), "x-autoreply header"),
    (mail("X-Autorespond: yes"), "x-autorespond header"),
    (mail("Precedence: bulk"), "Precedence: bulk"),
    (mail("Precedence: junk"), "Precedence: junk"),
    (mail("Precedence: list"), "Precedence: list"),
    (mail("List-Id: <x.acme.test>"), "mailing list"),
    (mail("List-Unsubscribe: <mailto:u@acme.test>"), "mailing list"),
    (mail("Return-Path: <>"), "empty Return-Path"),
    (mail(sender="MAILER-DAEMON@mx.acme.test"), "robot sender"),
    (mail(sender="postmaster@acme.test"), "robot sender"),
    (mail(sender="noreply@acme.test"), "robot sender"),
    (mail(sender="requests@agency.test"), "our own address"),
    (mail(subject="Out of Office: back Monday"), "out-of-office"),
    (mail(subject="Automatic reply: [#1] Received"), "out-of-office"),
    (mail(subject="Abwesenheitsnotiz: Urlaub"), "out-of-office"),
])
def test_machines_are_recognised(raw: bytes, expected: str | None) -> None:
    found = reason(raw)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


@pytest.mark.parametrize("name, expected", [("bounce.eml", "Return-Path"), ("list.eml", "Precedence"),
                                            ("auto-reply.eml", "Auto-Submitted"), ("plain.eml", None)])
def test_corpus(name: str, expected: str | None) -> None:
    found = reason((DATA / name).read_bytes())
    assert (found is None) if expected is None else (found is not None and expected in found)


def test_our_own_message_id_is_recognised() -> None:
    raw = mail().replace(b"<m@acme.test>", b"<dispatchd.4.abcdef@agency.test>")
    assert reason(raw) == "our own outgoing message"
