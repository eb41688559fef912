"""structlog set-up: JSON lines in production, readable on a terminal.

Header text that reaches a log line is flattened (no CR/LF log forging) and anything that
looks like a secret is redacted, whichever module logged it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_KEYS = ("password", "secret", "token", "authorization")


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "[redacted]"
        elif isinstance(value, str) and key != "exception":
            event[key] = value.replace("\r", "\\r").replace("\n", "\\n")
    return event


class _CurrentStderr:
    """Whatever sys.stderr is at the time of writing (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog once per process; ``fmt`` is auto, json or console."""
    stream = stream or _CurrentStderr()
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (structlog.processors.JSONRenderer() if use_json
                     else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info if use_json else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        # One write per line (PrintLogger writes the text and its newline apart): the daemon and its
        # sender share stderr, and a line cut between the two writes joins the next one.
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_standard_logging(renderer, max(logging.WARNING, getattr(logging, level.upper())), stream)


_standard_handler: logging.Handler | None = None


def _route_standard_logging(renderer: Any, level: int, stream: Any) -> None:
    """Libraries log through the standard library (APScheduler, mail-parser, asyncio). Without a
    handler Python writes their warnings as bare text to stderr, lines that a JSON log reader
    cannot parse: render them like ours. Their info chatter (a line per job run) stays out."""
    global _standard_handler
    handler = logging.StreamHandler(stream)  # one write per record: message and newline together
    handler.setLevel(level)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=[
        structlog.stdlib.add_logger_name, structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True), _redact]))
    root = logging.getLogger()
    if _standard_handler is not None:
        root.removeHandler(_standard_handler)
    root.addHandler(handler)
    _standard_handler = handler
    # mail-parser warns about every part it does not render as text itself, such as the
    # delivery-status part of each bounce (which flows/bounces.py reads on its own).
    logging.getLogger("mailparser").setLevel(logging.ERROR)
