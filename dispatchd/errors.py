"""The one exception tree of dispatchd.

Expected outcomes of mail processing (a bad subject, an unknown sender) are values, not
exceptions; these are for refused configuration and faults at the I/O edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DispatchdError(Exception):
    """Base of every error dispatchd raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration or rules file, located for a human."""

    file: Path
    line: int | None
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"


class ConfigError(DispatchdError):
    """config.toml, rules/ or templates/ were refused; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class MailServerError(DispatchdError):
    """The IMAP or SMTP server could not be reached or refused us; worth retrying later."""


class CalendarUnavailable(DispatchdError):
    """The CalDAV server could not be reached or refused a request; the booking is tried again."""


class ChatEndpointError(DispatchdError):
    """The second opinion's chat endpoint gave no usable reply; the task stays in triage and the
    call may be tried again on a later run (``flows/second_opinion``)."""


class ChatTimeout(ChatEndpointError):
    """No whole reply within ``[second_opinion] timeout``."""


class ChatUnreachable(ChatEndpointError):
    """No connection: refused, reset, a name that does not resolve."""


class ChatRefused(ChatEndpointError):
    """An HTTP status other than 200 (a 5xx, 401 for a wrong key, 404 for an unknown model, a redirect)."""

    def __init__(self, status: int, detail: str):
        self.status = status
        super().__init__(f"HTTP {status}: {detail}" if detail else f"HTTP {status}")


class ChatReplyMalformed(ChatEndpointError):
    """A 200 whose body is not a chat completion (no JSON, no choices[0].message.content)."""
