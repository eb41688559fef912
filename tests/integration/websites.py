"""A client site for the web tests: one deployment whose daemon serves the web side, with
requests of Acme and Globex taken in from real mail before the tests start."""

from __future__ import annotations

import contextlib
import email
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select

from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture
from dispatchd.store.tables import Task, TaskEvent
from tests.conftest import PROJECT, write_config
from tests.integration.conftest import Deployment, make_mail, wait_for
from tests.integration.webtools import WebServer, free_port, serving, web_table

SECRET = "web-secret-for-tests-0123456789abcdef"
HOSTILE = '<script>alert("subject")</script> & <img src=x onerror=alert(2)>'


@dataclass
class Site:
    deployment: Deployment
    server: WebServer

    @property
    def url(self) -> str:
        return self.server.url

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        return self.deployment.received_by(address)

    def link_in(self, message: email.message.EmailMessage) -> str:
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(r"(?:All your requests: |Here it is:\s+)(\S+)", text)
        assert found, text
        return found.group(1)

    def task(self, description: str) -> Task:
        return next(t for t in self.deployment.tasks() if description in t.description)

    def events(self, task_id: int) -> list[TaskEvent]:
        with self.deployment.session() as session:
            return list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id)).all())


@contextlib.contextmanager
def client_site(directory: Path, dovecot: Dovecot) -> Iterator[Site]:
    """The site, until the block ends (its daemon and SMTP sink stopped by pid)."""
    (directory / "web.secret").write_text(SECRET + "\n")
    port = free_port()
    smtp = SmtpCapture().start()
    patch = pytest.MonkeyPatch()
    patch.setenv("DISPATCHD_TEST_PASSWORD", PASSWORD)  # the autouse fixture is per test, this is per module
    try:
        user = f"requests-web-{port}@agency.test"
        write_config(directory, dovecot.port, smtp.port, mailbox=user,
                     extra=web_table(port, 'secret_file = "web.secret"'))
        deployment = Deployment(directory, dovecot, smtp, user)
        corpus = PROJECT / "tests" / "data" / "corpus"
        deployment.deliver(make_mail("[Acme] - Content - Blog post about spring"),
                           make_mail(f"[Acme] - Content - {HOSTILE}", body=f"Body {HOSTILE}"),
                           (corpus / "html-script.eml").read_bytes(),
                           make_mail("[Globex] - Content - Globex secret launch plan",
                                     sender="Gina <gina@globex.test>"))
        with serving(deployment, port, daemon=True) as server:
            wait_for(lambda: len(deployment.received_by("bob@acme.test")) >= 3
                     and deployment.received_by("gina@globex.test"), what="the confirmations")
            yield Site(deployment, server)
    finally:
        smtp.stop()
        patch.undo()
