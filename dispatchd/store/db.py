"""Engine set-up, SQLite pragmas and schema migrations.

Migrations are an ordered list; the database records the last one applied in ``meta``.
Each migration runs in its own transaction, so an interrupted upgrade resumes cleanly.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel, create_engine

from dispatchd.store import tables

log = structlog.get_logger("dispatchd.store")


def _create_tables(*models: type[SQLModel]) -> Callable[[Connection], None]:
    """A migration creating tables (those that exist already are left alone)."""

    def migration(connection: Connection) -> None:
        SQLModel.metadata.create_all(connection, tables=[m.__table__ for m in models])  # type: ignore[attr-defined]
    return migration


def _add_column(table: str, column: str, ddl: str) -> Callable[[Connection], None]:
    """A migration adding one column. The first migration creates tables from today's models,
    so on a new database the column already exists and this is a no-op."""

    def migration(connection: Connection) -> None:
        if column not in {c["name"] for c in inspect(connection).get_columns(table)}:
            connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
    return migration


def _create_indexes(*statements: str) -> Callable[[Connection], None]:
    def migration(connection: Connection) -> None:
        for statement in statements:
            connection.execute(text(statement))
    return migration


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _create_tables(tables.Meta, tables.Task, tables.TaskEvent, tables.InboundMessage, tables.Attachment,
                   tables.Outbox, tables.MailboxCursor),
    _add_column("task", "producer", "VARCHAR"),  # 2: who did the work, for revisions
    _create_tables(tables.SlaNotice, tables.JobRun, tables.StaffAway),  # 3: scheduled jobs
    _add_column("inbound_message", "body_hash", "VARCHAR"),  # 4: loop breaker's same-body check
    _create_indexes(  # 5: the loop breaker counts recent replies for every message; keep it O(log n)
        "CREATE INDEX IF NOT EXISTS ix_outbox_recipients_created ON outbox (recipients, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_outbox_kind_created ON outbox (kind, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_outbox_task_created ON outbox (task_id, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_inbound_body_received ON inbound_message (body_hash, received_at)"),
)
SCHEMA_VERSION = len(MIGRATIONS)


def open_engine(url: str) -> Engine:
    """Create the engine; on SQLite turn on WAL, foreign keys and a generous busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def schema_version(engine: Engine) -> int:
    if not inspect(engine).has_table("meta"):
        return 0
    with engine.connect() as connection:
        row = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    return int(row[0]) if row else 0


def migrate(engine: Engine) -> int:
    """Bring the schema up to date; returns the number of migrations applied."""
    current = schema_version(engine)
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"database schema {current} is newer than this dispatchd ({SCHEMA_VERSION})")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with engine.begin() as connection:
            MIGRATIONS[version - 1](connection)
            connection.execute(
                text("INSERT INTO meta (key, value) VALUES ('schema_version', :v) "
                     "ON CONFLICT (key) DO UPDATE SET value = :v"), {"v": str(version)})
        log.info("db.migrated", version=version)
    return SCHEMA_VERSION - current
