"""What every command shares: exit codes, output as a table or JSON, the database, periods."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dispatchd.config import Config
from dispatchd.errors import DispatchdError

EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_SERVER = 1, 2, 3


def emit(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    from dispatchd.views import table

    if as_json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif columns is not None:
        table(data, columns)


def engine(config: Config):  # type: ignore[no-untyped-def]
    from dispatchd.store.db import migrate, open_engine, with_integration_events

    engine = with_integration_events(open_engine(config.database_url), bool(config.destinations))
    migrate(engine)
    return engine


def period(text: str) -> timedelta:
    units = {"h": "hours", "d": "days", "w": "weeks"}
    if not text or text[-1] not in units or not text[:-1].isdigit():
        raise DispatchdError(f"--since {text!r}: write e.g. 12h, 30d or 2w")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def progress_bar(label: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        if not total:
            return  # nothing to read: no bar
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def due_in_words(config: Config) -> Callable[[str | None], str]:
    """ISO 8601 due time (as in the JSON) -> the words every email uses: 'by end of Tue 8 Dec'."""
    from dispatchd.calendars import business_calendar
    from dispatchd.domain.duewords import due_words

    calendar = business_calendar(config.calendar)
    return lambda iso: due_words(datetime.fromisoformat(iso) if iso else None, calendar)
