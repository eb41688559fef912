"""``dispatchd verify-backup SRC`` and ``dispatchd restore SRC``.

SRC is a snapshot (``…/snapshots/<time>``) or a backup directory (its newest snapshot).
Restoring writes only into an empty data directory and a database file that does not exist;
it copies the blobs first and moves the database into place last, so a restore cut short
leaves no database, and running it again finishes it (a marker file says one is under way).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from dispatchd.errors import DispatchdError
from dispatchd.flows.backup import BLOB_LIST, DATABASE, MANIFEST, copy_file, file_sha256, snapshots_in
from dispatchd.store.snapshot import (fsync_path, integrity_problems, named_blobs, open_copy, sqlite_query,
                                      sqlite_tables, sync_filesystem, table_counts)

log = structlog.get_logger("dispatchd.backup")

RESTORING = ".restoring"
# What a data directory may hold and still count as empty: the lock files a stopped daemon leaves.
_IGNORABLE = {"dispatchd.lock", "maintenance.lock"}


@dataclass(frozen=True)
class Verification:
    snapshot: Path
    problems: tuple[str, ...]
    counts: dict[str, int]
    blobs: int
    kind: str  # sqlite | postgresql

    @property
    def ok(self) -> bool:
        return not self.problems


def find_snapshot(source: Path) -> Path:
    """The snapshot ``source`` names, or the newest one in the backup directory ``source``."""
    if (source / MANIFEST).is_file():
        return source
    found = snapshots_in(source)
    if not found:
        raise DispatchdError(f"{source}: no complete backup here (no manifest.json, no snapshots/)")
    return found[-1]


def verify_backup(source: Path) -> Verification:
    """Check a snapshot against its manifest: the database's checksum, its integrity_check, its
    rows per table, and every blob it names present in the backup with the right content."""
    snapshot = find_snapshot(source)
    problems: list[str] = []
    try:
        manifest = json.loads((snapshot / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return Verification(snapshot, (f"manifest unreadable: {exc}",), {}, 0, "unknown")
    database = manifest["database"]
    listing = (snapshot / BLOB_LIST).read_bytes() if (snapshot / BLOB_LIST).is_file() else b""
    if hashlib.sha256(listing).hexdigest() != manifest["blobs"]["sha256"]:
        problems.append(f"{BLOB_LIST} differs from the manifest's checksum")
    listed = set(listing.decode().split())
    counts: dict[str, int] = manifest["counts"]
    if database["kind"] == "sqlite":
        problems += _verify_database(snapshot, database, counts, listed, set(manifest.get("missing_blobs", ())))
    store = snapshot.parent.parent / "blobs"
    for digest in sorted(listed):
        path = store / digest[:2] / digest
        if not path.is_file():
            problems.append(f"blob {digest} missing")
        elif file_sha256(path) != digest:
            problems.append(f"blob {digest} damaged (its content no longer has that checksum)")
    return Verification(snapshot, tuple(problems), counts, len(listed), database["kind"])


def _verify_database(snapshot: Path, database: dict[str, object], counts: dict[str, int], listed: set[str],
                     known_missing: set[str]) -> list[str]:
    path = snapshot / DATABASE
    if not path.is_file():
        return [f"{DATABASE} missing"]
    if file_sha256(path) != database["sha256"]:
        return [f"{DATABASE} differs from the manifest's checksum"]
    copy = open_copy(path)
    try:
        problems = [f"integrity_check: {p}" for p in integrity_problems(copy)]
        query = sqlite_query(copy)
        found = table_counts(query, sqlite_tables(copy))
        if found != counts:
            problems.append(f"rows per table {found} differ from the manifest's {counts}")
        unlisted = named_blobs(query) - listed - known_missing
        problems += [f"blob {d} named by the database but not in the backup" for d in sorted(unlisted)]
    finally:
        copy.close()
    return problems


@dataclass(frozen=True)
class Restored:
    snapshot: Path
    database: Path | None
    blobs: int
    counts: dict[str, int]


def restore(source: Path, database: Path | None, data_dir: Path) -> Restored:
    """Restore a verified snapshot into ``data_dir`` and the SQLite file ``database`` (None:
    PostgreSQL, whose dump is restored with pg_restore; only the blobs are copied here)."""
    verification = verify_backup(source)
    if not verification.ok:
        raise DispatchdError(f"{verification.snapshot} does not verify, not restoring it: "
                             + "; ".join(verification.problems[:5]))
    snapshot = verification.snapshot
    _refuse_unless_empty(database, data_dir)
    resuming = (data_dir / RESTORING).exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RESTORING).write_text(str(snapshot))
    store = snapshot.parent.parent / "blobs"
    digests = (snapshot / BLOB_LIST).read_text().split()
    for digest in digests:
        target = data_dir / "blobs" / digest[:2] / digest
        # Resuming: a blob copied before the crash may not have reached the disk whole.
        if not target.exists() or (resuming and file_sha256(target) != digest):
            copy_file(store / digest[:2] / digest, target, durable=False)
    if digests:
        sync_filesystem(data_dir / "blobs")  # once for all of them, before the database goes in
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        copy_file(snapshot / DATABASE, database)  # whole or absent, moved into place last
        fsync_path(database.parent)
    (data_dir / RESTORING).unlink()
    log.info("backup.restored", snapshot=str(snapshot), database=str(database), blobs=len(digests))
    return Restored(snapshot, database, len(digests), verification.counts)


def _refuse_unless_empty(database: Path | None, data_dir: Path) -> None:
    """Never overwrite data: the database must not exist, the data directory must hold nothing
    (but the lock files a stopped daemon leaves, or the beginnings of a restore cut short)."""
    if database is not None:
        for path in (database, Path(f"{database}-wal")):
            if path.exists() and path.stat().st_size > 0:
                raise DispatchdError(f"{path} exists: restore writes only a new database (move it away first)")
    if not data_dir.exists():
        return
    resuming = (data_dir / RESTORING).exists()
    allowed = _IGNORABLE | ({RESTORING, "blobs"} if resuming else set())
    others = sorted(p.name for p in data_dir.iterdir() if p.name not in allowed)
    if others:
        raise DispatchdError(f"{data_dir} is not empty ({', '.join(others[:5])}): restore writes only into an "
                             f"empty data directory")
    lock = data_dir / "dispatchd.lock"
    if lock.exists():
        handle = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DispatchdError(f"a dispatchd is running on {data_dir}: stop it first") from None
        finally:
            os.close(handle)
