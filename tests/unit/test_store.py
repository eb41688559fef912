import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.store import queries
from dispatchd.store.blobs import BlobStore
from dispatchd.store.db import SCHEMA_VERSION, migrate, open_engine, schema_version, write_turn
from dispatchd.store.tables import Outbox

NOW = datetime(2026, 11, 26, 10, tzinfo=timezone.utc)


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert schema_version(engine) == 0
    assert migrate(engine) == SCHEMA_VERSION
    assert migrate(engine) == 0
    assert schema_version(engine) == SCHEMA_VERSION
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2, "FULL: durable at commit"


def outbox_row(n: int, due: datetime) -> Outbox:
    return Outbox(message_id=f"<m{n}@x>", kind="k", envelope_from="a@x", recipients="b@x", subject="s",
                  raw=b"x", next_attempt_at=due, created_at=due)


def test_claims_are_exclusive_and_stale_claims_return(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with Session(engine) as session, session.begin():
        session.add_all([outbox_row(1, NOW), outbox_row(2, NOW), outbox_row(3, NOW + timedelta(hours=1))])
    with Session(engine, expire_on_commit=False) as session, session.begin():
        first = queries.claim_outbox(session, NOW, NOW, 10, "instance-a")
    with Session(engine) as session, session.begin():
        second = queries.claim_outbox(session, NOW, NOW, 10, "instance-b")
    assert sorted(r.message_id for r in first) == ["<m1@x>", "<m2@x>"] and second == []
    assert {r.claimed_by for r in first} == {"instance-a"}
    with Session(engine) as session, session.begin():
        assert queries.release_orphaned_claims(session, {"instance-a"}) == 0
        assert queries.release_orphaned_claims(session, {"instance-b"}) == 2
    with Session(engine) as session:
        assert as_utc(queries.next_outbox_due(session)) == NOW


def test_blobs_are_content_addressed_and_atomic(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == store.put(b"hello")
    assert store.get(digest) == b"hello"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [digest]


def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    from dispatchd.store.db import MIGRATIONS

    engine = open_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as connection:
        MIGRATIONS[0](connection)
        connection.execute(text("ALTER TABLE task DROP COLUMN producer"))
        connection.execute(text("DROP INDEX ix_task_assignee_status"))  # version 1 indexed assignee alone
        connection.execute(text("CREATE INDEX ix_task_assignee ON task (assignee)"))
        connection.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
    assert schema_version(engine) == 1
    assert migrate(engine) == SCHEMA_VERSION - 1
    with engine.connect() as connection:
        columns = {row[1] for row in connection.execute(text("PRAGMA table_info(task)"))}
        indexes = {row[1] for row in connection.execute(text("PRAGMA index_list(task)"))}
    assert "producer" in columns
    assert "ix_task_assignee_status" in indexes and "ix_task_assignee" not in indexes


def test_members_active_tasks_are_counted_from_an_index_not_the_task_table(tmp_path: Path) -> None:
    from dispatchd.flows.assignment import ACTIVE

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with engine.connect() as connection:
        plan = " ".join(str(row[-1]) for row in connection.execute(text(
            "EXPLAIN QUERY PLAN SELECT assignee, count(*) FROM task WHERE assignee IN ('a@x', 'b@x') "
            f"AND status IN ({', '.join(repr(s) for s in ACTIVE)}) GROUP BY assignee")))
    assert "COVERING INDEX ix_task_assignee_status" in plan, plan


def test_automatic_replies_are_tallied_by_minute_and_summed_for_the_hour(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    since = NOW - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        queries.count_auto_reply(session, ["bob@acme.test"], 7, NOW - timedelta(hours=3))  # pruned later
        queries.count_auto_reply(session, ["bob@acme.test"], 7, NOW - timedelta(minutes=70))  # too old
        queries.count_auto_reply(session, ["bob@acme.test"], 7, NOW - timedelta(minutes=59, seconds=30))
        queries.count_auto_reply(session, ["bob@acme.test"], None, NOW)
        queries.count_auto_reply(session, ["eve@x.test"], 8, NOW)
    with Session(engine) as session:
        bob = queries.recent_activity(session, "bob@acme.test", 7, None, since)
        assert (bob.replies_to_sender, bob.replies_in_thread, bob.replies_total) == (2, 1, 3)
        assert queries.recent_activity(session, "new@x.test", None, None, since).replies_to_sender == 0
        writers, rows = session.exec(text("SELECT count(DISTINCT writer), count(*) FROM reply_tally")).one()
    assert (writers, rows) == (1, 10), "one writer; the three rows of three hours ago pruned"
    with Session(engine) as session:  # a thread of its own writes rows of its own
        other = threading.Thread(target=lambda: _count_in_thread(engine, NOW))
        other.start()
        other.join(5)
        assert queries.recent_activity(session, "bob@acme.test", None, None, since).replies_to_sender == 3
        assert session.exec(text("SELECT count(DISTINCT writer) FROM reply_tally")).one()[0] == 2


def _count_in_thread(engine: Any, at: datetime) -> None:
    with Session(engine) as session, session.begin():
        queries.count_auto_reply(session, ["bob@acme.test"], None, at)


def test_writers_take_turns_on_sqlite(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    order: list[str] = []
    waiting = threading.Event()

    def second_writer() -> None:
        waiting.set()
        with write_turn(engine):
            order.append("second")

    with write_turn(engine):
        other = threading.Thread(target=second_writer)
        other.start()
        waiting.wait(5)
        time.sleep(0.2)  # the second writer is blocked now, not polling
        order.append("first")
    other.join(5)
    assert order == ["first", "second"]
    with write_turn(open_engine("sqlite://")):  # in memory: one connection, nothing to share
        pass
