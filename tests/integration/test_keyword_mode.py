"""Keyword mode (processed_folder = "") on a server that keeps no keywords, as Microsoft 365:
its PERMANENTFLAGS lack \\*. Played by a proxy that removes \\* from Dovecot's SELECT answer and
counts the commands (issue 21, 8)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatchd.devproxy import ImapProxy
from dispatchd.devservers import Dovecot
from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


@pytest.fixture
def no_keywords(dovecot: Dovecot) -> Iterator[ImapProxy]:
    with ImapProxy(dovecot.port) as proxy:
        proxy.rewrites.append((b" \\*)] Flags permitted", b")] Flags permitted"))
        yield proxy


def test_keyword_mode_without_keywords_neither_flags_nor_rescans(deployment: Deployment, no_keywords: ImapProxy,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    write_config(deployment.path, no_keywords.port, deployment.smtp.port, mailbox=deployment.user,
                 mailboxes=mailbox_table(deployment.user, no_keywords.port, more='processed_folder = ""'))
    deployment.deliver(make_mail("[Acme] - Content - One", sender="one@acme.test"))
    assert deployment.run_once() == 0
    deployment.deliver(make_mail("[Acme] - Content - Two", sender="two@acme.test"))
    assert deployment.run_once() == 0
    assert deployment.run_once() == 0

    assert len(deployment.tasks()) == 2 and deployment.folder_count("INBOX") == 2
    assert len(deployment.received_by("one@acme.test")) == 1 and len(deployment.received_by("two@acme.test")) == 1
    sent = [c.name for c in no_keywords.commands]
    assert "UID STORE" not in sent, "a keyword the server does not keep is not stored"
    # No search for unmarked leftovers: it would find every message ever read, on every pass.
    assert not [c.line for c in no_keywords.commands if "UNKEYWORD" in c.line.upper()]
    assert "imap.keywords_unsupported" in capfd.readouterr().err
