"""One pass over the intake folder: read everything after the cursor, ingest, acknowledge,
reconcile. Shared by ``dispatchd run``, ``run --once`` and the tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import structlog
from sqlmodel import Session

from dispatchd.config import MailboxConfig
from dispatchd.domain.models import Disposition, RawMail
from dispatchd.flows.golive import GoLive, go_live, went_live_through
from dispatchd.flows.ingest import IntakeDeps, ingest_run
from dispatchd.mail.imap import ImapSource
from dispatchd.store import queries
from dispatchd.store.tables import InboundMessage

log = structlog.get_logger("dispatchd.mailbox")
INTAKE_RUN = 20  # messages per transaction while catching up; a single new message is a run of one
RUN_SHARE_OF_BUDGET = 0.25  # a run's raw mail, of [mailbox] fetch_budget_mb: parsed, it takes several times that
RECONCILE_SLICE = 5000


@dataclass
class CycleReport:
    fetched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    gaps: list[int] = field(default_factory=list)
    went_live: GoLive | None = None  # this pass was the folder's first: what it left alone


def poll_mailbox(source: ImapSource, deps: IntakeDeps, stop: threading.Event,
                 progress: Callable[[int, int], None] | None = None,
                 committed: Callable[[], None] | None = None) -> CycleReport:
    """Ingest every message after the cursor of ``source``'s mailbox; stops between runs of
    messages when ``stop`` is set. ``progress(done, total)`` is called once the folder is
    selected and searched (done = 0), then after each run (a first sync can be long);
    ``committed()`` after each run is committed (its mail can go out)."""
    mailbox = source.config
    folder = mailbox.folder
    state = source.select(folder)
    report = CycleReport()
    last_uid = _cursor_position(deps, mailbox, state.uidvalidity)
    if last_uid is None:  # the folder's first start: what is already there is before go-live
        report.went_live = go_live(source, deps, state.uidvalidity)
        last_uid = report.went_live.cursor
    left_alone = went_live_through(deps, mailbox, state.uidvalidity)
    _acknowledge_recorded(source, deps, state.uidvalidity, source.unacknowledged_up_to(last_uid, left_alone))
    new_uids = source.uids_after(last_uid)
    if new_uids:
        log.info("mail.fetching", mailbox=mailbox.name, folder=folder, count=len(new_uids), after_uid=last_uid)
    if progress is not None:
        progress(0, len(new_uids))  # the mailbox is reachable: logged in, selected, searched
    pending: dict[str | None, list[int]] = {}
    acknowledged_at = 0
    run_bytes = int(mailbox.fetch_budget_mb * 1024 * 1024 * RUN_SHARE_OF_BUDGET)
    for run in _batched(source.fetch(folder, state.uidvalidity, new_uids), INTAKE_RUN, run_bytes):
        for outcome in ingest_run(run, deps, mailbox):
            report.fetched += 1
            report.outcomes[outcome.disposition.value] += 1
            pending.setdefault(_target_folder(mailbox, outcome.disposition), []).append(outcome.uid)
        if committed is not None:
            committed()
        if progress is not None:
            progress(report.fetched, len(new_uids))
        if report.fetched - acknowledged_at >= mailbox.fetch_batch:
            acknowledged_at = report.fetched
            _flush_acknowledgements(source, deps, state.uidvalidity, pending)
            log.info("mail.progress", done=report.fetched, total=len(new_uids))
        if stop.is_set():
            break
    _flush_acknowledgements(source, deps, state.uidvalidity, pending)
    if new_uids:
        report.gaps = _reconcile(deps, mailbox, state.uidvalidity, new_uids, report)
    return report


def _batched(items: Iterable[RawMail], size: int, max_bytes: int) -> Iterator[list[RawMail]]:
    """Runs of up to ``size`` messages and ``max_bytes`` of mail, as they come: a run is parsed
    and held whole until its commit, so big attachments make short runs."""
    run: list[RawMail] = []
    held = 0
    for item in items:
        run.append(item)
        held += len(item.data)
        if len(run) == size or held >= max_bytes:
            yield run
            run, held = [], 0
    if run:
        yield run


def _cursor_position(deps: IntakeDeps, mailbox: MailboxConfig, uidvalidity: int) -> int | None:
    """The last UID read; None before the folder's first start."""
    folder = mailbox.folder
    with Session(deps.engine) as session, session.begin():
        cursor = queries.cursor_for(session, mailbox.account, folder)
        if cursor is None:
            return None
        if cursor.uidvalidity != uidvalidity:
            # UIDs now mean different messages: re-read the folder; Message-ID dedup keeps
            # what we already handled from being dispatched again.
            log.warning("imap.uidvalidity_changed", folder=folder, old=cursor.uidvalidity, new=uidvalidity)
            cursor.uidvalidity, cursor.last_uid = uidvalidity, 0
            session.add(cursor)
            return 0
        return cursor.last_uid


def _target_folder(mailbox: MailboxConfig, disposition: Disposition) -> str | None:
    if disposition is Disposition.QUARANTINED:
        return mailbox.quarantine_folder
    return mailbox.processed_folder


def _acknowledge_recorded(source: ImapSource, deps: IntakeDeps, uidvalidity: int, uids: list[int]) -> None:
    """Move what a crash left behind between commit and move; what the server refused to move
    before stays where it is (`dispatchd quarantine` lists it) and never blocks new mail."""
    if not uids:
        return
    mailbox = source.config
    with Session(deps.engine) as session:
        rows = queries.recorded_dispositions(session, mailbox.account, mailbox.folder, uidvalidity, uids)
        parked = queries.unmovable_uids(session, mailbox.account, mailbox.folder, uidvalidity, rows)
    pending: dict[str | None, list[int]] = {}
    for uid, disposition in rows.items():
        if uid not in parked:
            pending.setdefault(_target_folder(mailbox, Disposition(disposition)), []).append(uid)
    if pending:
        log.info("mail.acknowledging_leftovers", count=sum(map(len, pending.values())))
    _flush_acknowledgements(source, deps, uidvalidity, pending)


def _flush_acknowledgements(source: ImapSource, deps: IntakeDeps, uidvalidity: int,
                            pending: dict[str | None, list[int]]) -> None:
    mailbox = source.config
    for target, uids in pending.items():
        refused = source.acknowledge(uids, target)
        if not refused:
            continue
        with Session(deps.engine) as session, session.begin():
            queries.mark_unmovable(session, mailbox.account, mailbox.folder, uidvalidity, refused)
        for uid, reason in refused.items():  # once per message: it is not tried again
            log.error("mail.unmovable", mailbox=mailbox.name, uid=uid, target=target or "keyword", reason=reason)
    pending.clear()


def release_unmovable(deps: IntakeDeps, message: int) -> bool:
    """`quarantine retry` for a message the server refused to move: the next pass tries again.
    False if ``message`` is not such a message."""
    with Session(deps.engine) as session, session.begin():
        row = session.get(InboundMessage, message)
        if row is None or not row.unmovable:
            return False
        row.unmovable = None
        session.add(row)
    return True


def _reconcile(deps: IntakeDeps, mailbox: MailboxConfig, uidvalidity: int,
               fetched_uids: list[int], report: CycleReport) -> list[int]:
    """Every UID we saw must now be recorded as ingested or quarantined; log any gap."""
    folder = mailbox.folder
    missing: list[int] = []
    recorded = quarantined = last_recorded = 0
    # A slice at a time: a first sync has tens of thousands of UIDs, and this ran at the pass's peak.
    for start in range(0, len(fetched_uids), RECONCILE_SLICE):
        uids = fetched_uids[start:start + RECONCILE_SLICE]
        with Session(deps.engine) as session:
            found = queries.recorded_dispositions(session, mailbox.account, folder, uidvalidity, uids)
        missing += (uid for uid in uids if uid not in found)
        recorded += len(found)
        quarantined += sum(1 for disposition in found.values() if disposition == Disposition.QUARANTINED)
        last_recorded = max(last_recorded, max(found, default=0))
    gaps = sorted(uid for uid in missing if uid <= last_recorded)  # later ones were never reached
    log.info("reconcile.done", folder=folder, on_server=len(fetched_uids), ingested=recorded - quarantined,
             quarantined=quarantined, outcomes=dict(report.outcomes))
    if gaps:
        log.error("reconcile.gap", folder=folder, uids=gaps[:50], count=len(gaps))
    return gaps
