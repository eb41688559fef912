"""What happens when things go wrong: broken processing, SMTP refusals and outages,
UIDVALIDITY changes, crashes between commit and move."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta, timezone

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from dispatchd.config import load_config
from dispatchd.daemon import Daemon, build_deps, build_outbox
from dispatchd.sending import SendLoop
from dispatchd.flows import ingest as ingest_module
from dispatchd.flows.outbox import RetryPolicy
from dispatchd.flows.sender_hold import read_hold
from dispatchd.store.db import open_engine
from dispatchd.store.tables import MailboxCursor
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


def test_processing_failure_is_quarantined_and_retryable(deployment: Deployment, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    real = ingest_module.read_request

    def explode_on_boom(mail, *args):  # type: ignore[no-untyped-def]
        if "BOOM" in mail.subject:
            raise ValueError("simulated bug in routing")
        return real(mail, *args)

    monkeypatch.setattr(ingest_module, "read_request", explode_on_boom)
    deployment.deliver(make_mail("[Acme] - Content - BOOM"), make_mail("[Acme] - Content - fine"))
    assert deployment.run_once() == 0
    assert [r.disposition for r in deployment.inbound()] == ["quarantined", "task"]
    assert "simulated bug in routing" in deployment.inbound()[0].reason
    assert deployment.folder_count("Quarantine") == 1 and deployment.folder_count("Processed") == 1
    assert deployment.folder_count("INBOX") == 0
    capsys.readouterr()
    deployment.cli("quarantine", "--json")
    assert '"simulated bug in routing' in capsys.readouterr().out.replace("ValueError: ", '"')

    assert deployment.cli("quarantine", "retry", "1") == 1, "still broken: stays quarantined"
    monkeypatch.setattr(ingest_module, "read_request", real)
    assert deployment.cli("quarantine", "retry", "1") == 0
    assert sorted(r.disposition for r in deployment.inbound()) == ["task", "task"]
    assert len(deployment.tasks()) == 2
    assert deployment.run_once() == 0
    assert len(deployment.received_by("bob@acme.test")) == 2


def test_crash_between_commit_and_move_does_not_reprocess(deployment: Deployment,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatchd.mail.imap import ImapSource

    def crash(self, uids, target):  # type: ignore[no-untyped-def]
        raise SystemExit("simulated crash after commit, before the move")

    deployment.deliver(make_mail("[Acme] - Content - One"), make_mail("[Acme] - Content - Two"))
    with monkeypatch.context() as patch:
        patch.setattr(ImapSource, "acknowledge", crash)
        with pytest.raises(SystemExit):
            deployment.run_once()
    assert deployment.folder_count("INBOX") == 2, "the move never happened"
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == 2
    assert deployment.folder_count("INBOX") == 0 and deployment.folder_count("Processed") == 2
    assert len(deployment.received_by("bob@acme.test")) == 2


@pytest.mark.config(extra="")
def test_uidvalidity_change_rescans_without_redispatching(deployment: Deployment) -> None:
    raw = make_mail("[Acme] - Content - Seen before", message_id="<seen@client.test>")
    deployment.deliver(raw)
    deployment.run_once()
    with deployment.session() as session:
        cursor = session.exec(select(MailboxCursor)).one()
        cursor.uidvalidity -= 1  # as if the server had rebuilt the folder
        session.add(cursor)
        session.commit()
    deployment.deliver(raw, make_mail("[Acme] - Content - New one"))
    deployment.run_once()
    assert [t.description for t in deployment.tasks()] == ["Seen before", "New one"]
    assert [r.disposition for r in deployment.inbound()] == ["task", "duplicate", "task"]
    assert len(deployment.received_by("bob@acme.test")) == 2


@pytest.mark.config(extra="")
def test_processed_folder_can_be_off(deployment: Deployment) -> None:
    text = deployment.config.read_text().replace('mode = "idle"', 'mode = "idle"\nprocessed_folder = ""')
    deployment.config.write_text(text)
    deployment.deliver(make_mail("[Acme] - Content - Stay in the inbox"))
    deployment.run_once()
    deployment.run_once()
    assert len(deployment.tasks()) == 1 and deployment.folder_count("INBOX") == 1
    client = deployment.dovecot.client(deployment.user)
    client.select_folder("INBOX")
    assert client.search(["KEYWORD", "$Dispatched"]) == [1]
    client.logout()


def run_with_policy(deployment: Deployment, policy: RetryPolicy) -> int:
    deps = build_deps(load_config(deployment.config))
    return asyncio.run(Daemon(deps, SendLoop(build_outbox(deps, policy))).run_once())


def test_smtp_temporary_failure_is_retried_then_delivered(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Retry me"))
    deployment.smtp.answer_with("451 4.3.0 try again later")
    # A minute's backoff: with none, a second drain in the same run (woken by the commit) may retry.
    assert run_with_policy(deployment, RetryPolicy(base_seconds=60)) == 75
    rows = deployment.outbox()
    assert {r.status for r in rows} == {"pending"} and all(r.attempts == 1 for r in rows)
    assert all("451" in r.last_error for r in rows)
    assert all(r.next_attempt_at - r.created_at >= timedelta(seconds=59) for r in rows)
    deployment.smtp.answer_with(None)
    with sqlite3.connect(deployment.path / "dispatchd.db") as db:
        db.execute("UPDATE outbox SET next_attempt_at = created_at")
    assert run_with_policy(deployment, RetryPolicy(base_seconds=60)) == 0
    assert {r.status for r in deployment.outbox()} == {"sent"}
    assert len(deployment.smtp.messages) == 2


def test_smtp_permanent_failure_is_parked(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Park me"))
    deployment.smtp.answer_with("550 5.1.1 mailbox unavailable")
    run_with_policy(deployment, RetryPolicy(base_seconds=0.0))
    rows = deployment.outbox()
    assert {r.status for r in rows} == {"parked"} and all("550" in r.last_error for r in rows)
    deployment.smtp.answer_with(None)
    assert run_with_policy(deployment, RetryPolicy(base_seconds=0.0)) == 0
    assert deployment.smtp.messages == [], "parked mail is not retried"
    capsys.readouterr()
    deployment.cli("outbox", "--status", "parked")
    assert "550 5.1.1 mailbox unavailable" in capsys.readouterr().out
    deployment.cli("report")
    assert "needs a person: 2 parked outgoing emails" in capsys.readouterr().out


def test_smtp_down_keeps_mail_and_backs_off(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Server away"))
    deployment.smtp.stop()
    try:
        assert run_with_policy(deployment, RetryPolicy(base_seconds=60)) == 75
        rows = deployment.outbox()
        assert {r.status for r in rows} == {"pending"}
        assert all(r.attempts == 0 for r in rows), "an outage charges no email"
        hold = read_hold(open_engine(f"sqlite:///{deployment.path / 'dispatchd.db'}"))
        assert hold is not None and hold.until_at - rows[0].created_at.replace(tzinfo=timezone.utc) >= \
            timedelta(seconds=20), "sending waits (30 s less jitter at first)"
    finally:
        deployment.smtp.start()
    with sqlite3.connect(deployment.path / "dispatchd.db") as db:
        db.execute("DELETE FROM meta WHERE key = 'smtp.hold'")  # the wait is over
    assert run_with_policy(deployment, RetryPolicy(base_seconds=60)) == 0
    assert len(deployment.smtp.messages) == 2


def test_locked_database_leaves_mail_on_server(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    import dispatchd.daemon as daemon_module

    deployment.deliver(make_mail("[Acme] - Content - Wait for the lock"))
    assert deployment.cli("queues") == 0  # creates the schema

    def impatient_engine(url: str):  # type: ignore[no-untyped-def]
        engine = open_engine(url)
        event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=200"))
        return engine

    holder = sqlite3.connect(deployment.path / "dispatchd.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with monkeypatch.context() as patch:
            patch.setattr(daemon_module, "open_engine", impatient_engine)
            with pytest.raises(OperationalError, match="locked"):
                deps = build_deps(load_config(deployment.config))
                asyncio.run(Daemon(deps, SendLoop(build_outbox(deps))).run_once())
    finally:
        holder.rollback()
        holder.close()
    assert deployment.folder_count("INBOX") == 1, "nothing moved, nothing lost"
    assert deployment.inbound() == [] and deployment.tasks() == []
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == 1 and deployment.folder_count("Processed") == 1
