"""Who does what when several dispatchd instances share one database.

SQLite serves one instance (the daemon holds a file lock on the data directory), which
therefore owns every mailbox and every job, and any claim not its own is a crash's leftover.

PostgreSQL serves many. Each instance keeps one connection open for its whole life and takes
session advisory locks on it: one per mailbox it reads, one per job while it runs. The server
drops the locks when the connection ends, so an instance that dies (even by SIGKILL) frees
its mailboxes at once and the next instance that asks takes them over. An outbox claim names
the claimer's backend (pid and start time); claims whose backend is gone go back to the queue.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger("dispatchd.coordination")


class Coordinator(Protocol):
    def instance_id(self) -> str:
        """The name this instance's outbox claims carry."""

    def try_own(self, resource: str) -> bool:
        """Take ``resource`` (a mailbox) for this instance unless another live one has it."""

    def still_own(self, resource: str) -> bool:
        """True while the resource is ours; False once the connection that held it is gone."""

    def live_instances(self, connection: Connection) -> set[str]:
        """The instance ids whose outbox claims must be left alone."""

    def exclusive(self, resource: str) -> Iterator[bool]:
        """A context: True inside if no other instance is running ``resource`` (a job)."""

    def close(self) -> None: ...


class SoleInstance:
    """SQLite: this process is the only instance, so it owns everything."""

    def __init__(self) -> None:
        self._id = f"local:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def instance_id(self) -> str:
        return self._id

    def try_own(self, resource: str) -> bool:
        return True

    def still_own(self, resource: str) -> bool:
        return True

    def live_instances(self, connection: Connection) -> set[str]:
        return {self._id}

    @contextmanager
    def exclusive(self, resource: str) -> Iterator[bool]:
        yield True

    def close(self) -> None:
        pass


class PostgresCoordinator:
    """Advisory locks on one long-lived connection; used from several threads, one at a time."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.RLock()
        self._connection: Connection | None = None
        self._id = ""
        self._owned: set[str] = set()

    def _connect(self) -> Connection:
        if self._connection is None:
            connection = self.engine.connect()
            backend = connection.execute(text(
                "SELECT pg_backend_pid(), floor(extract(epoch FROM backend_start))::bigint "
                "FROM pg_stat_activity WHERE pid = pg_backend_pid()")).one()
            connection.commit()
            self._connection, self._id = connection, f"pg:{backend[0]}:{backend[1]}"
        return self._connection

    def _drop_connection(self, reason: str) -> None:
        if self._owned:
            log.error("coordination.lost", owned=sorted(self._owned), reason=reason)
        self._discard_connection()

    def _discard_connection(self) -> None:
        """Close it for real, not back to the pool: the server frees every lock it held."""
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except DBAPIError:
                pass
        self._connection = None
        self._owned.clear()

    def instance_id(self) -> str:
        with self._lock:
            self._connect()
            return self._id

    def _try_lock(self, resource: str) -> bool:
        connection = self._connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(resource)}).scalar()
        connection.commit()
        return bool(got)

    def _unlock(self, resource: str) -> None:
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(resource)})
            self._connection.commit()

    def try_own(self, resource: str) -> bool:
        with self._lock:
            if resource in self._owned:
                return self.still_own(resource)
            try:
                if not self._try_lock(resource):
                    return False
            except DBAPIError as exc:
                self._drop_connection(str(exc))
                return False
            self._owned.add(resource)
            log.info("coordination.owned", resource=resource, instance=self._id)
            return True

    def still_own(self, resource: str) -> bool:
        with self._lock:
            if resource not in self._owned or self._connection is None:
                return False
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
            except DBAPIError as exc:
                self._drop_connection(str(exc))
                return False
            return True

    def live_instances(self, connection: Connection) -> set[str]:
        rows = connection.execute(text(
            "SELECT 'pg:' || pid || ':' || floor(extract(epoch FROM backend_start))::bigint FROM pg_stat_activity"))
        return {row[0] for row in rows}

    @contextmanager
    def exclusive(self, resource: str) -> Iterator[bool]:
        with self._lock:
            try:
                got = self._try_lock(resource)
            except DBAPIError as exc:
                self._drop_connection(str(exc))
                got = False
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    try:
                        self._unlock(resource)
                    except DBAPIError as exc:
                        self._drop_connection(str(exc))

    def close(self) -> None:
        with self._lock:
            self._discard_connection()


def lock_key(resource: str) -> int:
    """A stable signed 64-bit advisory lock key for a resource name."""
    return int.from_bytes(hashlib.sha256(f"dispatchd:{resource}".encode()).digest()[:8], "big", signed=True)


def coordinator_for(engine: Engine) -> Coordinator:
    return PostgresCoordinator(engine) if engine.dialect.name == "postgresql" else SoleInstance()
