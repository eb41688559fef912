"""A message the server refuses to move is parked, logged once, listed by `dispatchd quarantine`,
and never holds back new mail (issue 21, 1). Dovecot refuses for real: the Processed maildir
is made unwritable for the user Dovecot delivers as."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for

pytestmark = pytest.mark.integration


@contextmanager
def unwritable(deployment: Deployment, folder: str) -> Iterator[None]:
    """The folder exists but no message can be stored in it (Dovecot: NO [SERVERBUG])."""
    client = deployment.dovecot.client(deployment.user)
    try:
        if not client.folder_exists(folder):
            client.create_folder(folder)
    finally:
        client.logout()
    maildir = deployment.dovecot.root / "mail" / deployment.user / f".{folder}"
    parts = [maildir / sub for sub in ("tmp", "new", "cur")]
    for part in parts:
        part.chmod(0o555)
    if os.geteuid() == 0 and os.stat(maildir).st_uid == 0:
        pytest.skip("Dovecot delivers as root here: permissions cannot refuse it")
    try:
        yield
    finally:
        for part in parts:
            part.chmod(0o755)


def errors_for(log: Path, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_a_refused_move_is_parked_and_new_mail_still_flows(deployment: Deployment,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Stuck one", sender="first@acme.test"))
    with unwritable(deployment, "Processed"):
        daemon = deployment.start_daemon()
        try:
            wait_for(lambda: bool(deployment.received_by("first@acme.test")), what="first confirmation")
            wait_for(lambda: bool(errors_for(deployment.path / "daemon.log", "mail.unmovable")), what="the refusal")
            deployment.deliver(make_mail("[Acme] - Content - Next one", sender="second@acme.test"))
            waited = wait_for(lambda: bool(deployment.received_by("second@acme.test")), timeout=15,
                              what="the next request's confirmation")
            assert waited < 5
            deployment.deliver(make_mail("[Acme] - Content - Third", sender="third@acme.test"))
            wait_for(lambda: bool(deployment.received_by("third@acme.test")), timeout=15, what="third")
        finally:
            assert stop_process(daemon, signal.SIGTERM) == 0
    refusals = errors_for(deployment.path / "daemon.log", "mail.unmovable")
    assert sorted(r["uid"] for r in refusals) == [1, 2, 3], "each refused message logged once, with its UID"
    assert all(r["level"] == "error" and "SERVERBUG" in str(r["reason"]) for r in refusals)
    assert len(deployment.tasks()) == 3
    assert deployment.folder_count("INBOX") == 3  # left where they were

    capsys.readouterr()
    assert deployment.cli("quarantine", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["uid"] for row in listed] == [1, 2, 3]
    assert all(row["reason"].startswith("left in INBOX: IMAP move:") for row in listed)

    # With the folder writable again, `quarantine retry` lets the next pass move it.
    assert deployment.cli("quarantine", "retry", str(listed[0]["id"])) == 0
    assert deployment.run_once() == 0
    assert deployment.folder_count("INBOX") == 2
    assert deployment.folder_count("Processed") == 1
    assert len(deployment.tasks()) == 3
