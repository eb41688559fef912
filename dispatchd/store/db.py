"""Engine set-up (SQLite or PostgreSQL), SQLite pragmas and schema migrations.

Migrations are an ordered list; the database records the last one applied in ``meta``.
Each migration runs in its own transaction, so an interrupted upgrade resumes cleanly. On
PostgreSQL several instances may start at once: an advisory lock lets one of them migrate.
"""

from __future__ import annotations

import fcntl
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
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


def _statements(*statements: str) -> Callable[[Connection], None]:
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
    _statements(  # 5: the loop breaker counts recent replies for every message; keep it O(log n)
        "CREATE INDEX IF NOT EXISTS ix_outbox_recipients_created ON outbox (recipients, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_outbox_kind_created ON outbox (kind, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_outbox_task_created ON outbox (task_id, created_at)",
        "CREATE INDEX IF NOT EXISTS ix_inbound_body_received ON inbound_message (body_hash, received_at)"),
    _add_column("task", "mailbox", "VARCHAR"),  # 6: which [[mailbox]] a request came in through
    _add_column("outbox", "claimed_by", "VARCHAR"),  # 7: which instance is sending a row
    # 8: the loop breaker's per-minute tallies (replies sent before the upgrade are not in them)
    _create_tables(tables.ReplyTally),
    _statements(  # 9: what migration 5 indexed for counting outbox rows; the tallies replaced that
        "DROP INDEX IF EXISTS ix_outbox_recipients_created", "DROP INDEX IF EXISTS ix_outbox_kind_created",
        "DROP INDEX IF EXISTS ix_outbox_task_created"),
    _statements(  # 10: assignment counts each member's active tasks for every new task
        "CREATE INDEX IF NOT EXISTS ix_task_assignee_status ON task (assignee, status)",
        "DROP INDEX IF EXISTS ix_task_assignee"),
    _add_column("task", "claimed_client", "VARCHAR"),  # 11: the client an unverified sender named
    _create_tables(tables.RequestText, tables.TriageModelRow),  # 12: the triage model, what it reads
    _create_tables(tables.TaskFollower),  # 13: the client's colleagues who follow a task
    _add_column("inbound_message", "unmovable", "VARCHAR"),  # 14: a message the server refused to move
    _statements(  # 15: the staff dashboard's periods (store/dashboard.py): events by status and time,
        # arrivals by time, open tasks per queue with the oldest
        "CREATE INDEX IF NOT EXISTS ix_task_event_to_status_at ON task_event (to_status, at)",
        "CREATE INDEX IF NOT EXISTS ix_task_created_at ON task (created_at)",
        "CREATE INDEX IF NOT EXISTS ix_task_status_queue_created ON task (status, queue, created_at)"),
    _create_tables(tables.StaffSignIn, tables.StaffSession),  # 16: staff sign-in links and sessions (web)
    # 17: webhooks, Slack and Teams: events written with their audit entries, deliveries per destination
    _create_tables(tables.IntegrationEvent, tables.IntegrationDelivery, tables.IntegrationDestination),
    _create_tables(tables.LifecycleRun, tables.BlobRelease),  # 18: retention and erasure runs, blobs to remove
    _statements(  # 19: "does any row still name this blob?", asked for every blob removed
        "CREATE INDEX IF NOT EXISTS ix_inbound_raw_sha256 ON inbound_message (raw_sha256)",
        "CREATE INDEX IF NOT EXISTS ix_attachment_sha256 ON attachment (sha256)"),
    _create_tables(tables.CallBooking, tables.CallAttendee),  # 20: calls booked by email (issue 17)
    _add_column("task", "needs", "VARCHAR NOT NULL DEFAULT ''"),  # 21: skills a task needs of its assignee
    _add_column("task", "assigned_at", "TIMESTAMP"),  # 22: when the assignee got it (max_per_day)
    _statements(  # 23: round robin asks who in a queue was given work last; `next` reads work in rank order
        "CREATE INDEX IF NOT EXISTS ix_task_queue_assigned ON task (queue, assigned_at)",
        "CREATE INDEX IF NOT EXISTS ix_task_waiting ON task (assignee, priority, due_at)"),
)
SCHEMA_VERSION = len(MIGRATIONS)


_opened: weakref.WeakSet[Engine] = weakref.WeakSet()


def open_engine(url: str) -> Engine:
    """Create the engine; on SQLite turn on WAL, foreign keys and a generous busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(_with_driver(url), pool_pre_ping=True, connect_args=_postgres_connect_args(url))
    _opened.add(engine)
    return engine


INTEGRATION_EVENTS = "dispatchd_integration_events"  # an execution option every connection carries


def with_integration_events(engine: Engine, wanted: bool = True) -> Engine:
    """The same database (and pool) whose changes to tasks also write their integration events
    (``queries.add_integration_events``): when webhooks, Slack or Teams are configured. Without
    any, nothing is written that nobody would send."""
    return engine.execution_options(**{INTEGRATION_EVENTS: True}) if wanted else engine


def without_integration_events(engine: Engine) -> Engine:
    """The same database (and pool), writing no integration events (`dispatchd import --quiet`)."""
    return engine.execution_options(**{INTEGRATION_EVENTS: False})


def writes_integration_events(connection: Connection) -> bool:
    return bool(connection.get_execution_options().get(INTEGRATION_EVENTS))


# Without these a connection whose server vanished without a word (a failover, a NAT or
# firewall that dropped the flow) waits forever in a read: intake hangs while the event loop
# still feeds systemd's watchdog. libpq parameters; any of them written in the URL wins.
POSTGRES_TIMEOUTS = {
    "connect_timeout": 10,       # seconds to connect and log in
    "keepalives": 1,             # idle connections probed: a dropped flow is noticed in ~1 min
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,  # ms that sent data may stay unacknowledged (a dead peer mid-query)
}
# Server-side limits, sent as session settings: no statement runs (or waits for a lock) longer
# than a minute, and a session left idle inside a transaction (a client stuck between two
# statements, holding row locks that other instances wait for) is ended after ten.
POSTGRES_SESSION = {"timezone": "UTC", "statement_timeout": "60s", "idle_in_transaction_session_timeout": "10min"}


def _postgres_connect_args(url: str) -> dict[str, object]:
    """The defaults above, minus what the URL sets itself (``?connect_timeout=3``,
    ``?options=-c statement_timeout=5min``). Timestamps are stored as naive UTC on both databases."""
    given = make_url(_with_driver(url)).query
    args: dict[str, object] = {key: value for key, value in POSTGRES_TIMEOUTS.items() if key not in given}
    written = given.get("options", "")
    options = written if isinstance(written, str) else " ".join(written)
    defaults = [f"-c {name}={value}" for name, value in POSTGRES_SESSION.items() if f"{name}=" not in options]
    args["options"] = " ".join([*defaults, options]).strip()
    return args


@contextmanager
def write_turn(engine: Engine) -> Iterator[None]:
    """Wait for our turn to write, then hold it for the transaction inside.

    SQLite admits one writer at a time and makes the others poll with growing sleeps: the
    outbox sender, writing between intake's runs of messages, kept missing the moment a run
    committed and waited seconds. A blocking lock on a file beside the database hands the
    turn over as soon as it is released. PostgreSQL locks rows, so there is nothing to do."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    turn = os.open(f"{database}-writer", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)  # flock: per open file, so threads of one process queue too
        yield
    finally:
        os.close(turn)


def close_engines() -> None:
    """Close the pooled connections of every engine opened (a command is done)."""
    for engine in list(_opened):
        engine.dispose()


def _with_driver(url: str) -> str:
    """Owners write postgresql://…; the driver is psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # FULL: a commit is on disk before the messages it records are moved on the server. NORMAL
    # (the WAL synced only at checkpoints) let a power cut undo a run whose mail had been moved.
    cursor.execute("PRAGMA synchronous=FULL")
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
    with _migration_lock(engine):
        current = schema_version(engine)
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {current} is newer than this dispatchd ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    # An index over a big table may take longer than a query is allowed to.
                    connection.execute(text("SET LOCAL statement_timeout = 0"))
                MIGRATIONS[version - 1](connection)
                connection.execute(
                    text("INSERT INTO meta (key, value) VALUES ('schema_version', :v) "
                         "ON CONFLICT (key) DO UPDATE SET value = :v"), {"v": str(version)})
            log.info("db.migrated", version=version)
    return SCHEMA_VERSION - current


def stored_secret(engine: Engine, key: str, candidate: str) -> str:
    """The secret kept under ``key`` in ``meta``; ``candidate`` becomes it if there is none yet.
    The first instance to ask wins; the others read what it stored."""
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING"),
                           {"key": key, "value": candidate})
        return connection.execute(text("SELECT value FROM meta WHERE key = :key"), {"key": key}).scalar_one()


_MIGRATION_LOCK = 0x6469737061746368  # "dispatch"


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Instances starting together on PostgreSQL migrate one after the other (the later ones
    find nothing left to do). SQLite has one instance per database."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        # Waiting for another instance's migration is not a stuck statement.
        connection.execute(text("SET statement_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            connection.execute(text("RESET statement_timeout"))  # back to the session's default
            connection.commit()
