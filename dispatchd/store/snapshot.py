"""A consistent copy of a live SQLite database, and what a copy holds (counts, blobs named,
integrity). PostgreSQL is copied with its own tools (pg_dump), see ``flows/backup.py``."""

from __future__ import annotations

import ctypes
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

# Every column that names a blob in the blob store: backup copies them, restore needs them,
# retention and erasure remove a blob only when none of these name it. A new table that stores
# files adds its column here.
BLOB_COLUMNS: tuple[tuple[str, str], ...] = (
    ("inbound_message", "raw_sha256"),
    ("attachment", "sha256"),
)


def sqlite_file(engine_or_url: Engine | str) -> Path | None:
    """The database file of a SQLite engine (or URL); None for PostgreSQL or memory."""
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return None
    return Path(url[len(prefix):])


def copy_database(source: Path, target: Path) -> None:
    """``VACUUM INTO`` a new file: one read transaction, so the copy is the database as of one
    commit, and writers go on meanwhile (WAL). Free pages are not copied, so a copy never holds
    what was deleted (erased) before it was made."""
    connection = sqlite3.connect(source, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("VACUUM INTO ?", (str(target),))
    finally:
        connection.close()
    fsync_path(target)


def open_copy(path: Path) -> sqlite3.Connection:
    """A copy, read-only (verifying a backup never changes it)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def integrity_problems(connection: sqlite3.Connection) -> list[str]:
    rows = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


Query = Callable[[str], Sequence[Sequence[Any]]]  # SQL -> rows, on either database


def sqlite_query(connection: sqlite3.Connection) -> Query:
    return lambda sql: connection.execute(sql).fetchall()


def engine_query(connection: Connection) -> Query:
    return lambda sql: connection.exec_driver_sql(sql).fetchall()


def table_counts(query: Query, tables: Iterable[str]) -> dict[str, int]:
    """Rows per table: what a manifest records and a verification compares."""
    return {name: int(query(f'SELECT count(*) FROM "{name}"')[0][0]) for name in sorted(tables)}


def sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def named_blobs(query: Query) -> set[str]:
    """Every blob some row names (an empty name is a blob already removed by retention)."""
    found: set[str] = set()
    for table, column in BLOB_COLUMNS:
        found.update(row[0] for row in query(
            f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL AND "{column}" != \'\''))
    return found


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory, after a rename in it) to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def sync_filesystem(path: Path) -> None:
    """Flush everything written to the file system holding ``path``: one ``syncfs`` for many
    files copied without an fsync each (an fsync per blob made a 50,000-task backup take minutes)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    handle = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(handle) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(handle)
