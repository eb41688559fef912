"""OutboundMail -> bytes on the wire: Message-ID, threading and RFC 3834 headers.

Header values are flattened to one line before they are set, so text that came from a
client (a subject, a name) can never inject a header.
"""

from __future__ import annotations

import base64
import re
import secrets
from binascii import b2a_qp
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from urllib.parse import quote

from dispatchd.domain.models import MailAttachment


@dataclass(frozen=True)
class OutboundMail:
    kind: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    task_id: int | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    auto_submitted: str = "auto-generated"
    reply_to: str | None = None
    attachments: tuple[MailAttachment, ...] = ()  # files staff send the client (reply:, deliver)
    # An iTIP message (RFC 6047): a call's invitation (REQUEST) or cancellation (CANCEL). Sent as
    # a text/calendar alternative, which Gmail, Outlook and Apple Mail answer with Accept/Decline,
    # and as an invite.ics file for the rest.
    calendar: bytes | None = None
    calendar_method: str = ""


def one_line(value: str) -> str:
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else " " for ch in value)
    return " ".join(value.split())


@lru_cache(maxsize=64)
def bare_address(value: str) -> str:
    """'Agency <requests@agency.test>' -> 'requests@agency.test' (our own addresses, asked often)."""
    return parseaddr(value)[1]


def new_message_id(from_address: str, task_id: int | None) -> str:
    domain = bare_address(from_address).rpartition("@")[2] or "dispatchd.invalid"
    return f"<dispatchd.{task_id or 0}.{secrets.token_hex(10)}@{domain}>"


def compose(mail: OutboundMail, from_address: str, reply_to: str, message_id: str,
            now: datetime) -> bytes:
    """Build the full message; the bytes are stored in the outbox and sent unchanged.

    Written out directly: a text part, or text and HTML alternatives, in quoted-printable
    UTF-8. Every header value is flattened and encoded here, so there is nothing left for a
    MIME library to decide, and building its objects was a fifth of the cost of a request.
    """
    fields = [("From", _address(from_address)), ("To", ", ".join(_address(a) for a in mail.to)),
              ("Subject", _encoded_subject(one_line(mail.subject))), ("Date", format_datetime(now)),
              ("Message-ID", message_id), ("Reply-To", _address(reply_to))]
    if mail.in_reply_to and mail.in_reply_to.isascii():
        fields.append(("In-Reply-To", one_line(mail.in_reply_to)))
    references = [one_line(r) for r in mail.references if r.isascii()][-20:]
    if references:
        fields.append(("References", " ".join(references)))
    fields.append(("Auto-Submitted", mail.auto_submitted))
    # Ask Exchange and friends not to answer us with out-of-office mail.
    fields.append(("X-Auto-Response-Suppress", "All"))
    if mail.task_id is not None:
        fields.append(("X-Dispatchd-Task", str(mail.task_id)))
    fields.append(("MIME-Version", "1.0"))
    if mail.calendar is not None:
        return _invitation(fields, mail)
    if not mail.attachments:
        return _header(fields) + _content(mail)
    mixed = f"=_dispatchd_{secrets.token_hex(12)}"
    fields.append(("Content-Type", f'multipart/mixed; boundary="{mixed}"'))
    parts = [_content(mail), *(_attachment_part(a) for a in mail.attachments)]
    return b"".join((_header(fields), b"\r\n", *(f"--{mixed}\r\n".encode() + p + b"\r\n" for p in parts),
                     f"--{mixed}--\r\n".encode()))


def _content(mail: OutboundMail) -> bytes:
    """The readable part, from its content headers on: text, or text and HTML alternatives."""
    if not mail.html:
        return _text_part(mail.text, "plain")
    # "=_" never occurs in quoted-printable text, so the boundary cannot collide with a body.
    boundary = f"=_dispatchd_{secrets.token_hex(12)}"
    separator = f"\r\n--{boundary}\r\n".encode()
    return b"".join((f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n--'.encode(),
                     separator[4:], _text_part(mail.text, "plain"), separator, _text_part(mail.html, "html"),
                     f"\r\n--{boundary}--\r\n".encode()))


def _invitation(fields: list[tuple[str, str]], mail: OutboundMail) -> bytes:
    """multipart/mixed: (text | text/calendar; method=…) alternatives, then the same as invite.ics."""
    assert mail.calendar is not None
    method = mail.calendar_method if mail.calendar_method.isalpha() else "REQUEST"
    mixed, alternative = f"=_dispatchd_{secrets.token_hex(12)}", f"=_dispatchd_{secrets.token_hex(12)}"
    fields.append(("Content-Type", f'multipart/mixed; boundary="{mixed}"'))
    ics = b2a_base64_lines(mail.calendar)
    inline = (f'Content-Type: text/calendar; charset="utf-8"; method={method}\r\n'
              "Content-Transfer-Encoding: base64\r\n\r\n").encode() + ics
    readable = [_text_part(mail.text, "plain")] + ([_text_part(mail.html, "html")] if mail.html else [])
    both = b"".join((f'Content-Type: multipart/alternative; boundary="{alternative}"\r\n\r\n'.encode(),
                     *(f"--{alternative}\r\n".encode() + p + b"\r\n" for p in (*readable, inline)),
                     f"--{alternative}--\r\n".encode()))
    attached = ('Content-Type: application/ics; name="invite.ics"\r\n'
                'Content-Disposition: attachment; filename="invite.ics"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n").encode() + ics
    return b"".join((_header(fields), b"\r\n", *(f"--{mixed}\r\n".encode() + p + b"\r\n" for p in (both, attached)),
                     f"--{mixed}--\r\n".encode()))


_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")


def _attachment_part(attachment: MailAttachment) -> bytes:
    """One file, base64 in lines of 76. Its name is a client's or a colleague's text: only the last
    path segment, flattened, in RFC 2231 form when it is not plain ASCII."""
    name = one_line(attachment.filename.replace("\\", "/").rpartition("/")[2]).replace('"', "'") or "attachment"
    content_type = attachment.content_type if _CONTENT_TYPE.match(attachment.content_type or "") \
        else "application/octet-stream"
    if name.isascii():
        disposition = f'attachment; filename="{name}"'
    else:
        disposition = f"attachment; filename*=utf-8''{quote(name, safe='')}"
    body = b2a_base64_lines(attachment.payload)
    return (f"Content-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + body


def b2a_base64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))


def _header(fields: list[tuple[str, str]]) -> bytes:
    """Values are ASCII by now; one longer than a line may be (RFC 5322: 998) is folded."""
    lines = []
    for name, value in fields:
        if len(name) + len(value) + 2 > 998 and "\n" not in value:
            value = Header(value, maxlinelen=998, header_name=name).encode(linesep="\r\n")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("ascii")


def _text_part(text: str, subtype: str) -> bytes:
    """Content headers, a blank line and the body in quoted-printable UTF-8 with CRLF lines."""
    body = b2a_qp(text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8"), istext=True)
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
            "\r\n\r\n").encode() + body.replace(b"\n", b"\r\n")


_BARE_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _encoded_subject(value: str) -> str:
    """RFC 2047 encoded words (at most 75 characters each, folded) for a subject that is not ASCII."""
    return value if value.isascii() else Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")


@lru_cache(maxsize=4096)
def _address(value: str) -> str:
    if _BARE_ADDRESS.fullmatch(value):  # most are (signed Reply-Tos never repeat): skip the parser
        return value
    name, address = parseaddr(one_line(value))
    return formataddr((one_line(name), address), charset="utf-8") if name else address
