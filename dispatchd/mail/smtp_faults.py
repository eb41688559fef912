"""Which SMTP failures are the server's (stop sending, back off) and which are one email's.

A failure while the session is being set up (connect, greeting, EHLO, STARTTLS, AUTH) says
nothing about any email: every email would meet it. The same holds for ``421`` (the server
closes the channel), for a refused envelope sender (it is the same for every email), and for
the quota and rate-limit replies that providers give at MAIL, RCPT or DATA, some of them with
5xx codes (Gmail ``550 5.4.5``, Microsoft 365 ``554 5.2.0 …SubmissionQuotaExceeded``). Those
are ``ServerFault``s: the sender stops its pass and waits, and no email is charged an attempt.
Only what remains is about one email: a 4xx is retried later, a 5xx parks it.

Pure: a table of replies, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    UNREACHABLE = "unreachable"  # no connection, no greeting, a reset, a timeout, EHLO/STARTTLS refused
    LOGIN = "login"              # AUTH refused, or our sender address refused: a person must act
    BUSY = "busy"                # 421 and its kin: the server sheds load for now
    QUOTA = "quota"              # a sending quota or rate limit: hours may pass before it lifts


class Stage(StrEnum):
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "EHLO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    SENDING = "sending"  # the connection was lost during MAIL, RCPT or DATA


SETUP = frozenset({Stage.CONNECT, Stage.GREETING, Stage.EHLO, Stage.STARTTLS, Stage.AUTH})


@dataclass(frozen=True)
class ServerFault:
    kind: Fault
    detail: str


# Replies that speak for the whole server, whatever the command. 452 is "insufficient system
# storage" (and, at RCPT, "too many recipients": with one recipient per email a rate limit);
# 454 is a temporary TLS/authentication failure or, at Amazon SES, "Throttling failure".
_SERVER_CODES = {421: Fault.BUSY, 452: Fault.QUOTA, 454: Fault.BUSY, 530: Fault.LOGIN, 535: Fault.LOGIN,
                 538: Fault.LOGIN}
# RFC 3463 enhanced codes of the mail system, not of a mailbox: X.3.1 system full, X.3.2 not
# accepting messages, X.4.5 congestion (Gmail's daily quota), X.5.3 too many recipients;
# Microsoft 365: 5.7.57 anonymous submission, 5.7.139 SMTP AUTH disabled, 5.7.60 send-as
# denied, 5.7.705/5.7.708/5.7.750 tenant or IP blocked.
_SERVER_STATUSES = {"3.1": Fault.QUOTA, "3.2": Fault.BUSY, "4.5": Fault.QUOTA, "5.3": Fault.QUOTA,
                    "7.57": Fault.LOGIN, "7.139": Fault.LOGIN, "7.60": Fault.LOGIN, "7.705": Fault.LOGIN,
                    "7.708": Fault.LOGIN, "7.750": Fault.LOGIN}
_QUOTA_TEXT = re.compile(
    r"(sending|submission|message|daily|hourly)\s*(user\s+)?(sending\s+)?(quota|limit)|quota\s*exceeded|"
    r"rate\s*limit|throttl|message\s+(submission\s+)?rate|too\s+many\s+(messages|emails|mails|recipients|connections)",
    re.IGNORECASE)
_STATUS = re.compile(r"^\s*[245]\.(\d{1,3}\.\d{1,3})\b")
_MAILBOX_FULL = "2.2"  # the recipient's mailbox is over its quota: that email's problem alone
_MESSAGE_TOO_BIG = "3.4"


def enhanced_status(message: str) -> str | None:
    """'5.4.5 Daily user sending quota exceeded' -> '4.5' (subject.detail), or None."""
    match = _STATUS.match(message)
    return match.group(1) if match else None


def reply_fault(stage: Stage, code: int | None, message: str) -> ServerFault | None:
    """The sender-wide fault that a reply (or, with ``code`` None, a lost connection) at
    ``stage`` means, or None when it concerns the email being sent alone."""
    detail = f"{stage}: {code} {message}".strip() if code is not None else f"{stage}: {message}"
    if stage in SETUP:
        if code is None:
            return ServerFault(Fault.LOGIN if stage is Stage.AUTH else Fault.UNREACHABLE, detail)
        kind = _server_kind(code, message)
        if kind is None or (stage is Stage.AUTH and kind is not Fault.QUOTA):
            kind = Fault.LOGIN if stage is Stage.AUTH else Fault.UNREACHABLE
        return ServerFault(kind, detail)
    if code is None:
        return ServerFault(Fault.UNREACHABLE, detail)
    status = enhanced_status(message)
    if status in (_MAILBOX_FULL, _MESSAGE_TOO_BIG) and code != 421:
        return None
    kind = _server_kind(code, message)
    if kind is None and stage is Stage.MAIL:
        kind = Fault.LOGIN  # our envelope sender, refused: every email has it
    return ServerFault(kind, detail) if kind is not None else None


def _server_kind(code: int, message: str) -> Fault | None:
    if code in _SERVER_CODES:
        return _SERVER_CODES[code]
    status = enhanced_status(message)
    if status in _SERVER_STATUSES:
        return _SERVER_STATUSES[status]
    if 400 <= code < 600 and _QUOTA_TEXT.search(message):
        return Fault.QUOTA
    return None
