"""``dispatchd backup DEST`` and the scheduled backup: a consistent copy of the running
database and the blobs it names, a manifest, and rotation.

A backup directory holds ``snapshots/<UTC time>/`` (``dispatchd.db``, ``blobs.txt``,
``manifest.json``) and one ``blobs/`` shared by all of them: blobs are content-addressed, so
each backup copies only the blobs the previous ones do not have. A snapshot is built under
``snapshots/.partial-…`` and renamed when complete, so a full disk or a target that vanishes
mid-copy leaves no snapshot that looks whole; the next run clears the leftover.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from dispatchd import __version__
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.store.blobs import BlobStore
from dispatchd.store.snapshot import (copy_database, engine_query, fsync_path, named_blobs, open_copy,
                                      sqlite_file, sqlite_query, sqlite_tables, sync_filesystem, table_counts)

log = structlog.get_logger("dispatchd.backup")

MANIFEST, DATABASE, BLOB_LIST = "manifest.json", "dispatchd.db", "blobs.txt"
COPYING = "copying.txt"  # in a partial snapshot: the blobs this run is copying
PARTIAL = ".partial-"


@dataclass(frozen=True)
class BackupReport:
    snapshot: Path
    counts: dict[str, int]
    blobs: int
    blobs_copied: int
    bytes_copied: int
    seconds: float
    missing_blobs: tuple[str, ...] = ()     # named by a row, absent from the live store already
    rotated: tuple[Path, ...] = ()
    postgres_guidance: str | None = None    # PostgreSQL: how to dump the database itself
    blobs_removed: int = field(default=0)   # by rotation: named by no snapshot kept


def backup(engine: Engine, blobs: BlobStore, destination: Path, now: datetime, keep: int | None = None) -> BackupReport:
    """Copy the database (as of one commit) and the blobs it names into ``destination``;
    ``keep``: then delete all but the newest ``keep`` snapshots."""
    started = time.monotonic()
    snapshots = destination / "snapshots"
    with blobs.maintenance():  # pruning and erasure wait: the list of blobs must stay true
        snapshots.mkdir(parents=True, exist_ok=True)
        _clear_partials(snapshots, destination / "blobs")
        name = _free_name(snapshots, now.strftime("%Y%m%dT%H%M%SZ"))
        partial = snapshots / f"{PARTIAL}{name}"
        partial.mkdir()
        database_file = sqlite_file(engine)
        if database_file is not None:
            copy_database(database_file, partial / DATABASE)
            copy = open_copy(partial / DATABASE)
            try:
                query = sqlite_query(copy)
                counts, named = table_counts(query, sqlite_tables(copy)), named_blobs(query)
                schema = _schema_version(query)
            finally:
                copy.close()
            database = {"kind": "sqlite", "file": DATABASE, "sha256": file_sha256(partial / DATABASE),
                        "bytes": (partial / DATABASE).stat().st_size}
            guidance = None
        else:
            with engine.connect() as connection:
                query = engine_query(connection)
                counts, named = table_counts(query, inspect(connection).get_table_names()), named_blobs(query)
                schema = _schema_version(query)
            # Every blob in the store, not only those named now: a dump taken before this command
            # names no blob that is not in the store yet.
            named |= set(blobs.digests())
            database = {"kind": "postgresql"}
            guidance = postgres_guidance(snapshots / name)
        present = sorted(d for d in named if blobs.path_of(d).exists())
        missing = tuple(sorted(named - set(present)))
        copied, copied_bytes = _copy_blobs(blobs, destination / "blobs", present, partial)
        listing = "".join(f"{d}\n" for d in present).encode()
        _write_file(partial / BLOB_LIST, listing)
        manifest = {"format": 1, "created_at": now.isoformat(), "dispatchd": __version__, "schema_version": schema,
                    "database": database, "counts": counts,
                    "blobs": {"list": BLOB_LIST, "sha256": hashlib.sha256(listing).hexdigest(), "count": len(present),
                              "bytes": sum(blobs.path_of(d).stat().st_size for d in present)},
                    "missing_blobs": list(missing)}
        _write_file(partial / MANIFEST, json.dumps(manifest, indent=2).encode())
        fsync_path(partial)
        os.rename(partial, snapshots / name)
        fsync_path(snapshots)
        rotated, removed = rotate(destination, keep) if keep else ((), 0)
    report = BackupReport(snapshots / name, counts, len(present), copied, copied_bytes, time.monotonic() - started,
                          missing, rotated, guidance, removed)
    log.info("backup.done", snapshot=str(report.snapshot), tasks=counts.get("task", 0), blobs=len(present),
             blobs_copied=copied, bytes_copied=copied_bytes, missing_blobs=len(missing), rotated=len(rotated))
    return report


def backup_job(deps: IntakeDeps) -> Counter[str]:
    """The scheduled backup: into ``[backup] dir``, keeping ``keep``; nothing without a dir."""
    settings = deps.config.backup
    if settings.dir is None:
        return Counter()
    report = backup(deps.engine, deps.blobs, settings.dir, deps.clock.now(), settings.keep)
    return Counter(snapshots=1, blobs_copied=report.blobs_copied, rotated=len(report.rotated))


def snapshots_in(destination: Path) -> list[Path]:
    """The complete snapshots of a backup directory, oldest first."""
    folder = destination / "snapshots"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / MANIFEST).is_file())


def rotate(destination: Path, keep: int) -> tuple[tuple[Path, ...], int]:
    """Delete all but the newest ``keep`` snapshots, then the blobs none of the rest lists.
    Returns the snapshots deleted and the number of blobs removed."""
    existing = snapshots_in(destination)
    doomed = tuple(existing[:-keep]) if len(existing) > keep else ()
    for snapshot in doomed:
        # The manifest first: a rotation cut short leaves no snapshot that looks complete.
        (snapshot / MANIFEST).unlink()
        shutil.rmtree(snapshot)
    wanted: set[str] = set()
    for snapshot in existing[len(doomed):]:
        wanted.update((snapshot / BLOB_LIST).read_text().split())
    removed = 0
    store = destination / "blobs"
    for path in store.glob("??/*") if store.is_dir() else ():
        if path.name.startswith(".tmp-"):
            path.unlink()  # a copy cut short
        elif path.name not in wanted:
            path.unlink()
            removed += 1
    if doomed:
        log.info("backup.rotated", removed=[p.name for p in doomed], blobs_removed=removed)
    return doomed, removed


def postgres_guidance(snapshot: Path) -> str:
    return (f"The database is PostgreSQL: dump it with its own tool, before this command next time\n"
            f"(the blobs copied then cover every row the dump holds):\n"
            f"  pg_dump --format=custom --file={snapshot}/dispatchd.pgdump \"$DATABASE_URL\"\n"
            f"Restore: pg_restore --dbname=… {snapshot}/dispatchd.pgdump, then dispatchd restore {snapshot} "
            f"for the blobs.")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_file(source: Path, target: Path, durable: bool = True) -> int:
    """Copy through a temporary file and a rename: the target is whole or absent. ``durable``:
    fsynced before the rename (else the caller syncs the file system once, after many).
    Returns the bytes copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".tmp-{target.name}")
    try:
        with open(source, "rb") as reader, open(temporary, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
            writer.flush()
            if durable:
                os.fsync(writer.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def _copy_blobs(blobs: BlobStore, store: Path, digests: list[str], partial: Path) -> tuple[int, int]:
    """Copy the blobs the backup store lacks (a blob of the right size is the same blob).

    They are copied without an fsync each and the file system is synced once at the end. The
    list of blobs about to be copied is written (and synced) first: if the run is cut short,
    the next one removes those files, which a crash may have left with the right size and the
    wrong bytes, before it looks at what is there."""
    wanted = [d for d in digests if not _same_size(store / d[:2] / d, blobs.path_of(d))]
    _write_file(partial / COPYING, "".join(f"{d}\n" for d in wanted).encode())
    copied_bytes = sum(copy_file(blobs.path_of(d), store / d[:2] / d, durable=False) for d in wanted)
    if wanted:
        sync_filesystem(store)
    return len(wanted), copied_bytes


def _same_size(copy: Path, original: Path) -> bool:
    try:
        return copy.stat().st_size == original.stat().st_size
    except FileNotFoundError:
        return False


def _clear_partials(snapshots: Path, store: Path) -> None:
    """A run cut short: its snapshot goes, and so do the blobs it was copying."""
    for leftover in snapshots.glob(f"{PARTIAL}*"):
        journal = leftover / COPYING
        if journal.exists():
            for digest in journal.read_text().split():
                (store / digest[:2] / digest).unlink(missing_ok=True)
        shutil.rmtree(leftover, ignore_errors=True)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def _free_name(folder: Path, name: str) -> str:
    """Two backups within one second get distinct names."""
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _schema_version(query) -> int:  # type: ignore[no-untyped-def]
    rows = query("SELECT value FROM meta WHERE key = 'schema_version'")
    return int(rows[0][0]) if rows else 0
