"""[retention] periods and [backup] as config.toml spells them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.config.lifecycle import read_period
from dispatchd.errors import ConfigError
from tests.conftest import write_config


@pytest.mark.parametrize(("written", "period"), [
    ("400 days", timedelta(days=400)),
    ("1 day", timedelta(days=1)),
    ("2 years", timedelta(days=730)),
    ("7 Years", timedelta(days=7 * 365)),
    ("12 weeks", timedelta(weeks=12)),
    ("6 months", timedelta(days=180)),
    ("never", None),
    (" Never ", None),
])
def test_periods(written: str, period: timedelta | None) -> None:
    assert read_period(written) == period


@pytest.mark.parametrize("written", ["", "0 days", "forever", "400", "2 decades", "-1 days", "1.5 years"])
def test_refused_periods(written: str) -> None:
    assert isinstance(read_period(written), str)


def test_retention_and_backup_sections(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, extra='[retention]\nraw_mail = "400 days"\nquarantine = "90 days"\n'
                                                      '[backup]\ndir = "backups"\n'))
    assert config.retention.raw_mail == timedelta(days=400) and config.retention.closed_tasks is None
    assert config.backup.dir == tmp_path / "backups" and config.backup.keep == 14


def test_a_bad_period_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path, extra='[retention]\nattachments = "2 decades"\n'))
    assert any(p.key == "retention.attachments" for p in refused.value.problems)
