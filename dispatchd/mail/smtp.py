"""The SMTP edge: send stored bytes over a reused connection and classify the answer.

4xx replies and connection faults are temporary (retry later); 5xx replies are permanent
(park the mail for an operator). Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import asyncio

import aiosmtplib
import structlog

from dispatchd.config import SmtpConfig
from dispatchd.errors import MailServerError
from dispatchd.oauth import TokenSource

log = structlog.get_logger("dispatchd.smtp")


class Delivery(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class SendResult:
    delivery: Delivery
    detail: str = ""


class SmtpSender:
    def __init__(self, config: SmtpConfig):
        self.config = config
        self.tokens = TokenSource(config.oauth2) if config.oauth2 else None
        self.connection: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        if self.connection is not None and self.connection.is_connected:
            return self.connection
        cfg = self.config
        connection = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout,
            use_tls=cfg.tls == "ssl", start_tls=True if cfg.tls == "starttls" else False,
        )
        await connection.connect()
        if self.tokens is not None:
            token = await asyncio.to_thread(self.tokens.get)
            try:
                await connection.auth_xoauth2(cfg.username or "", token)
            except aiosmtplib.SMTPAuthenticationError:
                await connection.auth_xoauth2(cfg.username or "", await asyncio.to_thread(self.tokens.get, True))
        elif cfg.username:
            await connection.login(cfg.username, cfg.password.reveal() or "")
        self.connection = connection
        return connection

    async def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        """Send ``raw`` unchanged; the Message-ID inside is what makes a resend recognisable."""
        try:
            connection = await self._connect()
            refused, response = await connection.sendmail(envelope_from, recipients, raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            kind = Delivery.PERMANENT if all(500 <= c < 600 for c in codes) else Delivery.TEMPORARY
            return SendResult(kind, detail)
        except aiosmtplib.SMTPResponseException as exc:
            await self._drop()
            kind = Delivery.PERMANENT if 500 <= exc.code < 600 else Delivery.TEMPORARY
            return SendResult(kind, f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError, MailServerError) as exc:
            await self._drop()
            return SendResult(Delivery.TEMPORARY, f"{type(exc).__name__}: {exc}")
        except (UnicodeError, ValueError) as exc:
            # An address no SMTP server will take: retrying cannot help.
            await self._drop()
            return SendResult(Delivery.PERMANENT, f"unsendable address: {exc}")
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
