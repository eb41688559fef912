"""The SMTP edge: send stored bytes over a reused connection and classify the answer.

Setting up the session (connect, greeting, EHLO, STARTTLS, AUTH) is kept apart from sending
an email, so that a failure there is reported as the server's fault (``ServerFault``) and no
email is charged for it; ``smtp_faults`` says which replies during a transaction are the
server's too (421, quotas). What remains is one email's: 4xx retry later, 5xx park. Nothing
here touches the database.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

import aiosmtplib
import structlog

from dispatchd.config import SmtpConfig
from dispatchd.errors import MailServerError
from dispatchd.mail.smtp_faults import ServerFault, Stage, reply_fault
from dispatchd.oauth import TokenSource

log = structlog.get_logger("dispatchd.smtp")
_NETWORK_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError, MailServerError)


class Delivery(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"    # this email: retry it later (an attempt is charged)
    PERMANENT = "permanent"    # this email: park it for a person
    NOT_TRIED = "not_tried"    # the server refused before this email was its business


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    detail: str = ""
    fault: ServerFault | None = None  # set: the server refuses all mail for now; stop and back off


class SmtpSender:
    def __init__(self, config: SmtpConfig, tokens: TokenSource | None = None):
        """``tokens``: the OAuth2 token source shared by all connections of one sender (each its
        own would refresh once per connection, and a rotating refresh token used by one after
        another rotated it is refused)."""
        self.config = config
        self.tokens = tokens or (TokenSource(config.oauth2) if config.oauth2 else None)
        self.connection: aiosmtplib.SMTP | None = None

    async def open(self) -> ServerFault | None:
        """Have a session ready for mail (reusing the open one); the fault if that failed."""
        if self.connection is not None and self.connection.is_connected:
            return None
        await self._drop()
        cfg = self.config
        connection = aiosmtplib.SMTP(hostname=cfg.host, port=cfg.port, timeout=cfg.timeout,
                                     use_tls=cfg.tls == "ssl", start_tls=False)
        stage = Stage.CONNECT
        try:
            await connection.connect()
            stage = Stage.EHLO
            await connection.ehlo()
            if cfg.tls == "starttls":
                stage = Stage.STARTTLS
                await connection.starttls()
            stage = Stage.AUTH
            await self._authenticate(connection)
        except _NETWORK_ERRORS as exc:
            connection.close()
            if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
                stage = Stage.GREETING
            if isinstance(exc, aiosmtplib.SMTPResponseException):
                return reply_fault(stage, exc.code, exc.message)
            return reply_fault(stage, None, f"{type(exc).__name__}: {exc}")
        self.connection = connection
        return None

    async def _authenticate(self, connection: aiosmtplib.SMTP) -> None:
        cfg = self.config
        if self.tokens is not None:
            token = await asyncio.to_thread(self.tokens.get)
            try:
                await connection.auth_xoauth2(cfg.username or "", token)
            except aiosmtplib.SMTPAuthenticationError:
                # A cached token may have been revoked early: one fresh one, then it is the server's answer.
                await connection.auth_xoauth2(cfg.username or "", await asyncio.to_thread(self.tokens.get, True))
        elif cfg.username:
            await connection.login(cfg.username, cfg.password.reveal() or "")

    async def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        """Send ``raw`` unchanged; the Message-ID inside is what makes a resend recognisable."""
        reused = self.connection is not None and self.connection.is_connected
        result = await self._send_once(envelope_from, recipients, raw)
        if reused and result.fault is not None and result.fault.detail.startswith(Stage.SENDING):
            # The kept connection had been closed by the server meanwhile (idle timeout): that is
            # not a fault of the server or of this email; a new session says which it is.
            result = await self._send_once(envelope_from, recipients, raw)
        return result

    async def _send_once(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        fault = await self.open()
        if fault is not None:
            return SendResult(Delivery.NOT_TRIED, fault.detail, fault)
        assert self.connection is not None
        try:
            refused, response = await self.connection.sendmail(envelope_from, recipients, raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            faults = [reply_fault(Stage.RCPT, r.code, r.message) for r in exc.recipients]
            if any(faults):
                await self._drop()
                return SendResult(Delivery.NOT_TRIED, detail, next(f for f in faults if f))
            kind = Delivery.PERMANENT if all(500 <= r.code < 600 for r in exc.recipients) else Delivery.TEMPORARY
            return SendResult(kind, detail)
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            stage = Stage.MAIL if isinstance(exc, aiosmtplib.SMTPSenderRefused) else Stage.DATA
            fault = reply_fault(stage, exc.code, exc.message)
            if fault is not None:
                return SendResult(Delivery.NOT_TRIED, fault.detail, fault)
            kind = Delivery.PERMANENT if 500 <= exc.code < 600 else Delivery.TEMPORARY
            return SendResult(kind, f"{exc.code} {exc.message}")
        except (UnicodeError, ValueError, aiosmtplib.SMTPNotSupported) as exc:
            # An address no SMTP server will take (or not this one, without SMTPUTF8): retrying cannot help.
            return SendResult(Delivery.PERMANENT, f"unsendable address: {exc}")
        except _NETWORK_ERRORS as exc:
            # Lost in the middle of this email: charge it (an email that breaks every session must
            # end up parked, not hold the queue forever), and stop the pass all the same.
            await self._drop()
            fault = reply_fault(Stage.SENDING, None, f"{type(exc).__name__}: {exc}")
            return SendResult(Delivery.TEMPORARY, fault.detail if fault else str(exc), fault)
        partial = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
        return SendResult(Delivery.SENT, partial or str(response))

    async def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a broken transport may fail in many ways; it is gone either way
                pass

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None and connection.is_connected:
            try:
                await connection.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                connection.close()
