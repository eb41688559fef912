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
