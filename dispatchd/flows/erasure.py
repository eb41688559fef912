"""``dispatchd forget ADDRESS|CLIENT``: erase a person's personal data on request.

Every table's personal data is listed once, in ``store/personal.PERSONAL_DATA``. For each
address, the rows that are the person's (their tasks, their messages, mail to them, their
words in the audit log) lose the address (replaced by a pseudonym), names, bodies and
attachments; blobs no one else's row names are removed. What statistics need stays: dates,
types, queues, statuses, SLA outcomes. Each task touched gets an ``erased`` audit event, and
the erasure itself is recorded in ``lifecycle_run`` (by pseudonym, never the address).

It runs in batches, each one short transaction under the write turn, and is idempotent: rows
already erased carry the pseudonym and are found again, so a run that was killed is finished
by running it again. On SQLite ``secure_delete`` zeroes what is overwritten and a checkpoint
empties the WAL, so the address is in no page of the database file afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import structlog
from sqlalchemy import LargeBinary, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import OperationalError

from dispatchd.errors import DispatchdError
from dispatchd.store.blobs import BlobStore
from dispatchd.store.db import stored_secret, write_turn
from dispatchd.store.lifecycle import delete_rows, release_blobs, remove_released_blobs, table
from dispatchd.store.personal import ERASED, PERSONAL_DATA, PersonalData, entry_for

log = structlog.get_logger("dispatchd.erasure")

BATCH = 500
PSEUDONYM_DOMAIN = "erased.invalid"


def erasure_secret(engine: Engine) -> bytes:
    """The key of the pseudonyms: generated once, kept in the database (shared by instances,
    restored with a backup), independent of the reply-signing secret."""
    return stored_secret(engine, "erasure_secret", secrets.token_hex(32)).encode()


def pseudonym(address: str, secret: bytes) -> str:
    """The same address always gets the same pseudonym (so a killed erasure is found and
    finished, and one person's tasks still count as one requester's); without the secret it
    cannot be turned back into the address."""
    digest = hmac.new(secret, address.strip().lower().encode(), hashlib.sha256).hexdigest()[:16]
    return f"person-{digest}@{PSEUDONYM_DOMAIN}"


@dataclass
class Erasure:
    """What ``forget`` did (or, on a dry run, would do) for one address."""

    address: str
    pseudonym: str
    rows: Counter[str] = field(default_factory=Counter)   # per table: rows erased, deleted or to be
    tasks: int = 0
    blobs_removed: int = 0
    blobs_waiting: int = 0
    wal_emptied: bool | None = None  # SQLite: the checkpoint took every old page out of the WAL


def addresses_of(engine: Engine, who: str) -> list[str]:
    """An address is itself; a client's name stands for every address its tasks came from or
    that follows them (its contacts in config.toml are the owner's to remove)."""
    if "@" in who:
        return [who.strip().lower()]
    task, follower = table("task"), table("task_follower")
    with engine.connect() as connection:
        senders = {r[0].lower() for r in connection.execute(select(task.c.sender).where(
            func.lower(task.c.client) == who.strip().lower()))}
        followers = {r[0].lower() for r in connection.execute(select(follower.c.address).where(
            follower.c.task_id.in_(select(task.c.id).where(func.lower(task.c.client) == who.strip().lower()))))}
    found = sorted((senders | followers) - {""})
    return [a for a in found if not a.endswith(f"@{PSEUDONYM_DOMAIN}")]


def forget(engine: Engine, blobs: BlobStore, address: str, secret: bytes, now: datetime,
           dry_run: bool = False, batch: int = BATCH) -> Erasure:
    """Erase ``address``'s personal data (``dry_run``: count the rows, change nothing), at most
    ``batch`` rows per transaction."""
    erasure = Erasure(address, pseudonym(address, secret))
    names = (address, erasure.pseudonym)
    with blobs.maintenance():
        if dry_run:
            with engine.connect() as connection:
                owned = owned_ids(connection, names)
                for entry in PERSONAL_DATA:
                    erasure.rows[entry.table] = len(_rows_of(connection, entry, names, owned))
            erasure.tasks = erasure.rows["task"]
            return erasure
        _refuse_while_sending(engine, names)
        run_id = _start_run(engine, erasure.pseudonym, now)
        with engine.connect() as connection:
            owned = owned_ids(connection, names)
            redaction = Redaction(address, erasure.pseudonym, _names_of(connection, owned))
        erasure.tasks = len(owned["task"])
        # Other people's mail first: what relates them to the person is erased below.
        erasure.rows["redacted_mail"] = _redact_related_mail(engine, blobs, redaction, owned, now)
        for entry in PERSONAL_DATA:
            while True:
                # Found outside the write turn (the searches read whole tables), read again by key
                # inside it: intake waits only for the updates.
                with engine.connect() as connection:
                    own_rows, mention_rows = _pending(connection, entry, redaction, owned, batch)
                found = [tuple(r[:len(table(entry.table).primary_key.columns)]) for r in (*own_rows, *mention_rows)]
                if not found:
                    break
                with write_turn(engine), engine.begin() as connection:
                    _secure(connection)
                    _wait_briefly(connection)
                    own_rows, mention_rows = _pending(connection, entry, redaction, owned, batch, found)
                    erasure.rows[entry.table] += _erase(connection, entry, redaction, own_rows, mention_rows, now)
        with write_turn(engine), engine.begin() as connection:
            _secure(connection)
            _audit(connection, sorted(owned["task"]), erasure, now, run_id)
        erasure.blobs_removed, _freed, erasure.blobs_waiting = remove_released_blobs(engine, blobs)
        erasure.wal_emptied = _empty_wal(engine)
    log.info("forget.done", pseudonym=erasure.pseudonym, tasks=erasure.tasks, blobs_removed=erasure.blobs_removed,
             **{f"rows_{k}": v for k, v in erasure.rows.items()})
    return erasure


def owned_ids(connection: Connection, names: tuple[str, ...]) -> dict[str, set[object]]:
    """The ids of the person's own rows in the tables other entries point at (tasks, messages)."""
    owned: dict[str, set[object]] = {}
    for entry in PERSONAL_DATA:
        if any(target == entry.table for e in PERSONAL_DATA for _c, target in e.belongs):
            condition = _own(entry, names, owned)
            target = table(entry.table)
            owned[entry.table] = set() if condition is None else {
                r[0] for r in connection.execute(select(*target.primary_key.columns).where(condition))}
    return owned


def _own(entry: PersonalData, names: tuple[str, ...], owned: dict[str, set[object]]):  # type: ignore[no-untyped-def]
    target = table(entry.table)
    conditions = [func.lower(target.c[c]).in_([n.lower() for n in names]) for c in entry.equals]
    conditions += [target.c[c].in_(sorted(owned[t])) for c, t in entry.belongs if owned.get(t)]  # type: ignore[type-var]
    return or_(*conditions) if conditions else None


def _mentioning(entry: PersonalData, names: tuple[str, ...], dialect: str):  # type: ignore[no-untyped-def]
    target = table(entry.table)
    conditions = [_searchable(target.c[c], dialect).contains(n.lower(), autoescape=True)
                  for c in entry.mentions for n in names]
    return or_(*conditions) if conditions else None


def _searchable(column, dialect: str):  # type: ignore[no-untyped-def]
    """A column as lower-case text: mail bytes too (on PostgreSQL through encode(…, 'escape'),
    which leaves ASCII as it is)."""
    if isinstance(column.type, LargeBinary) and dialect == "postgresql":
        return func.lower(func.encode(column, "escape"))
    return func.lower(column)


def person_condition(entry: PersonalData, names: tuple[str, ...], owned: dict[str, set[object]],
                     dialect: str = "sqlite"):  # type: ignore[no-untyped-def]
    """The person's rows of ``entry.table``: their own and those that mention them."""
    conditions = [c for c in (_own(entry, names, owned), _mentioning(entry, names, dialect)) if c is not None]
    return or_(*conditions) if conditions else None


def _rows_of(connection: Connection, entry: PersonalData, names: tuple[str, ...],
             owned: dict[str, set[object]]) -> list[tuple[object, ...]]:
    """The primary keys of the person's rows in ``entry.table``."""
    condition = person_condition(entry, names, owned, connection.dialect.name)
    if condition is None:
        return []
    target = table(entry.table)
    return [tuple(r) for r in connection.execute(select(*target.primary_key.columns).where(condition))]


@dataclass(frozen=True)
class Redaction:
    """How an address and a person's names are taken out of text or mail bytes."""

    address: str
    pseudonym: str
    names: tuple[str, ...]

    def text(self, value: str) -> str:
        value = re.sub(re.escape(self.address), self.pseudonym, value, flags=re.IGNORECASE)
        for name in self.names:
            value = re.sub(re.escape(name), ERASED, value, flags=re.IGNORECASE)
        return value

    def data(self, value: bytes) -> bytes:
        value = re.sub(re.escape(self.address.encode()), self.pseudonym.encode(), value, flags=re.IGNORECASE)
        for name in self.names:
            value = re.sub(re.escape(name.encode()), ERASED.encode(), value, flags=re.IGNORECASE)
        return value

    def mentioned_in(self, value: bytes) -> bool:
        lowered = value.lower()
        return any(n.lower().encode() in lowered for n in (self.address, *self.names))


def _pending(connection: Connection, entry: PersonalData, redaction: Redaction, owned: dict[str, set[object]],
             batch: int, within: list[tuple[object, ...]] | None = None) -> tuple[list[Row], list[Row]]:
    """Up to ``batch`` of the person's rows not done yet (``within``: only these keys): their own
    rows (key, replace and blob columns) and rows that only mention them (key, mentions columns)."""
    target, dialect = table(entry.table), connection.dialect.name
    names = (redaction.address, redaction.pseudonym)
    keys = list(target.primary_key.columns)
    only = [_key_in(target, within)] if within is not None else []
    own, mentioning = _own(entry, names, owned), _mentioning(entry, names, dialect)
    if entry.delete:
        condition = person_condition(entry, names, owned, dialect)
        return list(connection.execute(select(*keys).where(condition, *only).limit(batch))), []
    own_rows: list[Row] = []
    if own is not None:
        columns = [*keys, *(target.c[c] for c in (*entry.replace, *entry.blobs))]
        own_rows = list(connection.execute(select(*columns).where(
            own, _not_erased(entry, redaction.address), *only).limit(batch)))
    mention_rows: list[Row] = []
    if mentioning is not None and len(own_rows) < batch:
        others = and_(mentioning, ~own) if own is not None else mentioning
        still = _mentioning(entry, (redaction.address,), dialect)
        mention_rows = list(connection.execute(select(*keys, *(target.c[c] for c in entry.mentions)).where(
            others, still, *only).limit(batch - len(own_rows))))
    return own_rows, mention_rows


def _key_in(target, keys: list[tuple[object, ...]]):  # type: ignore[no-untyped-def]
    primary = list(target.primary_key.columns)
    return primary[0].in_([k[0] for k in keys]) if len(primary) == 1 else tuple_(*primary).in_(keys)


def _erase(connection: Connection, entry: PersonalData, redaction: Redaction, own_rows: list[Row],
           mention_rows: list[Row], now: datetime) -> int:
    """Erase the rows ``_pending`` found (read again inside this transaction); returns how many."""
    target = table(entry.table)
    keys = list(target.primary_key.columns)
    if entry.delete:
        if own_rows:
            _delete_by_key(connection, entry.table, [tuple(r) for r in own_rows], now)
        return len(own_rows)
    for row in own_rows:
        values: dict[str, object] = dict(entry.erase)
        replaced = row[len(keys):len(keys) + len(entry.replace)]
        values.update({c: redaction.text(v) for c, v in zip(entry.replace, replaced) if isinstance(v, str)})
        release_blobs(connection, [d for d in row[len(keys) + len(entry.replace):] if d], now)
        values.update({c: "" for c in entry.blobs})
        connection.execute(update(target).where(*(k == v for k, v in zip(keys, row))).values(values))
    for row in mention_rows:
        values = {}
        for column, value in zip(entry.mentions, row[len(keys):]):
            if isinstance(value, str):
                values[column] = redaction.text(value)
            elif isinstance(value, (bytes, memoryview)):
                values[column] = redaction.data(bytes(value))
        connection.execute(update(target).where(*(k == v for k, v in zip(keys, row))).values(values))
    done = len(own_rows) + len(mention_rows)
    if entry.table == "outbox" and done:
        # Mail to them (or about their task) not sent yet: its bytes are gone or its recipient is
        # a pseudonym, so it never goes.
        outbox = table("outbox")
        connection.execute(update(outbox).where(outbox.c.status == "pending", or_(
            outbox.c.raw == b"", outbox.c.recipients.contains(redaction.pseudonym))).values(status="erased"))
    return done


def _redact_related_mail(engine: Engine, blobs: BlobStore, redaction: Redaction, owned: dict[str, set[object]],
                         now: datetime) -> int:
    """Other people's mail that names the person (they were cc'd, or are quoted) on the tasks
    where they appear: the stored .eml is replaced by a copy with their address and names
    redacted, and the original is let go of. Returns the messages redacted."""
    names = (redaction.address, redaction.pseudonym)
    inbound, follower, event, outbox = (table(n) for n in ("inbound_message", "task_follower", "task_event", "outbox"))
    with engine.connect() as connection:
        dialect = connection.dialect.name
        related: set[object] = set()
        for source, condition in ((follower, _own(entry_for_table("task_follower"), names, owned)),
                                  (event, _mentioning(entry_for_table("task_event"), names, dialect)),
                                  (outbox, _mentioning(entry_for_table("outbox"), names, dialect))):
            if condition is not None:
                related.update(r[0] for r in connection.execute(select(source.c.task_id).where(condition)))
        related -= owned.get("task", set())
        related.discard(None)
        rows = connection.execute(select(inbound.c.id, inbound.c.raw_sha256).where(
            inbound.c.task_id.in_(sorted(related)), inbound.c.raw_sha256 != "")).all() if related else []  # type: ignore[type-var]
    redacted = 0
    for row_id, digest in rows:
        if not blobs.path_of(digest).exists():
            continue
        original = blobs.get(digest)
        if not redaction.mentioned_in(original):
            continue
        replacement = blobs.put(redaction.data(original))
        with write_turn(engine), engine.begin() as connection:
            _secure(connection)
            connection.execute(update(inbound).where(inbound.c.id == row_id).values(raw_sha256=replacement))
            release_blobs(connection, [digest], now)
        redacted += 1
    return redacted


def _delete_by_key(connection: Connection, name: str, keys: list[tuple[object, ...]], now: datetime) -> None:
    """Delete rows by primary key (with what refers to them, when the key is one column)."""
    target = table(name)
    primary = list(target.primary_key.columns)
    if len(primary) == 1:
        removed: Counter[str] = Counter()
        released: set[str] = set()
        delete_rows(connection, target, primary[0].name, [k[0] for k in keys], removed, released)
        release_blobs(connection, released, now)
    else:
        connection.execute(delete(target).where(tuple_(*primary).in_(keys)))


def _not_erased(entry: PersonalData, address: str):  # type: ignore[no-untyped-def]
    """An own row still to do: a replace column still holds the address, or an erase or blob
    column still differs from its erased value (so a rerun skips what is done)."""
    target = table(entry.table)
    conditions = [func.lower(target.c[c]).contains(address.lower(), autoescape=True) for c in entry.replace]
    for column, value in entry.erase.items():
        conditions.append(target.c[column].is_not(None) if value is None else
                          or_(target.c[column].is_(None), target.c[column] != value))
    conditions += [target.c[c] != "" for c in entry.blobs]
    return or_(*conditions)


def _names_of(connection: Connection, owned: dict[str, set[object]]) -> tuple[str, ...]:
    """The names the person gave in their mail (From: "Bob Stone" <…>), longest first."""
    task = table("task")
    if not owned.get("task"):
        return ()
    found = {r[0].strip() for r in connection.execute(select(task.c.sender_name).where(
        task.c.id.in_(sorted(owned["task"]))))}  # type: ignore[type-var]
    return tuple(sorted((n for n in found if len(n) >= 3), key=len, reverse=True))


def entry_for_table(name: str) -> PersonalData:
    entry = entry_for(name)
    assert entry is not None, name
    return entry


def _refuse_while_sending(engine: Engine, names: tuple[str, ...]) -> None:
    """The sender holds a claim on mail to them right now: erase after it is sent."""
    outbox = table("outbox")
    with engine.connect() as connection:
        sending = connection.execute(select(func.count()).select_from(outbox).where(
            outbox.c.status == "sending", or_(*(func.lower(outbox.c.recipients).contains(n.lower(), autoescape=True)
                                                for n in names)))).scalar()
    if sending:
        raise DispatchdError(f"{sending} email(s) to {names[0]} are being sent right now: nothing was changed, "
                             f"try again in a minute")


def _start_run(engine: Engine, subject: str, now: datetime) -> int:
    run = table("lifecycle_run")
    with write_turn(engine), engine.begin() as connection:
        return int(connection.execute(insert(run).values(kind="forget", subject=subject, started_at=_utc(now),
                                                         counts="{}", bytes_freed=0)).inserted_primary_key[0])


def _audit(connection: Connection, task_ids: list[int], erasure: Erasure, now: datetime, run_id: int) -> None:
    """The erasure in the audit log of each task it made anonymous (once: the event carries no
    personal data, so a rerun finds it as it was), and its run finished."""
    event, run = table("task_event"), table("lifecycle_run")
    done = {r[0] for r in connection.execute(select(event.c.task_id).where(event.c.kind == "erased"))}
    rows = [{"task_id": t, "at": _utc(now), "actor": "operator", "kind": "erased", "detail": ""}
            for t in task_ids if t not in done]
    if rows:
        connection.execute(insert(event), rows)
    connection.execute(update(run).where(run.c.id == run_id).values(
        finished_at=_utc(now), counts=json.dumps({"tasks": erasure.tasks, **erasure.rows})))


def _wait_briefly(connection: Connection) -> None:
    """PostgreSQL: a row the daemon holds in a transaction is waited for a few seconds, then
    the erasure stops with a lock timeout (its committed batches stand; run it again). On
    SQLite the write turn already serialises it with the daemon's writers."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")


def _secure(connection: Connection) -> None:
    """SQLite: what this connection overwrites or deletes is zeroed on its page, not left in a
    free block where a copy of the file would still show it."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete = ON")


def _empty_wal(engine: Engine) -> bool | None:
    """SQLite: copy every page into the database and truncate the WAL, whose old frames hold
    the rows as they were. False if readers kept it from finishing (it finishes later)."""
    if engine.dialect.name != "sqlite":
        return None
    try:
        with write_turn(engine), engine.connect() as connection:
            busy, _log, _done = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        return not busy
    except OperationalError:
        return False


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
