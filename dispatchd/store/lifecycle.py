"""Rows that go, for retention (``flows/retention.py``) and erasure (``flows/erasure.py``):
deleting rows with every row that refers to them, letting go of blobs, and removing the blob
files no row names any more.

Which tables refer to which is read from the schema's foreign keys, so a table added later
(with ``foreign_key="task.id"``) is deleted with its task without a change here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy import Table, delete, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select
from sqlmodel import SQLModel

from dispatchd.store import tables  # noqa: F401  (registers every table with the metadata)
from dispatchd.store.blobs import BlobStore
from dispatchd.store.db import write_turn
from dispatchd.store.snapshot import BLOB_COLUMNS

log = structlog.get_logger("dispatchd.lifecycle")


def table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _referring(parent: Table) -> list[tuple[Table, str, str]]:
    """(child table, its column, the parent's column) for every foreign key into ``parent``."""
    found = []
    for child in SQLModel.metadata.sorted_tables:
        for column in child.columns:
            for key in column.foreign_keys:
                if key.column.table is parent:
                    found.append((child, column.name, key.column.name))
    return found


def delete_rows(connection: Connection, target: Table, column: str, values: Iterable[object] | Select,
                removed: Counter[str], released: set[str]) -> None:
    """Delete the rows of ``target`` whose ``column`` is in ``values``, after the rows that
    refer to them (recursively); the blobs they named are added to ``released``."""
    chosen = target.c[column].in_(values if isinstance(values, Select) else list(values))
    for child, child_column, parent_column in _referring(target):
        delete_rows(connection, child, child_column, select(target.c[parent_column]).where(chosen), removed, released)
    for name, blob_column in BLOB_COLUMNS:
        if name == target.name:
            released.update(d for (d,) in connection.execute(select(target.c[blob_column]).where(chosen)) if d)
    count = connection.execute(delete(target).where(chosen)).rowcount
    if count:
        removed[target.name] += count


def release_blobs(connection: Connection, digests: Iterable[str], at: datetime) -> None:
    """Record, in the caller's transaction, blobs its rows stopped naming."""
    rows = [{"digest": d, "released_at": at} for d in sorted(set(digests)) if d]
    if rows:
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(table("blob_release"))
        connection.execute(statement.on_conflict_do_update(index_elements=["digest"],
                                                           set_={"released_at": statement.excluded.released_at}), rows)


def still_named(connection: Connection, digest: str) -> bool:
    return bool(connection.execute(select(or_(*(exists().where(table(name).c[column] == digest)
                                                 for name, column in BLOB_COLUMNS)))).scalar())


def remove_released_blobs(engine: Engine, blobs: BlobStore, batch: int = 500) -> tuple[int, int, int]:
    """Remove the blob files of ``blob_release`` that no row names. Returns (removed, bytes
    freed, left for a later run: stored again by intake around the time they were let go)."""
    removed = freed = waiting = 0
    after = ""
    while True:
        with engine.connect() as connection:
            release = table("blob_release")
            pending = connection.execute(select(release.c.digest, release.c.released_at).where(
                release.c.digest > after).order_by(release.c.digest).limit(batch)).all()
            if not pending:
                return removed, freed, waiting
            after = pending[-1][0]
            done: list[str] = []
            for digest, released_at in pending:
                named = [False]

                def ask(digest: str = digest, named: list[bool] = named) -> bool:
                    named[0] = still_named(connection, digest)
                    return named[0]

                outcome = blobs.remove_unnamed(digest, released_at.timestamp(), ask)
                if outcome is not None:
                    removed, freed = removed + (outcome > 0), freed + outcome
                    done.append(digest)
                elif named[0]:
                    done.append(digest)  # named again: nothing to remove
                else:
                    waiting += 1
            connection.rollback()
        with write_turn(engine), engine.begin() as connection:
            connection.execute(delete(table("blob_release")).where(table("blob_release").c.digest.in_(done)))
