"""[web]: where it listens, the address in links, the signing secret (never inline), limits."""

from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.config.web import parse_listen
from tests.unit.test_config import BASE, problems, secrets, write  # noqa: F401 (secrets is a fixture)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8025", ("127.0.0.1", 8025)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:8025", ("::1", 8025)),
    ("localhost:65535", ("localhost", 65535)),
    ("127.0.0.1", None),
    (":8025", None),
    ("127.0.0.1:0", None),
    ("127.0.0.1:70000", None),
    ("127.0.0.1:http", None),
])
def test_parse_listen(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(text) == expected


def test_web_defaults_serve_nothing_and_link_nowhere(tmp_path: Path, secrets: None) -> None:
    web = load_config(write(tmp_path, BASE)).web
    assert web.listen is None and web.base_url is None
    assert web.secret.reveal() is None and web.link_days == 90


def test_web_settings_are_read(tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHD_WEB_SECRET", "web-secret")
    web = load_config(write(tmp_path, BASE + '[web]\nlisten = "127.0.0.1:8025"\nbase_url = "https://d.example.com/"\n'
                                             'secret_env = "DISPATCHD_WEB_SECRET"\nlink_days = 30\n'
                                             'max_upload_mb = 5\n')).web
    assert web.listen == "127.0.0.1:8025" and web.base_url == "https://d.example.com"
    assert web.secret.reveal() == "web-secret" and web.link_days == 30
    assert web.max_upload_bytes == 5 * 1024 * 1024


@pytest.mark.parametrize("addition, expected", [
    ('[web]\nsecret = "hunter2"\n', ":9: web.secret: inline secrets are refused"),
    ('[web]\nlisten = "8025"\n', ":9: web.listen: '8025': write HOST:PORT"),
    ('[web]\nbase_url = "dispatch.example.com"\n', ":9: web.base_url: 'dispatch.example.com': write the address"),
    ('[web]\nbase_url = "https://d.example.com/?x=1"\n', ":9: web.base_url:"),
    ('[web]\nsecret_env = "DISPATCHD_NO_SUCH_VARIABLE"\n', ":9: web.secret_env: environment variable"),
    ('[web]\nlink_days = 0\n', ":9: web.link_days: must be between 1 and 3650"),
    ('[web]\nlistn = "127.0.0.1:8025"\n', ":9: web.listn: unknown key"),
])
def test_web_refusals(tmp_path: Path, secrets: None, addition: str, expected: str) -> None:
    found = problems(tmp_path, BASE + addition)
    assert any(expected in p for p in found), found
    assert not any("hunter2" in p for p in found)
