"""Pruning, erasure, export and backup on PostgreSQL (the same flows as on SQLite)."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.config.model import RetentionConfig
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.backup import backup
from dispatchd.flows.erasure import erasure_secret, forget
from dispatchd.flows.export import export
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.restore import verify_backup
from dispatchd.flows.retention import prune
from tests.conftest import write_config

pytestmark = pytest.mark.integration
START = datetime(2025, 1, 6, 10, tzinfo=timezone.utc)
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path, postgres_url: str) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", database_url=postgres_url))
    built = build_deps(config, clock=FrozenClock(START))
    yield built  # type: ignore[misc]
    built.engine.dispose()


def submit(deps: IntakeDeps, sender: str, body: str, attachment: bytes) -> int:
    message = EmailMessage()
    message["From"], message["To"] = sender, "requests@agency.test"
    message["Subject"], message["Message-ID"] = "[Acme] - Content - Blog post", f"<pg-{next(_uids)}@client.test>"
    message["Cc"] = "Carol Danvers <carol@acme.test>"
    message.set_content(body)
    message.add_attachment(attachment, maintype="application", subtype="pdf", filename="brief.pdf")
    outcome = ingest(RawMail("INBOX", 1, next(_uids), message.as_bytes()), deps)
    assert outcome.task_id is not None
    deps.clock.advance(minutes=5)  # type: ignore[attr-defined]
    return outcome.task_id


def rows(deps: IntakeDeps, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with deps.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(sql))]


def age_blobs(deps: IntakeDeps) -> None:
    for digest in deps.blobs.digests():
        os.utime(deps.blobs.path_of(digest), (START.timestamp(),) * 2)


def test_prune_forget_export_and_backup_on_postgresql(deps: IntakeDeps, tmp_path: Path) -> None:
    closed = submit(deps, "Bob Stone <bob@acme.test>", "Bob's secret plan", b"%PDF one")
    submit(deps, "Alice <alice@acme.test>", "Alice's plan", b"%PDF two")
    submit(deps, "Bob Stone <bob@acme.test>", "Bob again", b"%PDF three")
    age_blobs(deps)
    with deps.engine.begin() as connection:
        connection.execute(text("UPDATE task SET status = 'closed' WHERE id = :id"), {"id": closed})
    statistics = "SELECT type, queue, status, count(*) FROM task GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    before = rows(deps, statistics)

    exported = export(deps.engine, deps.blobs, "bob@acme.test", tmp_path / "bob", START)
    assert exported.rows["task"] == 2 and exported.emails >= 2 and exported.files == 2

    later = START + timedelta(days=500)
    report = prune(deps.engine, deps.blobs, RetentionConfig(raw_mail=timedelta(days=400), batch=10), later)
    assert report.counts["raw_mail"] == 1 and report.blobs_removed == 1

    erasure = forget(deps.engine, deps.blobs, "bob@acme.test", erasure_secret(deps.engine), later, batch=10)
    assert erasure.tasks == 2 and erasure.wal_emptied is None
    assert rows(deps, statistics) == before
    for table, column in (("task", "sender"), ("task", "description"), ("inbound_message", "sender"),
                          ("outbox", "recipients"), ("task_event", "actor"), ("task_event", "detail")):
        assert rows(deps, f"SELECT count(*) FROM {table} WHERE lower({column}) LIKE '%bob%'") == [(0,)], column
    assert rows(deps, "SELECT count(*) FROM outbox WHERE position('bob@acme.test'::bytea in raw) > 0") == [(0,)]
    assert not [p for p in deps.blobs.root.rglob("*") if p.is_file() and b"bob@acme.test" in p.read_bytes()]
    assert rows(deps, "SELECT count(*) FROM task WHERE sender = 'alice@acme.test'") == [(1,)]

    made = backup(deps.engine, deps.blobs, tmp_path / "backups", later)
    assert made.postgres_guidance and "pg_dump" in made.postgres_guidance
    assert verify_backup(made.snapshot).ok and made.blobs == len(list(deps.blobs.digests()))
