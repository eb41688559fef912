"""Backup, verification, restore and rotation against a real SQLite database and blob store."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.errors import DispatchdError
from dispatchd.flows.backup import backup, backup_job, snapshots_in
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.restore import restore, verify_backup
from dispatchd.store.snapshot import sqlite_file
from tests.conftest import write_config

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    (tmp_path / "live").mkdir()
    config = load_config(write_config(tmp_path / "live", mailbox="requests@agency.test",
                                      extra=f'[backup]\ndir = "{tmp_path / "backups"}"\nkeep = 2\n'))
    return build_deps(config, clock=FrozenClock(NOW))


def submit(deps: IntakeDeps, subject: str = "[Acme] - Content - Blog post", attachment: bytes | None = None) -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "bob@acme.test", "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<backup-{uid}@client.test>"
    message.set_content("Please.")
    if attachment is not None:
        message.add_attachment(attachment, maintype="application", subtype="pdf", filename="brief.pdf")
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def tasks_in(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM task").fetchone()[0]


def test_backup_verifies_and_restores_into_an_empty_data_directory(deps: IntakeDeps, tmp_path: Path) -> None:
    for n in range(3):
        submit(deps, attachment=b"%PDF shared brief" if n else None)
    report = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert report.counts["task"] == 3
    assert report.blobs == 4, "three raw messages and one attachment (the same bytes twice)"
    manifest = json.loads((report.snapshot / "manifest.json").read_text())
    assert manifest["counts"]["task"] == 3 and manifest["blobs"]["count"] == 4
    assert verify_backup(tmp_path / "b").ok
    target = tmp_path / "restored"
    done = restore(tmp_path / "b", target / "dispatchd.db", target / "data")
    assert done.blobs == 4 and tasks_in(target / "dispatchd.db") == 3
    assert sorted(p.name for p in (target / "data" / "blobs").glob("??/*")) == sorted(deps.blobs.digests())
    assert not (target / "data" / ".restoring").exists()


def test_a_second_backup_copies_only_new_blobs(deps: IntakeDeps, tmp_path: Path) -> None:
    submit(deps)
    first = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    submit(deps)
    second = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert (first.blobs_copied, second.blobs, second.blobs_copied) == (1, 2, 1)
    assert first.snapshot != second.snapshot, "two backups in one second get two names"


def test_restore_refuses_an_existing_database_or_a_non_empty_data_directory(deps: IntakeDeps, tmp_path: Path) -> None:
    submit(deps)
    backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    live_database = sqlite_file(deps.engine)
    assert live_database is not None
    with pytest.raises(DispatchdError, match="exists"):
        restore(tmp_path / "b", live_database, tmp_path / "elsewhere")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(DispatchdError, match="not empty"):
        restore(tmp_path / "b", tmp_path / "new.db", occupied)
    assert not (tmp_path / "new.db").exists()


def test_verification_finds_a_damaged_blob_a_missing_blob_and_a_changed_database(deps: IntakeDeps,
                                                                                tmp_path: Path) -> None:
    submit(deps)
    submit(deps, attachment=b"%PDF brief")
    report = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    blobs = sorted((tmp_path / "b" / "blobs").glob("??/*"))
    blobs[0].write_bytes(b"bit rot")
    blobs[1].unlink()
    with sqlite3.connect(report.snapshot / "dispatchd.db") as connection:
        connection.execute("DELETE FROM task_event")
    problems = verify_backup(report.snapshot).problems
    assert any("damaged" in p for p in problems) and any("missing" in p for p in problems)
    assert any("dispatchd.db differs" in p for p in problems)
    with pytest.raises(DispatchdError, match="does not verify"):
        restore(report.snapshot, tmp_path / "new.db", tmp_path / "new-data")
    assert not (tmp_path / "new.db").exists()


def test_a_backup_cut_short_leaves_no_snapshot_and_the_next_one_clears_it(deps: IntakeDeps, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    submit(deps)
    import dispatchd.flows.backup as flow

    def disk_full(*_args: object, **_kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flow, "copy_file", disk_full)
    with pytest.raises(OSError):
        backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert snapshots_in(tmp_path / "b") == [] and list((tmp_path / "b" / "snapshots").glob(".partial-*"))
    with pytest.raises(DispatchdError, match="no complete backup"):
        verify_backup(tmp_path / "b")
    monkeypatch.undo()
    report = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert verify_backup(report.snapshot).ok
    assert not list((tmp_path / "b" / "snapshots").glob(".partial-*"))


def test_the_scheduled_backup_keeps_the_newest_and_drops_blobs_no_snapshot_needs(deps: IntakeDeps) -> None:
    clock: FrozenClock = deps.clock  # type: ignore[assignment]
    submit(deps, attachment=b"%PDF only in the first")
    first_blobs = set(deps.blobs.digests())
    for _ in range(3):
        backup_job(deps)
        clock.advance(days=1)
    destination = deps.config.backup.dir
    assert destination is not None
    assert len(snapshots_in(destination)) == 2, "[backup] keep = 2"
    # The first snapshot's blobs are still named by the later ones: none removed.
    assert first_blobs <= {p.name for p in (destination / "blobs").glob("??/*")}
    assert all(verify_backup(s).ok for s in snapshots_in(destination))


def test_rotation_removes_blobs_only_the_deleted_snapshots_listed(deps: IntakeDeps, tmp_path: Path) -> None:
    submit(deps)
    backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    # A blob in the backup store that no kept snapshot lists (as after pruning removed its row).
    stray = tmp_path / "b" / "blobs" / "ab" / ("ab" + "0" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"old")
    report = backup(deps.engine, deps.blobs, tmp_path / "b", NOW + timedelta(days=1), keep=1)
    assert len(report.rotated) == 1 and report.blobs_removed == 1 and not stray.exists()
    assert verify_backup(tmp_path / "b").ok


def test_a_target_that_disappears_mid_copy_fails_the_backup_and_nothing_live_is_touched(
        deps: IntakeDeps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import dispatchd.flows.backup as flow

    for n in range(3):
        submit(deps, attachment=f"%PDF {n}".encode())
    live = sorted(deps.blobs.digests())
    real_copy, copied = flow.copy_file, []

    def unmounted_after_two(source: Path, target: Path, durable: bool = True) -> int:
        if len(copied) == 2:
            shutil.rmtree(tmp_path / "b")  # the USB disk is pulled
        copied.append(target)
        return real_copy(source, target, durable)

    monkeypatch.setattr(flow, "copy_file", unmounted_after_two)
    with pytest.raises(OSError):
        backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert sorted(deps.blobs.digests()) == live and all(deps.blobs.path_of(d).exists() for d in live)
    live_database = sqlite_file(deps.engine)
    assert live_database is not None and tasks_in(live_database) == 3
    monkeypatch.undo()
    assert verify_backup(backup(deps.engine, deps.blobs, tmp_path / "b", NOW).snapshot).ok


def test_a_restore_cut_short_is_finished_by_running_it_again(deps: IntakeDeps, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import dispatchd.flows.restore as flow

    for n in range(3):
        submit(deps, attachment=f"%PDF {n}".encode())
    backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    real_copy, calls = flow.copy_file, []

    def crash_on_the_fourth(source: Path, target: Path, durable: bool = True) -> int:
        calls.append(target)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real_copy(source, target, durable)

    monkeypatch.setattr(flow, "copy_file", crash_on_the_fourth)
    target = tmp_path / "restored"
    with pytest.raises(OSError):
        restore(tmp_path / "b", target / "dispatchd.db", target / "data")
    assert not (target / "dispatchd.db").exists() and (target / "data" / ".restoring").exists()
    monkeypatch.undo()
    done = restore(tmp_path / "b", target / "dispatchd.db", target / "data")
    assert done.blobs == 6 and tasks_in(target / "dispatchd.db") == 3
    assert not (target / "data" / ".restoring").exists()


def test_blobs_a_crashed_backup_was_copying_are_copied_again(deps: IntakeDeps, tmp_path: Path) -> None:
    submit(deps)
    digest = next(deps.blobs.digests())
    # What a power cut can leave: the blob's name and size, not its bytes, and the run's journal.
    copy = tmp_path / "b" / "blobs" / digest[:2] / digest
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"\0" * deps.blobs.path_of(digest).stat().st_size)
    partial = tmp_path / "b" / "snapshots" / ".partial-20261123T090000Z"
    partial.mkdir(parents=True)
    (partial / "copying.txt").write_text(f"{digest}\n")
    report = backup(deps.engine, deps.blobs, tmp_path / "b", NOW)
    assert report.blobs_copied == 1 and copy.read_bytes() == deps.blobs.get(digest)
    assert verify_backup(report.snapshot).ok
