"""``dispatchd check --connect``: log in where the daemon will, and say exactly what is wrong.

For each mailbox: the OAuth2 token (when configured), the IMAP login and the intake folder; for
[smtp]: the OAuth2 token, the session (TLS, AUTH) and whether the server takes our envelope
sender (MAIL FROM, then RSET: nothing is sent); with [booking], each staff calendar's free/busy;
with [second_opinion], one question to the chat endpoint that carries no client's mail.
Each probe is one line, ok or the sentence.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import aiosmtplib

from dispatchd.calendar.caldav_server import CaldavCalendars
from dispatchd.config import Config, MailboxConfig
from dispatchd.domain.tokens import bounce_address
from dispatchd.domain.second_opinion import Unusable, read_answer
from dispatchd.errors import CalendarUnavailable, ChatEndpointError, MailServerError
from dispatchd.llm.chat import ChatClient
from dispatchd.mail.compose import bare_address, new_message_id
from dispatchd.mail.diagnose import smtp_failure
from dispatchd.mail.imap import ImapSource
from dispatchd.mail.smtp import SmtpSender
from dispatchd.oauth import OAuth2Config, TokenSource


@dataclass(frozen=True)
class Probe:
    what: str  # "IMAP requests@example.com", "SMTP smtp.example.com:587"
    ok: bool
    detail: str


def probe_all(config: Config) -> list[Probe]:
    """Every server the daemon uses, in the order it uses them; stops at nothing."""
    probes = [probe for mailbox in config.mailboxes for probe in _mailbox(mailbox, config)]
    return probes + asyncio.run(_smtp(config)) + _calendars(config) + probe_chat_endpoint(config)


# What the endpoint is asked: the shape of a verdict, and no client's words.
_PROBE_MESSAGES = (
    {"role": "system", "content": 'Answer with one JSON object and nothing else: {"type": "none", "confidence": 1}'},
    {"role": "user", "content": "This is a connection test."},
)


def probe_chat_endpoint(config: Config) -> list[Probe]:
    """[second_opinion]: does the endpoint answer in time, and with the JSON object asked for?"""
    settings = config.second_opinion
    if settings is None:
        return []
    client = ChatClient(settings.url, settings.model, settings.timeout, settings.api_key.reveal())
    what = f"chat endpoint {settings.model} at {settings.url}"
    started = time.monotonic()
    try:
        text = asyncio.run(client.complete(_PROBE_MESSAGES))
    except ChatEndpointError as exc:
        return [Probe(what, False, f"{type(exc).__name__}: {exc} (settings: [second_opinion] url, model, "
                                   "api_key_env or api_key_file, timeout)")]
    took = time.monotonic() - started
    answer = read_answer(text, ())
    if isinstance(answer, Unusable):
        return [Probe(what, False, f"answered in {took:.1f} s, but not with the JSON object asked for "
                                   f"({answer.why}): {answer.excerpt[:80]!r}; try another model")]
    return [Probe(what, True, f"answered with a verdict in {took:.1f} s (timeout {settings.timeout:g} s)")]


def _calendars(config: Config) -> list[Probe]:
    """[booking]: each staff calendar's free/busy for the coming week (read only)."""
    if config.booking is None:
        return []
    calendars = CaldavCalendars(config.booking)
    start = datetime.now(timezone.utc)
    probes = []
    try:
        for owner, url in config.booking.calendars.items():
            what = f"CalDAV {owner}"
            try:
                busy = calendars.busy([owner], start, start + timedelta(days=7))
            except CalendarUnavailable as exc:
                probes.append(Probe(what, False, f"{exc} (settings: [booking] caldav_url, username, password_*, "
                                                 f"[booking.calendars])"))
                continue
            probes.append(Probe(what, True, f"free/busy of {url} read: {len(busy)} busy times in the next 7 days"))
    finally:
        calendars.close()
    return probes


def _mailbox(mailbox: MailboxConfig, config: Config) -> list[Probe]:
    what = f"IMAP {mailbox.name or mailbox.address}"
    token = _token(f"{what} OAuth2", mailbox.oauth2, "[mailbox]")
    if token is not None and not token.ok:
        return [token]
    source = ImapSource(mailbox, config.intake.max_message_bytes)
    try:
        source.connect()
        state = source.select(mailbox.folder)
    except MailServerError as exc:
        return [*filter(None, [token]), Probe(what, False, str(exc))]
    finally:
        source.close()
    return [*filter(None, [token]), Probe(what, True, f"logged in to {mailbox.host}:{mailbox.port} as "
                                                     f"{mailbox.username}; {mailbox.folder} holds {state.exists} "
                                                     f"messages")]


def _token(what: str, oauth2: OAuth2Config | None, table: str) -> Probe | None:
    if oauth2 is None:
        return None
    try:
        TokenSource(oauth2).get()
    except (MailServerError, OSError) as exc:
        return Probe(what, False, f"{exc} (settings: {table} oauth2_*)")
    source = "oauth2_token_command" if oauth2.token_command else f"a refresh at {oauth2.token_url}"
    return Probe(what, True, f"a token from {source}")


async def _smtp(config: Config) -> list[Probe]:
    smtp = config.smtp
    what = f"SMTP {smtp.host}:{smtp.port}"
    token = _token(f"{what} OAuth2", smtp.oauth2, "[smtp]")
    if token is not None and not token.ok:
        return [token]
    sender = SmtpSender(smtp)
    try:
        fault = await sender.open()
        if fault is not None:
            return [*filter(None, [token]), Probe(what, False, smtp_failure(smtp, fault))]
        envelope = _envelope_sender(config)
        assert sender.connection is not None
        try:
            await sender.connection.mail(envelope)
            await sender.connection.rset()
        except aiosmtplib.SMTPResponseException as exc:
            remedy = ("set [smtp] verp = false (bounces are then matched by Message-ID)" if smtp.verp
                      else "check [smtp] from: the account may not send as that address")
            return [*filter(None, [token]), Probe(what, False, f"the server refuses the envelope sender "
                                                               f"{envelope}: {exc.code} {exc.message}; {remedy}")]
    finally:
        await sender.close()
    login = f"logged in as {smtp.username}" if smtp.username else "no login configured"
    return [*filter(None, [token]), Probe(what, True, f"{login}; envelope sender {envelope} accepted at MAIL FROM "
                                                      f"(some servers refuse it only after DATA: see README)")]


def _envelope_sender(config: Config) -> str:
    """What the outbox will put in MAIL FROM: a VERP address, or the From address."""
    if not config.smtp.verp:
        return bare_address(config.smtp.from_address)
    return bounce_address(config.mailbox.address, new_message_id(config.smtp.from_address, 1), b"probe")
