"""Operators' least privilege: read-only views run without the mail passwords; init's config
is private to its owner."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatchd.cli import main


@pytest.mark.parametrize("argv, code", [
    (["tasks"], 0),
    (["show", "1"], 1),  # not found: it got as far as the database
    (["queues"], 0),
    (["outbox"], 0),
    (["report"], 0),
    (["replay"], 0),
    (["check", "--explain", "[Acme] - Content - Blog post"], 0),
    (["check"], 2),  # the full check is what the service runs before start: it needs them
    (["job", "digest"], 2),  # sends mail
    (["run", "--once"], 2),
])
def test_read_only_views_need_no_mail_credentials(config_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], argv: list[str],
                                                  code: int) -> None:
    config = config_file()
    monkeypatch.delenv("DISPATCHD_TEST_PASSWORD")
    assert main([*argv, "--config", str(config)]) == code
    refused = "environment variable DISPATCHD_TEST_PASSWORD is not set" in capsys.readouterr().err
    assert refused == (code == 2)


def test_init_writes_the_config_readable_by_its_owner_only(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "site")]) == 0
    assert stat.S_IMODE((tmp_path / "site" / "config.toml").stat().st_mode) == 0o600
    (tmp_path / "site" / "config.toml").chmod(0o644)
    assert main(["init", "--force", str(tmp_path / "site")]) == 0
    assert stat.S_IMODE((tmp_path / "site" / "config.toml").stat().st_mode) == 0o600
    assert not list((tmp_path / "site").glob(".config.toml*")), "no temporary file left behind"
