"""[backup] and [retention]: where scheduled backups go, and how long each kind of data is kept."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from dispatchd.config.model import BackupConfig, RetentionConfig
from dispatchd.tomlfile import Reader

_UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}
_PERIOD = re.compile(r"^\s*(\d+)\s*(day|week|month|year)s?\s*$")


def read_period(text: str) -> timedelta | None | str:
    """"400 days", "2 years", "12 weeks", "6 months" or "never" (None). A string is the refusal:
    a month counts 30 days and a year 365, which is what a retention period needs."""
    if text.strip().lower() == "never":
        return None
    match = _PERIOD.match(text.lower())
    if not match or int(match.group(1)) == 0:
        return f'must be a period such as "400 days", "2 years", "12 weeks" or "never"; got {text!r}'
    return timedelta(days=int(match.group(1)) * _UNITS[match.group(2)])


def read_backup(r: Reader, base: Path) -> BackupConfig:
    directory = r.str("dir")
    config = BackupConfig(dir=base / directory if directory else None, keep=r.int("keep", 14, minimum=1,
                                                                                   maximum=10000))
    r.refuse_unknown()
    return config


def read_retention(r: Reader) -> RetentionConfig:
    periods: dict[str, timedelta | None] = {}
    for name in RetentionConfig.KINDS:
        written = r.str(name, "never")
        period = read_period(written)
        if isinstance(period, str):
            r.problem(name, period)
            period = None
        periods[name] = period
    batch = r.int("batch", 500, minimum=10, maximum=100000)
    r.refuse_unknown()
    return RetentionConfig(**periods, batch=batch)
