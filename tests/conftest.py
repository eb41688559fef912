"""Shared fixtures: a config written for the test, pointing at the project's rules and templates."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
_users = itertools.count(1)


# Tests run jobs themselves (dispatchd job NAME); a cron tick mid-test would add mail to count.
_NO_SCHEDULE = ('[schedule]\nsla = ""\nredispatch = ""\ndigest = ""\nstaff-digest = ""\nhealth = ""\ntrain = ""\n'
                'backup = ""\nprune = ""\nbooking = ""\nsecond-opinion = ""\n')


# Tests deliver their mail before the first start and expect it dispatched: their go-live
# boundary is a day long past (tests/integration/test_golive.py covers the default).
EVERYTHING = "2000-01-01"


def mailbox_table(user: str, imap_port: int, mode: str = "idle", header: str = "[mailbox]", more: str = "",
                  start_after: str | None = EVERYTHING, idle_timeout: float = 30,
                  poll_interval: float = 0.5) -> str:
    boundary = f'start_after = "{start_after}"' if start_after else ""
    return f"""\
{header}
host = "127.0.0.1"
port = {imap_port}
tls = "none"
username = "{user}"
password_env = "DISPATCHD_TEST_PASSWORD"
mode = "{mode}"
poll_interval = {poll_interval}
idle_timeout = {idle_timeout}
{boundary}
{more}
"""


def write_config(directory: Path, imap_port: int = 1143, smtp_port: int = 1025, mailbox: str | None = None,
                 extra: str = "", mode: str = "idle", scheduled: bool = False,
                 database_url: str = "sqlite:///dispatchd.db", mailboxes: str | None = None) -> Path:
    """``mailboxes``: [[mailbox]] tables to use instead of one [mailbox] for ``mailbox``."""
    mailbox = mailbox or f"requests{next(_users)}@agency.test"
    path = directory / "config.toml"
    path.write_text(f"""\
{mailboxes or mailbox_table(mailbox, imap_port, mode)}
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Test Agency <{mailbox}>"
timeout = 5

[database]
url = "{database_url}"

[paths]
rules = "{PROJECT / 'rules'}"
templates = "{PROJECT / 'templates'}"

[calendar]
timezone = "Europe/Berlin"
holidays_country = "DE"

[logging]
format = "json"

[security]
trusted_authserv_id = "mx.agency.test"

{"" if scheduled else _NO_SCHEDULE}
[[clients]]
name = "Acme"
senders = ["*@acme.test", "bob@gmail.test"]
aliases = ["ACME Corp"]

[[clients]]
name = "Globex"
senders = ["*@globex.test"]

[[staff]]
name = "Ana"
email = "ana@agency.test"
queues = ["content"]

[[staff]]
name = "Ben"
email = "ben@agency.test"
role = "lead"
queues = ["content", "design", "dev", "revision"]

[[staff]]
name = "Morgan"
email = "morgan@agency.test"
role = "manager"
queues = ["triage", "strategy"]
{extra}
""")
    return path


@pytest.fixture(autouse=True)
def _test_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatchd.devservers import PASSWORD

    monkeypatch.setenv("DISPATCHD_TEST_PASSWORD", PASSWORD)


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: object) -> Path:
        return write_config(tmp_path, **kwargs)  # type: ignore[arg-type]
    return make
