"""PostgreSQL connections that cannot hang forever: a server that accepts and never answers,
a statement stuck behind a lock, a flow dropped in silence (keepalives, TCP user timeout)."""

from __future__ import annotations

import socket
import threading
import time

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from dispatchd.devservers import free_port
from dispatchd.store import db
from dispatchd.store.db import migrate, open_engine

pytestmark = pytest.mark.integration


def test_connecting_to_a_server_that_never_answers_gives_up(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A listening socket nobody serves: the TCP handshake succeeds (the kernel does it) and the
    login is never answered, as behind a load balancer whose database is gone."""
    # The default's path with libpq's shortest wait (2 s), not 10 s: what is proved is that the
    # default reaches libpq and ends the wait (test_connections_carry_timeouts_and_keepalives
    # checks the default values on a live connection).
    monkeypatch.setitem(db.POSTGRES_TIMEOUTS, "connect_timeout", 2)
    port = free_port()
    silent = socket.socket()
    silent.bind(("127.0.0.1", port))
    silent.listen(8)
    outcome: list[BaseException | None] = []

    def connect() -> None:
        engine = open_engine(f"postgresql://dispatchd@127.0.0.1:{port}/dispatchd")
        try:
            with engine.connect():
                outcome.append(None)
        except OperationalError as exc:
            outcome.append(exc)
        finally:
            engine.dispose()
    started = time.monotonic()
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(20)
    elapsed = time.monotonic() - started
    silent.close()  # ends a connect that still waits (the old code's), so the thread ends too
    worker.join(10)
    assert elapsed < 20, "connecting gave up by itself"
    assert outcome and isinstance(outcome[0], OperationalError) and "timeout" in str(outcome[0]).lower()


def test_connections_carry_timeouts_and_keepalives(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    try:
        with engine.connect() as connection:
            params = connection.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
            assert params["keepalives"] == "1" and int(params["keepalives_idle"]) <= 60
            assert int(params["tcp_user_timeout"]) > 0 and int(params["connect_timeout"]) > 0
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "1min"
            assert connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "10min"
            assert connection.execute(text("SHOW timezone")).scalar() == "UTC"
    finally:
        engine.dispose()


def test_a_statement_stuck_behind_a_lock_is_cancelled_and_the_url_may_say_how_soon(postgres_url: str) -> None:
    holder = open_engine(postgres_url)
    migrate(holder)
    waiter = open_engine(postgres_url + "?options=-c%20statement_timeout%3D1s")
    try:
        with holder.connect() as locking:
            locking.execute(text("LOCK TABLE task IN ACCESS EXCLUSIVE MODE"))  # e.g. a stuck instance
            started = time.monotonic()
            # Without a statement timeout the wait has no end: a watchman cancels it after 15 s,
            # which fails the test (the message differs) instead of hanging it.
            watchman = threading.Timer(15, _cancel, args=(postgres_url, "SELECT count(*) FROM task"))
            watchman.start()
            with pytest.raises(OperationalError, match="statement timeout"):
                with waiter.connect() as connection:
                    assert connection.execute(text("SHOW timezone")).scalar() == "UTC", "defaults kept"
                    connection.execute(text("SELECT count(*) FROM task"))
            watchman.cancel()
            assert time.monotonic() - started < 10
            locking.rollback()
        migrate(waiter)  # migrations may take longer than a statement: not cut off, and nothing to do
    finally:
        waiter.dispose()
        holder.dispose()


def _cancel(url: str, query: str) -> None:
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as connection:
        connection.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = %s", (query,))
