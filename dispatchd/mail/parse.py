"""bytes -> InboundMail. The only importer of mail-parser.

Never raises on bad input: whatever cannot be read is recorded in ``parse_problems`` and a
best-effort value is returned, so the message can still be routed to triage and answered.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import mailparser

from dispatchd.domain.models import DeliveryReport, InboundMail, MailAttachment
from dispatchd.mail.htmltext import html_to_text

_MSGID = re.compile(r"<[^<>\s]+>")
# What we can answer over plain SMTP: an ASCII local part and a hostname.
_USABLE_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_mail(raw: bytes) -> InboundMail:
    """Parse one RFC 5322 message."""
    problems: list[str] = []
    try:
        parsed = mailparser.parse_from_bytes(raw)
        message: Message = parsed.message
        text = "\n".join(parsed.text_plain).strip()
        html = "\n".join(parsed.text_html)
        attachments = tuple(_attachments(parsed.attachments, problems))
        problems.extend(f"MIME defect: {d}" for d in parsed.defects_categories)
    except Exception as exc:  # mail-parser has many failure modes on hostile MIME
        problems.append(f"mail-parser failed ({type(exc).__name__}: {exc}); read with the stdlib")
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        text, html, attachments = _stdlib_bodies(message, problems)
    html_only = not text and bool(html.strip())
    if html_only:
        text = html_to_text(html)
    headers = _headers(message)
    sender_name, sender = _sender(message, problems)
    message_id = _message_id(message.get("Message-ID"), raw, problems)
    return InboundMail(
        message_id=message_id,
        sender=sender,
        sender_name=sender_name,
        recipients=tuple(_addresses(message, ("to", "cc", "delivered-to", "x-original-to"))),
        subject=_header_text(message.get("Subject")),
        date=_date(message.get("Date"), problems),
        text=_CONTROL.sub("", text.replace("\r\n", "\n")),
        in_reply_to=_first_id(message.get("In-Reply-To")),
        references=tuple(_MSGID.findall(_header_text(message.get("References")))),
        headers=headers,
        attachments=attachments,
        parse_problems=tuple(problems),
        html_only=html_only,
        delivery_reports=_delivery_reports(message),
        bounced_message_id=_bounced_message_id(message),
    )


def _delivery_reports(message: Message) -> tuple[DeliveryReport, ...]:
    """Per-recipient blocks of a message/delivery-status part (RFC 3464), if any."""
    reports = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks:
            if not hasattr(block, "get") or not block.get("Status"):
                continue
            recipient = _header_text(block.get("Final-Recipient") or block.get("Original-Recipient"))
            reports.append(DeliveryReport(
                recipient=recipient.rpartition(";")[2].strip().strip("<>").lower(),
                action=_header_text(block.get("Action")).lower(),
                status=_header_text(block.get("Status")).split()[0] if _header_text(block.get("Status")) else "",
                diagnostic=_header_text(block.get("Diagnostic-Code"))[:500]))
    return tuple(reports)


def _bounced_message_id(message: Message) -> str | None:
    """The Message-ID of the returned original (message/rfc822 or text/rfc822-headers part)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner:
                return _first_id(inner[0].get("Message-ID"))
        elif kind == "text/rfc822-headers":
            try:
                text = part.get_payload(decode=True) or b""
            except Exception:
                continue
            headers = email.message_from_bytes(bytes(text), policy=email.policy.compat32)
            return _first_id(headers.get("Message-ID"))
    return None


def _header_text(value: object) -> str:
    """Decoded, single-line header text: CR, LF and controls can never reach our own headers."""
    if value is None:
        return ""
    text = str(value)
    if "=?" in text:  # only RFC 2047 encoded-words need decoding
        try:
            text = str(make_header(decode_header(text)))
        except Exception:  # undecodable encoded-words or unknown charsets: keep the raw text
            pass
    return " ".join(_CONTROL.sub("", text.replace("\r", " ").replace("\n", " ")).split())


def _headers(message: Message) -> dict[str, tuple[str, ...]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(_header_text(value))
    return {name: tuple(values) for name, values in headers.items()}


def _sender(message: Message, problems: list[str]) -> tuple[str, str]:
    # Unfold, then parse the address before decoding: neither a folded quoted name nor an
    # encoded-word may smuggle in a different address.
    name, address = parseaddr(_unfold(message.get("From")))
    if not address or "@" not in address:
        name, address = parseaddr(_unfold(message.get("Sender") or message.get("Reply-To")))
    address = _CONTROL.sub("", address).strip().lower()
    if not _USABLE_ADDRESS.match(address):
        problems.append(f"no usable From address ({address[:80]!r})" if address else "no usable From address")
        return _header_text(name), ""
    return _header_text(name), address


def _unfold(value: object) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", str(value or ""))


def _addresses(message: Message, names: tuple[str, ...]) -> list[str]:
    values = [_unfold(v) for name in names for v in (message.get_all(name) or [])]
    found = [addr.lower() for _, addr in getaddresses(values) if "@" in addr]
    return list(dict.fromkeys(found))


def _message_id(value: object, raw: bytes, problems: list[str]) -> str:
    found = _first_id(value)
    if found:
        return found
    # Without a Message-ID, the content itself is the identity: a redelivery dedups.
    problems.append("no Message-ID; one was derived from the content")
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@dispatchd.invalid>"


def _first_id(value: object) -> str | None:
    match = _MSGID.search(_header_text(value))
    return match.group(0) if match and len(match.group(0)) <= 500 else None


def _date(value: object, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(_header_text(value))
    except (TypeError, ValueError, IndexError):
        problems.append(f"unreadable Date header {str(value)[:60]!r}")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _attachments(items: list[dict], problems: list[str]) -> list[MailAttachment]:
    import base64

    found = []
    for index, item in enumerate(items):
        payload = item.get("payload") or ""
        try:
            data = base64.b64decode(payload) if item.get("binary") else payload.encode(
                item.get("charset") or "utf-8", errors="replace")
        except Exception as exc:  # a lying Content-Transfer-Encoding
            problems.append(f"attachment {index + 1} could not be decoded: {exc}")
            data = payload.encode("utf-8", errors="replace")
        name = _header_text(item.get("filename")) or f"attachment-{index + 1}"
        found.append(MailAttachment(_safe_name(name), item.get("mail_content_type") or
                                    "application/octet-stream", data))
    return found


def _stdlib_bodies(message: Message, problems: list[str]) -> tuple[str, str, tuple[MailAttachment, ...]]:
    texts, htmls, attachments = [], [], []
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception as exc:
            problems.append(f"part could not be decoded: {exc}")
            continue
        filename = part.get_filename()
        if filename:
            attachments.append(MailAttachment(_safe_name(_header_text(filename)),
                                              part.get_content_type(), payload))
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            body = payload.decode(charset, errors="replace")
        except LookupError:
            problems.append(f"unknown charset {charset!r}; read as UTF-8")
            body = payload.decode("utf-8", errors="replace")
        (htmls if part.get_content_type() == "text/html" else texts).append(body)
    return "\n".join(texts).strip(), "\n".join(htmls), tuple(attachments)


def _safe_name(name: str) -> str:
    name = re.sub(r"[\\/\x00-\x1f]", "_", name).strip(". ") or "attachment"
    return name[:200]
