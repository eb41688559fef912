import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from dispatchd.clock import as_utc
from dispatchd.store import queries
from dispatchd.store.blobs import BlobStore
from dispatchd.domain.loops_budget import ReplyLimits
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
        connection.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
    assert schema_version(engine) == 1
    assert migrate(engine) == SCHEMA_VERSION - 1
    with engine.connect() as connection:
        columns = {row[1] for row in connection.execute(text("PRAGMA table_info(task)"))}
    assert "producer" in columns


def auto_reply(n: int, at: datetime, to: str = "bob@acme.test") -> Outbox:
    return Outbox(message_id=f"<r{n}@x>", kind="client-received", envelope_from="a@x", recipients=to, subject="s",
                  raw=b"x", next_attempt_at=at, created_at=at)


def test_the_hours_replies_are_counted_once_a_transaction_and_kept_up_to_date(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    limits = ReplyLimits(per_hour=1000)
    since = NOW - timedelta(hours=1)
    with Session(engine) as session, session.begin():
        session.add_all([auto_reply(1, NOW - timedelta(minutes=5)), auto_reply(2, NOW - timedelta(hours=2))])
    with Session(engine) as session, session.begin():
        assert queries.recent_activity(session, "x@y.test", None, None, since, limits).replies_total == 1
        session.add_all([auto_reply(3, NOW), auto_reply(4, NOW, to="x@y.test")])
        session.flush()  # queued by an earlier message of the same run
        activity = queries.recent_activity(session, "x@y.test", None, None, since, limits)
        assert (activity.replies_total, activity.replies_to_sender) == (3, 1)
    with Session(engine) as session, session.begin():  # a new run counts the hour afresh
        session.add(auto_reply(5, NOW))
        assert queries.recent_activity(session, "x@y.test", None, None, since, ReplyLimits(per_hour=3)).replies_total == 3


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
