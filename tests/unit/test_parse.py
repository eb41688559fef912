from pathlib import Path

import pytest

from dispatchd.mail.parse import parse_mail

DATA = Path(__file__).resolve().parents[1] / "data"


def load(name: str):  # type: ignore[no-untyped-def]
    return parse_mail((DATA / name).read_bytes())


def test_plain_request() -> None:
    mail = load("plain.eml")
    assert (mail.sender, mail.sender_name) == ("bob@acme.test", "Bob Stone")
    assert mail.subject == "[Acme] - Content - Blog post on topic clusters"
    assert mail.message_id == "<plain-1@acme.test>"
    assert mail.recipients == ("requests@agency.test",)
    assert mail.date is not None and mail.date.utcoffset() is not None
    assert "1,200 words" in mail.text and not mail.parse_problems


def test_encoded_words_and_quoted_printable() -> None:
    mail = load("encoded-subject.eml")
    assert mail.subject == "[Globex] – Design – Neues Logo für München"
    assert mail.sender_name == "Jürgen Müller"
    assert "Grüße aus München" in mail.text


def test_html_only_becomes_text_without_scripts() -> None:
    mail = load("html-only.eml")
    assert mail.html_only
    assert "We need a spring banner." in mail.text
    assert "- 1200x628" in mail.text
    assert "alert" not in mail.text and "color:red" not in mail.text


def test_attachment_is_decoded() -> None:
    mail = load("attachment.eml")
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("brief.pdf", "application/pdf")]
    assert mail.attachments[0].payload.startswith(b"%PDF-1.4")
    assert mail.text == "Brief attached."


def test_missing_message_id_is_derived_from_content() -> None:
    mail = load("no-message-id.eml")
    again = load("no-message-id.eml")
    assert mail.message_id == again.message_id and mail.message_id.startswith("<sha256.")
    assert any("no Message-ID" in p for p in mail.parse_problems)
    assert any("Date" in p for p in mail.parse_problems) and mail.date is None


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.eml")))
def test_never_raises(name: str) -> None:
    mail = parse_mail((DATA / name).read_bytes())
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert "\n" not in mail.sender_name and "\r" not in mail.sender_name


def test_header_injection_is_flattened() -> None:
    mail = load("injection.eml")
    assert mail.subject == "[Acme] - Content - hi Bcc: victim@x.test"
    assert mail.sender == "bob@acme.test"


def test_lying_charset_and_8bit_headers() -> None:
    assert "caf" in load("lying-charset.eml").text
    eight = load("eight-bit-header.eml")
    assert eight.sender == "bjorn@acme.test" and eight.subject.startswith("[Acme] - Content - Gr")


def test_empty_message() -> None:
    mail = load("empty.eml")
    assert mail.sender == "" and mail.subject == "" and mail.parse_problems


@pytest.mark.parametrize("raw", [b"\x00" * 100, b"From: \r\n\r\n", b"Subject: =?bogus?Q?x?=\r\n\r\n",
                                 b"Content-Type: multipart/mixed\r\n\r\n--\r\n", b"\xff\xfe" * 1000])
def test_garbage_does_not_crash(raw: bytes) -> None:
    parse_mail(raw)
