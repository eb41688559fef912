"""Pruning under [retention] with an injected clock, against a real SQLite database and blob store."""

from __future__ import annotations

import itertools
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
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.quarantine import quarantine
from dispatchd.flows.retention import prune
from dispatchd.flows.reports import health_report
from dispatchd.store.db import write_turn

START = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    from tests.conftest import write_config

    return build_deps(load_config(write_config(tmp_path, mailbox="requests@agency.test")), clock=FrozenClock(START))


def clock(deps: IntakeDeps) -> FrozenClock:
    return deps.clock  # type: ignore[return-value]


def submit(deps: IntakeDeps, attachment: bytes | None = None, sender: str = "bob@acme.test") -> int:
    message = EmailMessage()
    message["From"], message["To"] = sender, "requests@agency.test"
    message["Subject"] = "[Acme] - Content - Blog post"
    uid = next(_uids)
    message["Message-ID"] = f"<keep-{uid}@client.test>"
    message.set_content(f"Please, number {uid}.")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="brief.pdf")
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def sql(deps: IntakeDeps, statement: str, **params: object) -> list[tuple]:  # type: ignore[type-arg]
    with write_turn(deps.engine), deps.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return [tuple(r) for r in result] if result.returns_rows else []


def close(deps: IntakeDeps, task_id: int) -> None:
    sql(deps, "UPDATE task SET status = 'closed', updated_at = :at WHERE id = :id",
        at=clock(deps).now().replace(tzinfo=None), id=task_id)


def blob_count(deps: IntakeDeps) -> int:
    return len(list(deps.blobs.digests()))


def named(deps: IntakeDeps) -> set[str]:
    return {d for (d,) in sql(deps, "SELECT raw_sha256 FROM inbound_message UNION SELECT sha256 FROM attachment") if d}


def test_raw_mail_and_attachments_of_closed_tasks_go_those_of_open_tasks_stay(deps: IntakeDeps) -> None:
    closed = submit(deps, attachment=b"%PDF shared")
    open_task = submit(deps, attachment=b"%PDF only the open one")
    close(deps, closed)
    clock(deps).advance(days=500)
    recent = submit(deps, attachment=b"%PDF shared")  # the same file, sent again: the blob is shared
    report = prune(deps.engine, deps.blobs, RetentionConfig(raw_mail=timedelta(days=400),
                                                            attachments=timedelta(days=400)), clock(deps).now())
    assert (report.counts["raw_mail"], report.counts["attachments"]) == (1, 1)
    rows = dict(sql(deps, "SELECT task_id, raw_sha256 FROM inbound_message"))
    assert rows[closed] == "" and rows[open_task] and rows[recent]
    assert report.blobs_removed == 1, "the old raw mail; the shared attachment is still named by the recent task"
    assert all(deps.blobs.path_of(d).exists() for d in named(deps))
    assert blob_count(deps) == len(named(deps))
    assert sql(deps, "SELECT filename FROM attachment WHERE task_id = :id", id=closed) == [("brief.pdf",)], \
        "what was attached is still recorded; the file is gone"


def test_closed_tasks_go_with_everything_recorded_about_them(deps: IntakeDeps) -> None:
    old_closed = submit(deps, attachment=b"%PDF old")
    old_open = submit(deps)
    close(deps, old_closed)
    clock(deps).advance(days=8 * 365)
    newer = submit(deps)
    close(deps, newer)
    before = blob_count(deps)
    report = prune(deps.engine, deps.blobs, RetentionConfig(closed_tasks=timedelta(days=7 * 365)), clock(deps).now())
    assert report.counts["closed_tasks"] == 1
    assert {t for (t,) in sql(deps, "SELECT id FROM task")} == {old_open, newer}
    for table in ("task_event", "inbound_message", "attachment", "outbox", "request_text"):
        assert sql(deps, f"SELECT count(*) FROM {table} WHERE task_id = :id", id=old_closed) == [(0,)], table
    assert blob_count(deps) == before - 2, "its raw mail and its attachment"
    assert sql(deps, "PRAGMA foreign_key_check") == []


def test_quarantined_mail_and_sent_mail_bytes(deps: IntakeDeps) -> None:
    task_id = submit(deps)
    broken = b"Subject: broken\r\n\r\nunreadable"
    quarantine(RawMail("INBOX", 1, next(_uids), broken), deps.blobs.put(broken), "test: broken", deps,
               deps.config.mailbox)
    sql(deps, "UPDATE outbox SET status = 'sent', sent_at = :at", at=START.replace(tzinfo=None))
    clock(deps).advance(days=100)
    report = prune(deps.engine, deps.blobs, RetentionConfig(quarantine=timedelta(days=90),
                                                            outbox_sent=timedelta(days=90)), clock(deps).now())
    assert report.counts["quarantine"] == 1 and report.counts["outbox_sent"] >= 1
    assert sql(deps, "SELECT raw_sha256 FROM inbound_message WHERE disposition = 'quarantined'") == [("",)]
    assert sql(deps, "SELECT count(*) FROM outbox WHERE length(raw) > 0") == [(0,)]
    assert sql(deps, "SELECT count(*) FROM outbox WHERE task_id = :id", id=task_id)[0][0] >= 1, \
        "the rows stay: late replies are matched by their Message-ID"
    assert report.bytes["outbox_sent"] > 0


def test_a_dry_run_counts_what_a_real_run_then_removes(deps: IntakeDeps) -> None:
    for _ in range(25):
        close(deps, submit(deps))
    submit(deps)
    clock(deps).advance(days=500)
    retention = RetentionConfig(raw_mail=timedelta(days=400), batch=10)
    dry = prune(deps.engine, deps.blobs, retention, clock(deps).now(), dry_run=True)
    assert dry.counts["raw_mail"] == 25 and dry.bytes["raw_mail"] > 0
    assert len(named(deps)) == 26 and sql(deps, "SELECT count(*) FROM lifecycle_run") == [(0,)]
    real = prune(deps.engine, deps.blobs, retention, clock(deps).now())
    assert real.counts["raw_mail"] == 25 and real.blobs_removed == 25
    (counts, freed, finished), = sql(deps, "SELECT counts, bytes_freed, finished_at FROM lifecycle_run")
    assert counts == '{"raw_mail": 25}' and freed == real.bytes_freed > 0 and finished is not None
    assert prune(deps.engine, deps.blobs, retention, clock(deps).now()).counts["raw_mail"] == 0, "nothing twice"
    assert health_report(deps).pruned_bytes == real.bytes_freed


def test_a_blob_intake_stored_again_around_its_release_is_kept(deps: IntakeDeps) -> None:
    old = submit(deps, attachment=b"%PDF comes back")
    close(deps, old)
    clock(deps).advance(days=500)
    retention = RetentionConfig(attachments=timedelta(days=400))
    digest = next(d for (d,) in sql(deps, "SELECT sha256 FROM attachment"))
    # As if intake stored the same file just now, its row not yet committed.
    deps.blobs.put(deps.blobs.get(digest))
    import os
    os.utime(deps.blobs.path_of(digest), (clock(deps).now().timestamp(),) * 2)
    report = prune(deps.engine, deps.blobs, retention, clock(deps).now())
    assert report.blobs_waiting == 1 and deps.blobs.path_of(digest).exists()
    assert sql(deps, "SELECT count(*) FROM blob_release") == [(1,)], "left for the next run"
