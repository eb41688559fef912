"""forget and export against a populated database: the person is nowhere afterwards (database
file and blob store), while the counts per type and queue stay as they were."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatchd.cli import main as cli
from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.errors import DispatchdError
from dispatchd.flows.erasure import addresses_of, erasure_secret, forget
from dispatchd.flows.export import export
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.store.db import write_turn
from tests.conftest import write_config

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
BOB, ALICE = "bob@acme.test", "alice@acme.test"
SECRET_WORDS = "the quarterly plan for Bob's team"
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    return build_deps(load_config(write_config(tmp_path, mailbox="requests@agency.test")), clock=FrozenClock(NOW))


def submit(deps: IntakeDeps, sender: str, subject: str, body: str, attachment: bytes | None = None,
           cc: str | None = None) -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    if cc:
        message["Cc"] = cc
    uid = next(_uids)
    message["Message-ID"] = f"<erase-{uid}@client.test>"
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="plan.pdf")
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    deps.clock.advance(minutes=5)  # type: ignore[attr-defined]
    return outcome.task_id


def populate(deps: IntakeDeps) -> None:
    """Two people's mail, received at NOW (their blob files dated so, not by the real clock)."""
    submit(deps, f"Bob Stone <{BOB}>", "[Acme] - Content - Blog post", f"Please write {SECRET_WORDS}.",
           attachment=b"%PDF shared brief")
    submit(deps, f"Bob Stone <{BOB}>", "[Acme] - Design - Logo", "A new logo, Bob Stone")
    submit(deps, f"Alice Liddell <{ALICE}>", "[Acme] - Content - Newsletter", "Alice's newsletter",
           attachment=b"%PDF shared brief", cc=f"Bob Stone <{BOB}>")
    submit(deps, f"Alice Liddell <{ALICE}>", "[Acme] - Design - Banner", "Alice's banner")
    for digest in deps.blobs.digests():
        os.utime(deps.blobs.path_of(digest), (NOW.timestamp(),) * 2)


def statistics(deps: IntakeDeps) -> list[tuple]:  # type: ignore[type-arg]
    with deps.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT type, queue, status, priority, sla, created_at, due_at, count(*) FROM task "
            "GROUP BY type, queue, status, priority, sla, created_at, due_at ORDER BY created_at"))]


def mentions(path: Path, *needles: bytes) -> list[str]:
    """Files under ``path`` (or ``path`` itself) whose bytes contain a needle, any case."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return [f"{p.name}: {n!r}" for p in files for n in needles if n.lower() in p.read_bytes().lower()]


def database_files(deps: IntakeDeps) -> list[Path]:
    database = Path(str(deps.engine.url.database))
    return [p for p in (database, Path(f"{database}-wal")) if p.exists()]


def test_forget_leaves_the_address_nowhere_and_the_statistics_as_they_were(deps: IntakeDeps, tmp_path: Path) -> None:
    populate(deps)
    before = statistics(deps)
    blobs_before = set(deps.blobs.digests())
    needles = (BOB.encode(), b"Bob Stone", SECRET_WORDS.encode())
    assert [m for f in database_files(deps) for m in mentions(f, *needles)] and mentions(deps.blobs.root, *needles)
    erasure = forget(deps.engine, deps.blobs, BOB, erasure_secret(deps.engine), deps.clock.now())
    assert erasure.tasks == 2 and erasure.wal_emptied
    assert erasure.rows["task"] == 2 and erasure.rows["task_follower"] == 1, "Bob followed Alice's newsletter"
    assert erasure.rows["redacted_mail"] == 1, "Alice's newsletter had Bob in Cc: its .eml is a redacted copy now"
    assert erasure.blobs_removed == 3, "Bob's two messages and the original of Alice's; the brief stays (hers too)"
    deps.engine.dispose()
    for path in database_files(deps):
        assert mentions(path, *needles) == [], path
    assert mentions(deps.blobs.root, *needles) == []
    assert statistics(deps) == before, "dates, types, queues, statuses, SLA outcomes stay"
    brief = __import__("hashlib").sha256(b"%PDF shared brief").hexdigest()
    assert brief in blobs_before and deps.blobs.path_of(brief).exists()
    with deps.engine.connect() as connection:
        senders = sorted(r[0] for r in connection.execute(text("SELECT sender FROM task")))
        assert senders.count(ALICE) == 2 and senders.count(erasure.pseudonym) == 2
        erased = connection.execute(text("SELECT count(*) FROM task_event WHERE kind = 'erased'")).scalar()
        run = connection.execute(text("SELECT kind, subject, finished_at FROM lifecycle_run")).one()
    assert erased == 2 and run[0] == "forget" and run[1] == erasure.pseudonym and run[2] is not None
    again = forget(deps.engine, deps.blobs, BOB, erasure_secret(deps.engine), deps.clock.now())
    assert sum(again.rows.values()) == 0 and again.tasks == 2, ("nothing left to do, the same tasks found", again)


def test_a_dry_run_changes_nothing(deps: IntakeDeps) -> None:
    populate(deps)
    before = statistics(deps), sorted(deps.blobs.digests())
    dry = forget(deps.engine, deps.blobs, BOB, erasure_secret(deps.engine), deps.clock.now(), dry_run=True)
    assert dry.tasks == 2 and dry.rows["inbound_message"] == 2
    assert (statistics(deps), sorted(deps.blobs.digests())) == before
    assert [m for f in database_files(deps) for m in mentions(f, BOB.encode())]


def test_export_gives_the_person_their_rows_mail_and_files(deps: IntakeDeps, tmp_path: Path) -> None:
    populate(deps)
    done = export(deps.engine, deps.blobs, BOB, tmp_path / "bob", NOW)
    document = json.loads((tmp_path / "bob" / "person.json").read_text())
    assert {t["subject"] for t in document["tables"]["task"]} == {"Blog post", "Logo"} or \
        len(document["tables"]["task"]) == 2
    assert done.rows["task_follower"] == 1 and done.files == 1
    received = [p.read_bytes() for p in (tmp_path / "bob" / "mail").glob("in-*.eml")]
    assert len(received) == 2 and any(SECRET_WORDS.encode() in m for m in received)
    assert list((tmp_path / "bob" / "mail").glob("out-*.eml")), "the confirmations sent to Bob"
    forget(deps.engine, deps.blobs, BOB, erasure_secret(deps.engine), deps.clock.now())
    after = export(deps.engine, deps.blobs, BOB, tmp_path / "after", NOW)
    assert not any(after.rows.values())


def test_a_client_stands_for_every_address_of_its_tasks(deps: IntakeDeps) -> None:
    populate(deps)
    assert addresses_of(deps.engine, "acme") == [ALICE, BOB]
    assert addresses_of(deps.engine, BOB.upper()) == [BOB]


def test_forget_waits_for_mail_being_sent_to_the_person(deps: IntakeDeps) -> None:
    populate(deps)
    with write_turn(deps.engine), deps.engine.begin() as connection:
        connection.execute(text("UPDATE outbox SET status = 'sending' WHERE recipients LIKE :to"), {"to": f"%{BOB}%"})
    with pytest.raises(DispatchdError, match="being sent"):
        forget(deps.engine, deps.blobs, BOB, erasure_secret(deps.engine), deps.clock.now())
    assert [m for f in database_files(deps) for m in mentions(f, BOB.encode())], "nothing changed"


def test_the_commands(deps: IntakeDeps, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(deps)
    config = str(deps.config.path)
    assert cli(["export", BOB, "--out", str(tmp_path / "out"), "--config", config]) == 0
    assert cli(["forget", BOB, "--dry-run", "--config", config]) == 0
    assert "would erase 2 task(s)" in capsys.readouterr().out
    assert cli(["forget", BOB, "--config", config]) == 0
    assert "erased 2 task(s)" in capsys.readouterr().out
    with sqlite3.connect(Path(str(deps.engine.url.database))) as db:
        assert db.execute("SELECT count(*) FROM task WHERE sender = ?", (BOB,)).fetchone()[0] == 0
