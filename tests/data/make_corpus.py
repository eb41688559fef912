"""Writes tests/data/corpus/*.eml: crafted hostile and odd emails. Run again after editing:
    python tests/data/make_corpus.py
Each file name says what it tries; test_corpus.py feeds every one through dispatchd."""

from __future__ import annotations

import base64
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus"
H = "From: Bob Stone <bob@acme.test>\r\nTo: requests@agency.test\r\n"


def msg(headers: str, body: str | bytes = "Please.\r\n", subject: str | None = "[Acme] - Content - Corpus",
        message_id: str | None = "auto") -> bytes:
    lines = headers
    if subject is not None:
        lines += f"Subject: {subject}\r\n"
    if message_id == "auto":
        lines += "Message-ID: <{name}@corpus.test>\r\n"
    elif message_id:
        lines += f"Message-ID: {message_id}\r\n"
    data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogateescape")
    return lines.encode("utf-8", "surrogateescape") + b"\r\n" + data


def multipart(boundary: str, parts: list[tuple[str, bytes]], kind: str = "mixed", closing: bool = True) -> bytes:
    body = b""
    for head, content in parts:
        body += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    if closing:
        body += f"--{boundary}--\r\n".encode()
    return (f"MIME-Version: 1.0\r\nContent-Type: multipart/{kind}; boundary=\"{boundary}\"\r\n").encode(), body  # type: ignore[return-value]


def mp(kind: str, boundary: str, parts: list[tuple[str, bytes]], closing: bool = True, subject: str = "[Acme] - Content - MIME") -> bytes:
    head, body = multipart(boundary, parts, kind, closing)  # type: ignore[misc]
    return msg(H + head.decode(), body, subject=subject)


CASES: dict[str, bytes] = {}

# Broken MIME
CASES["mime-unclosed-boundary"] = mp("mixed", "b1", [("Content-Type: text/plain", b"text")], closing=False)
CASES["mime-wrong-boundary"] = msg(H + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="right"\r\n',
                                   "--wrong\r\nContent-Type: text/plain\r\n\r\nbody\r\n--wrong--\r\n")
CASES["mime-no-boundary-param"] = msg(H + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n", "--x\r\n\r\nbody\r\n")
CASES["mime-empty-multipart"] = msg(H + 'Content-Type: multipart/mixed; boundary="e"\r\n', "--e--\r\n")
CASES["mime-garbage-content-type"] = msg(H + "Content-Type: ;;;===//\r\n", "body")
CASES["mime-boundary-in-body"] = mp("mixed", "same", [("Content-Type: text/plain", b"--same\r\nnot a part")])
CASES["mime-500-parts"] = mp("mixed", "many", [("Content-Type: text/plain", f"part {n}".encode()) for n in range(500)])
CASES["mime-deep-alternative"] = mp("alternative", "alt", [("Content-Type: text/plain", b"plain"),
                                                           ("Content-Type: text/html", b"<p>html</p>")])
# Missing and duplicate headers
CASES["headers-none"] = b"just a body, no headers at all\r\n"
CASES["headers-no-from"] = msg("To: requests@agency.test\r\n", "body")
CASES["headers-no-subject"] = msg(H, "body", subject=None)
CASES["headers-no-to"] = msg("From: bob@acme.test\r\n", "body")
CASES["headers-only-no-body"] = msg(H, b"")
CASES["headers-duplicate-subject"] = msg(H + "Subject: [Acme] - Content - First\r\n", "body", subject="[Acme] - Design - Second")
CASES["headers-duplicate-from"] = msg(H + "From: eve@evil.test\r\n", "body")
CASES["headers-duplicate-message-id"] = msg(H + "Message-ID: <dup-a@corpus.test>\r\n", "body", message_id="<dup-b@corpus.test>")
CASES["headers-no-message-id"] = msg(H, "body", message_id=None)
CASES["headers-empty-message-id"] = msg(H, "body", message_id="")
CASES["headers-message-id-no-brackets"] = msg(H, "body", message_id="naked@corpus.test")
CASES["headers-message-id-huge"] = msg(H, "body", message_id="<" + "x" * 2000 + "@corpus.test>")
# Dates
for n, date in enumerate(["not a date", "Thu, 31 Feb 2026 25:61:61 +9999", "0", "Mon, 1 Jan 10000 00:00:00 +0000",
                          "Sun, 06 Nov 1994 08:49:37 GMT", ""]):
    CASES[f"date-{n}"] = msg(H + f"Date: {date}\r\n", "body")
# Charsets
for n, charset in enumerate(["x-unknown", "utf-99", "", "us-ascii\"; evil=\"1", "../../etc/passwd"]):
    CASES[f"charset-unknown-{n}"] = msg(H + f"Content-Type: text/plain; charset={charset}\r\n", b"caf\xe9 \xff\xfe")
CASES["charset-lying-utf8"] = msg(H + "Content-Type: text/plain; charset=utf-8\r\n", b"latin1: caf\xe9 cr\xe8me")
CASES["charset-lying-ascii"] = msg(H + "Content-Type: text/plain; charset=us-ascii\r\n", "utf8: caf\u00e9 \u2603".encode())
CASES["charset-lying-iso2022"] = msg(H + "Content-Type: text/plain; charset=iso-2022-jp\r\n", b"\x1b$B\xff\xff garbage")
CASES["charset-utf16-no-bom"] = msg(H + "Content-Type: text/plain; charset=utf-16\r\n", "hello".encode("utf-16-le"))
CASES["charset-encoded-word-unknown"] = msg(H, "body", subject="=?x-unknown?Q?[Acme]_-_Content_-_x?=")
CASES["charset-encoded-word-broken-b64"] = msg(H, "body", subject="=?utf-8?B?!!!notbase64!!!?=")
# 8-bit headers
CASES["8bit-subject-latin1"] = msg("From: bob@acme.test\r\n", "b", subject="[Acme] - Content - Gr\udcfc\udcdfe")
CASES["8bit-subject-utf8"] = msg("From: bob@acme.test\r\n", "b", subject="[Acme] - Content - Grüße 😀")
CASES["8bit-from-name"] = msg("From: J\udce9r\udcf4me <jerome@acme.test>\r\n", "b")
CASES["8bit-filename"] = mp("mixed", "f", [("Content-Type: text/plain", b"see file"),
                                          ("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r\xc3\xa9sum\xc3\xa9.pdf\"".encode("latin-1").decode("latin-1"), b"%PDF")])
CASES["8bit-raw-everything"] = b"From: \xff\xfe@acme.test\r\nSubject: \xc3\x28\xa0\xa1\r\n\r\n\xff\xfe\xfd\r\n"
# Nested messages
inner = b"From: boss@acme.test\r\nSubject: inner\r\n\r\ninner body\r\n"
CASES["nested-rfc822"] = mp("mixed", "n1", [("Content-Type: text/plain", b"forwarded"), ("Content-Type: message/rfc822", inner)])
nested = inner
for depth in range(25):
    nested = (f"From: level{depth}@acme.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"d{depth}\"\r\n\r\n"
              f"--d{depth}\r\nContent-Type: message/rfc822\r\n\r\n").encode() + nested + f"\r\n--d{depth}--\r\n".encode()
CASES["nested-25-levels"] = msg(H + "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"top\"\r\n",
                                b"--top\r\nContent-Type: message/rfc822\r\n\r\n" + nested + b"\r\n--top--\r\n")
CASES["nested-rfc822-broken"] = mp("mixed", "n2", [("Content-Type: message/rfc822", b"not: really\r\na message")])
# TNEF and calendar
tnef = base64.b64encode(b"\x78\x9f\x3e\x22" + b"\x00" * 200).decode()
CASES["tnef-winmail"] = mp("mixed", "t", [("Content-Type: text/plain", b"see attached"),
                                         ("Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64", tnef.encode())])
CASES["tnef-only"] = msg(H + "Content-Type: application/ms-tnef\r\nContent-Transfer-Encoding: base64\r\n", tnef)
ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Kickoff\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
CASES["calendar-invite"] = mp("alternative", "c", [("Content-Type: text/plain", b"Kickoff call"),
                                                  ("Content-Type: text/calendar; method=REQUEST", ics)],
                              subject="Invitation: Kickoff @ Tue 1 Dec")
CASES["calendar-only"] = msg(H + "Content-Type: text/calendar; method=REQUEST\r\n", ics, subject="[Acme] - Strategy - Kickoff")
CASES["calendar-reply-accepted"] = msg(H + "Content-Type: text/calendar; method=REPLY\r\n", ics, subject="Accepted: Kickoff")
# Sizes
CASES["size-zero-bytes"] = b""
CASES["size-whitespace"] = b"   \r\n\r\n   \r\n"
CASES["size-big-body"] = msg(H, "word " * 120_000, subject="[Acme] - Content - Very long brief")
CASES["size-big-attachment"] = mp("mixed", "big", [("Content-Type: text/plain", b"video"),
                                                  ("Content-Type: video/mp4\r\nContent-Disposition: attachment; filename=\"v.mp4\"\r\nContent-Transfer-Encoding: base64",
                                                   base64.encodebytes(b"\x00" * 700_000))])
CASES["size-long-line-body"] = msg(H, "x" * 600_000)
# Recipients
CASES["recipients-5000"] = msg("From: bob@acme.test\r\nTo: " + ", ".join(f"user{n}@acme.test" for n in range(5000)) + "\r\n", "body")
CASES["recipients-5000-cc"] = msg(H + "Cc: " + ", ".join(f"\"Name {n}\" <cc{n}@x.test>" for n in range(5000)) + "\r\n", "body")
CASES["recipients-malformed"] = msg("From: bob@acme.test\r\nTo: <<<>>>, @, a@, @b, \"unterminated\r\n", "body")
# Subjects
CASES["subject-10k"] = msg(H, "b", subject="[Acme] - Content - " + "long words " * 1000)
CASES["subject-no-spaces"] = msg(H, "b", subject="[Acme]-Content-" + "x" * 5000)
CASES["subject-long-encoded"] = msg(H, "b", subject=" ".join(["=?utf-8?B?" + base64.b64encode("ü".encode() * 30).decode() + "?="] * 40))
CASES["subject-emoji"] = msg(H, "b", subject="[Acme] - Content - 🚀🔥 launch post 🎉")
CASES["subject-rtl"] = msg(H, "b", subject="[Acme] - Content - \u202emoc.live\u202c طلب")
CASES["subject-only-brackets"] = msg(H, "b", subject="[][][][][][]")
CASES["subject-control-chars"] = msg(H, "b", subject="[Acme] - Content - a\x01b\x07c\x1bd")
# NUL bytes
CASES["nul-in-body"] = msg(H, b"hello\x00world\x00")
CASES["nul-in-subject"] = msg(H, "b", subject="[Acme] - Content - a\x00b")
CASES["nul-in-from"] = msg("From: bob\x00@acme.test\r\n", "b")
# Header injection
CASES["inject-subject-crlf-encoded"] = msg(H, "b", subject="=?utf-8?Q?[Acme]_-_Content_-_x=0D=0ABcc:_victim@x.test?=")
CASES["inject-subject-lf-encoded"] = msg(H, "b", subject="=?utf-8?B?" + base64.b64encode(b"[Acme] - Content - y\nBcc: victim@x.test").decode() + "?=")
CASES["inject-name-crlf"] = msg('From: "Evil\r\n Bcc: victim@x.test" <bob@acme.test>\r\n', "b")
CASES["inject-name-encoded"] = msg("From: =?utf-8?Q?Evil=0D=0ABcc=3A_victim=40x.test?= <bob@acme.test>\r\n", "b")
CASES["inject-message-id"] = msg(H, "b", message_id="<a@b>\r\nBcc: victim@x.test")
CASES["inject-references"] = msg(H + "References: <a@b>\r\n\tBcc: victim@x.test\r\nIn-Reply-To: <x@y>\r\n X-Evil: 1\r\n", "b")
CASES["inject-description-template"] = msg(H, "b", subject="[Acme] - Content - {{ config }} {% raw %}x")
# HTML
CASES["html-script"] = msg(H + "Content-Type: text/html\r\n", "<script>alert(document.cookie)</script><p>Do the thing</p>")
CASES["html-onerror"] = msg(H + "Content-Type: text/html\r\n", "<img src=x onerror=alert(1)><b>bold</b>")
CASES["html-broken-markup"] = msg(H + "Content-Type: text/html\r\n", "<p><b><i>unclosed <table><tr><td>cell")
CASES["html-entities"] = msg(H + "Content-Type: text/html\r\n", "&lt;script&gt; &amp;&amp; &#0; &#xD800; &bogus;")
CASES["html-huge-nesting"] = msg(H + "Content-Type: text/html\r\n", "<div>" * 5000 + "deep" + "</div>" * 5000)
CASES["html-style-only"] = msg(H + "Content-Type: text/html\r\n", "<style>body{}</style>")
# Transfer encodings
CASES["b64-broken"] = msg(H + "Content-Transfer-Encoding: base64\r\n", "!!!!not base64 at all@@@@")
CASES["b64-truncated"] = msg(H + "Content-Transfer-Encoding: base64\r\n", "SGVsbG8gd29y")
CASES["qp-broken"] = msg(H + "Content-Transfer-Encoding: quoted-printable\r\n", "=ZZ=\r\n=3")
CASES["cte-unknown"] = msg(H + "Content-Transfer-Encoding: x-uuencode-9000\r\n", "begin 644 x")
CASES["attachment-b64-broken"] = mp("mixed", "ab", [("Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64", b"@@@@")])
# Filenames
for n, name in enumerate(["../../../etc/passwd", "..\\\\..\\\\windows\\\\system32", "/absolute/path.txt", "con.txt",
                          "a" * 500 + ".pdf", "\x00evil.exe", "", ".hidden", "name with\r\nnewline.txt"]):
    CASES[f"filename-{n}"] = mp("mixed", "fn", [("Content-Type: text/plain", b"attached"),
                                               (f"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"", b"data")])
# Line endings
CASES["lf-only"] = msg(H, "body").replace(b"\r\n", b"\n")
CASES["cr-only"] = msg(H, "body").replace(b"\r\n", b"\r")
CASES["mixed-endings"] = b"From: bob@acme.test\nSubject: [Acme] - Content - mixed\r\nMessage-ID: <mixed@corpus.test>\r\n\nbody\r\n"
CASES["header-folded-weirdly"] = msg("From: bob@acme.test\r\nSubject:\r\n [Acme]\r\n - Content\r\n\t- Folded\r\n", "b", subject=None)
CASES["header-line-100k"] = msg(H + "X-Long: " + "y" * 100_000 + "\r\n", "b")
# Robots that must not be answered
CASES["robot-auto-submitted"] = msg(H + "Auto-Submitted: auto-replied\r\n", "Out of office", subject="Automatic reply: x")
CASES["robot-precedence-bulk"] = msg(H + "Precedence: bulk\r\n", "news")
CASES["robot-list-id"] = msg(H + "List-Id: <list.acme.test>\r\n", "list mail")
CASES["robot-mailer-daemon"] = msg("From: MAILER-DAEMON@mx.acme.test\r\nTo: requests@agency.test\r\n", "failed", subject="Undelivered")
CASES["robot-empty-return-path"] = msg("Return-Path: <>\r\n" + H, "bounce")
CASES["robot-x-autoreply"] = msg(H + "X-Autoreply: yes\r\n", "away")
CASES["robot-read-receipt"] = msg(H + 'Content-Type: multipart/report; report-type=disposition-notification; boundary="r"\r\n',
                                  "--r\r\nContent-Type: text/plain\r\n\r\nread\r\n--r--\r\n", subject="Read: x")
# Addresses
for n, sender in enumerate(["not an address", "<>", "@acme.test", "bob@", "\"quoted\\\" name\" <bob@acme.test>",
                            "bob@acme.test (comment) <eve@evil.test>", "=?utf-8?B?PGV2ZUBldmlsLnRlc3Q+?= <bob@acme.test>"]):
    CASES[f"from-{n}"] = msg(f"From: {sender}\r\nTo: requests@agency.test\r\n", "b")
# Ordinary requests in odd styles (they must still work)
for n, subject in enumerate(["[Acme] - Content - plain", "RE: FW: [ACME] | design | banner", "Acme: Dev: checkout broken",
                             "[Acme] – Strategy — call [P1]", "[Acme] - Technical - site down!!!", "hello, can you help?",
                             "[Acme] - Revision - tweak [ABC-77]", "[Acme]-[Content]-tight", "[acme corp] - copy - about page",
                             "Fwd: [Acme] - Urgent - everything is on fire"]):
    CASES[f"request-{n}"] = msg(H, "Please see subject.", subject=subject)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.eml"):
        old.unlink()
    for name, data in CASES.items():
        (OUT / f"{name}.eml").write_bytes(data.replace(b"{name}", name.encode()))
    print(f"{len(CASES)} emails in {OUT}")


if __name__ == "__main__":
    main()
