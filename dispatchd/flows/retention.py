"""Retention: what is past its time under ``[retention]`` goes, in small batches.

Each batch is one short transaction (under the write turn on SQLite), so intake never waits
long; it also adds its counts to the run's ``lifecycle_run`` row, so a run that is killed has
recorded exactly what it removed, and the next run carries on where it stopped. Blob files are
removed after the commits, only when no row names them (``store/lifecycle.py``). Open tasks,
and the mail and files of open tasks, are never pruned.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select

from dispatchd.config.model import RetentionConfig
from dispatchd.domain.models import Disposition
from dispatchd.domain.states import OPEN
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.store.blobs import BlobStore
from dispatchd.store.db import write_turn
from dispatchd.store.lifecycle import delete_rows, release_blobs, remove_released_blobs, table

log = structlog.get_logger("dispatchd.retention")

OPEN_STATUSES = tuple(sorted(s.value for s in OPEN))
QUARANTINED = Disposition.QUARANTINED.value


@dataclass
class PruneReport:
    counts: Counter[str] = field(default_factory=Counter)  # per [retention] kind: rows pruned (or to prune)
    bytes: Counter[str] = field(default_factory=Counter)   # per kind: bytes freed (estimated on a dry run)
    blobs_removed: int = 0
    blobs_waiting: int = 0   # stored again by intake around their release: removed by a later run
    dry_run: bool = False
    run_id: int | None = None
    longest_batch: float = 0.0  # seconds: the longest any batch held the write turn


    @property
    def bytes_freed(self) -> int:
        return sum(self.bytes.values())


def _not_open_task(task_id) -> object:  # type: ignore[no-untyped-def]
    """Belongs to no task, or to a closed or cancelled one."""
    task = table("task")
    return or_(task_id.is_(None), task_id.in_(select(task.c.id).where(task.c.status.not_in(OPEN_STATUSES))))


# Each kind: the rows past ``cutoff`` it would change (id, bytes), and how it changes a batch of them.
def _closed_tasks(cutoff: datetime) -> Select:
    task = table("task")
    return select(task.c.id, literal(0)).where(task.c.status.not_in(OPEN_STATUSES), task.c.updated_at < cutoff)


def _raw_mail(cutoff: datetime, quarantined: bool = False) -> Select:
    inbound = table("inbound_message")
    kind = inbound.c.disposition == QUARANTINED if quarantined else inbound.c.disposition != QUARANTINED
    return select(inbound.c.id, inbound.c.size).where(
        inbound.c.received_at < cutoff, inbound.c.raw_sha256 != "", kind, _not_open_task(inbound.c.task_id))


def _attachments(cutoff: datetime) -> Select:
    attachment, inbound = table("attachment"), table("inbound_message")
    return select(attachment.c.id, attachment.c.size).join(inbound, inbound.c.id == attachment.c.inbound_id).where(
        inbound.c.received_at < cutoff, attachment.c.sha256 != "", _not_open_task(attachment.c.task_id))


def _outbox_sent(cutoff: datetime) -> Select:
    outbox = table("outbox")
    return select(outbox.c.id, func.length(outbox.c.raw)).where(
        outbox.c.status == "sent", outbox.c.sent_at < cutoff, func.length(outbox.c.raw) > 0)


def _drop_tasks(connection: Connection, ids: list[int], now: datetime) -> int:
    removed: Counter[str] = Counter()
    released: set[str] = set()
    delete_rows(connection, table("task"), "id", ids, removed, released)
    release_blobs(connection, released, now)
    return 0


def _blank_blob(name: str, column: str) -> Callable[[Connection, list[int], datetime], int]:
    def apply(connection: Connection, ids: list[int], now: datetime) -> int:
        target = table(name)
        digests = [d for (d,) in connection.execute(select(target.c[column]).where(target.c.id.in_(ids)))]
        connection.execute(update(target).where(target.c.id.in_(ids)).values({column: ""}))
        release_blobs(connection, digests, now)
        return 0  # the bytes are counted when the files go
    return apply


def _blank_outbox(connection: Connection, ids: list[int], now: datetime) -> int:
    outbox = table("outbox")
    freed = connection.execute(select(func.sum(func.length(outbox.c.raw))).where(outbox.c.id.in_(ids))).scalar()
    # The row stays: replies and bounces are matched by its Message-ID.
    connection.execute(update(outbox).where(outbox.c.id.in_(ids)).values(raw=b""))
    return int(freed or 0)


KINDS: dict[str, tuple[Callable[[datetime], Select], Callable[[Connection, list[int], datetime], int]]] = {
    # Closed tasks first: their mail and files go with them, and are not counted twice below.
    "closed_tasks": (_closed_tasks, _drop_tasks),
    "raw_mail": (_raw_mail, _blank_blob("inbound_message", "raw_sha256")),
    "quarantine": (lambda cutoff: _raw_mail(cutoff, quarantined=True), _blank_blob("inbound_message", "raw_sha256")),
    "attachments": (_attachments, _blank_blob("attachment", "sha256")),
    "outbox_sent": (_outbox_sent, _blank_outbox),
}


def prune(engine: Engine, blobs: BlobStore, retention: RetentionConfig, now: datetime,
          dry_run: bool = False) -> PruneReport:
    """Prune every kind whose ``[retention]`` period is set; ``dry_run``: only count."""
    report = PruneReport(dry_run=dry_run)
    with blobs.maintenance():  # a backup does not copy a list of blobs this is removing
        if dry_run:
            with engine.connect() as connection:
                for kind, (chosen, _apply) in _due(retention, now):
                    rows = chosen.subquery()
                    count, size = connection.execute(select(func.count(), func.coalesce(func.sum(rows.c[1]), 0))
                                                      .select_from(rows)).one()
                    report.counts[kind], report.bytes[kind] = int(count), int(size)
            return report
        report.run_id = _start_run(engine, now)
        for kind, (chosen, apply) in _due(retention, now):
            while True:
                # Chosen outside the write turn (the search may read a whole table), chosen again
                # by key inside it (a task reopened meanwhile drops out): intake waits only for
                # the changes.
                with engine.connect() as connection:
                    ids = [row[0] for row in connection.execute(chosen.order_by(None).limit(retention.batch))]
                if not ids:
                    break
                with write_turn(engine):
                    held = time.monotonic()
                    with engine.begin() as connection:
                        ids = [row[0] for row in connection.execute(chosen.where(chosen.selected_columns[0].in_(ids)))]
                        report.bytes[kind] += apply(connection, ids, _utc(now)) if ids else 0
                        report.counts[kind] += len(ids)
                        _record(connection, report)
                    report.longest_batch = max(report.longest_batch, time.monotonic() - held)
                log.info("prune.batch", kind=kind, rows=len(ids))
        report.blobs_removed, blob_bytes, report.blobs_waiting = remove_released_blobs(engine, blobs)
        report.bytes["blobs"] += blob_bytes
        with write_turn(engine), engine.begin() as connection:
            _record(connection, report, finished=_utc(now))
    log.info("prune.done", run_id=report.run_id, bytes_freed=report.bytes_freed, blobs_removed=report.blobs_removed,
             longest_batch=round(report.longest_batch, 3),
             blobs_waiting=report.blobs_waiting, **report.counts)
    return report


def prune_job(deps: IntakeDeps) -> Counter[str]:
    """The nightly prune; while every period is "never", only the blob files an erasure left
    for later (stored again moments before it) are removed."""
    if not deps.config.retention.anything:
        with deps.blobs.maintenance():
            removed, freed, _waiting = remove_released_blobs(deps.engine, deps.blobs)
        return Counter({"blobs_removed": removed, "bytes_freed": freed} if removed else {})
    report = prune(deps.engine, deps.blobs, deps.config.retention, deps.clock.now())
    return Counter({**report.counts, "blobs_removed": report.blobs_removed, "bytes_freed": report.bytes_freed})


def freed_since(engine: Engine, since: datetime) -> tuple[int, int]:
    """(bytes freed, runs) by pruning since ``since``: for the health report."""
    run = table("lifecycle_run")
    with engine.connect() as connection:
        freed, runs = connection.execute(select(func.coalesce(func.sum(run.c.bytes_freed), 0), func.count()).where(
            run.c.kind == "prune", run.c.started_at >= _utc(since))).one()
    return int(freed), int(runs)


def _due(retention: RetentionConfig, now: datetime):  # type: ignore[no-untyped-def]
    for kind, (chosen, apply) in KINDS.items():
        period: timedelta | None = getattr(retention, kind)
        if period is not None:
            yield kind, (chosen(_utc(now - period)), apply)


def _start_run(engine: Engine, now: datetime) -> int:
    run = table("lifecycle_run")
    with write_turn(engine), engine.begin() as connection:
        return int(connection.execute(run.insert().values(kind="prune", subject="", started_at=_utc(now),
                                                          counts="{}", bytes_freed=0)).inserted_primary_key[0])


def _record(connection: Connection, report: PruneReport, finished: datetime | None = None) -> None:
    run = table("lifecycle_run")
    values: dict[str, object] = {"counts": json.dumps(dict(report.counts)), "bytes_freed": report.bytes_freed}
    if finished is not None:
        values["finished_at"] = finished
    connection.execute(update(run).where(run.c.id == report.run_id).values(**values))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
