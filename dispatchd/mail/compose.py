"""OutboundMail -> bytes on the wire: Message-ID, threading and RFC 3834 headers.

Header values are flattened to one line before they are set, so text that came from a
client (a subject, a name) can never inject a header.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr


# RFC 5322 allows 998; folding long subjects at 78 made some start with a stray space.
_POLICY = SMTP.clone(max_line_length=998)


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


def one_line(value: str) -> str:
    return " ".join("".join(ch if ch.isprintable() else " " for ch in value).split())


def new_message_id(from_address: str, task_id: int | None) -> str:
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "dispatchd.invalid"
    return f"<dispatchd.{task_id or 0}.{secrets.token_hex(10)}@{domain}>"


def compose(mail: OutboundMail, from_address: str, reply_to: str, message_id: str,
            now: datetime) -> bytes:
    """Build the full message; the bytes are stored in the outbox and sent unchanged."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = one_line(from_address)
    message["To"] = ", ".join(one_line(a) for a in mail.to)
    message["Subject"] = one_line(mail.subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Reply-To"] = one_line(reply_to)
    if mail.in_reply_to:
        message["In-Reply-To"] = one_line(mail.in_reply_to)
    references = [one_line(r) for r in mail.references][-20:]
    if references:
        message["References"] = " ".join(references)
    message["Auto-Submitted"] = mail.auto_submitted
    # Ask Exchange and friends not to answer us with out-of-office mail.
    message["X-Auto-Response-Suppress"] = "All"
    if mail.task_id is not None:
        message["X-Dispatchd-Task"] = str(mail.task_id)
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message.as_bytes()
