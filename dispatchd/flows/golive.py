"""Going live on a mailbox that already has mail, and taking that mail in later on purpose.

The first start of a folder (no cursor yet) records what is already there as "before go-live":
a message record each (Message-ID, sender, subject, arrival time, UID), no task, no mail, the
message left where it is. Intake then dispatches only what comes after. ``[mailbox] start_after``
moves the boundary to a day: messages up to the last one that arrived before it are before
go-live, the rest is dispatched. ``dispatchd import --since DAY`` turns recorded messages into
tasks (``--quiet``: without mailing anyone), exactly like intake would have.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session

from dispatchd.config import MailboxConfig
from dispatchd.domain.models import Disposition, RawMail
from dispatchd.flows.intake_deps import INFRASTRUCTURE_ERRORS, IntakeDeps
from dispatchd.flows.intake_record import MessageRecord, Outcome
from dispatchd.flows.reingest import take_in_before_go_live
from dispatchd.mail.imap import Envelope, ImapSource
from dispatchd.mail.parse import parse_mail
from dispatchd.store import queries
from dispatchd.store.db import without_integration_events, write_turn
from dispatchd.store.tables import InboundMessage

log = structlog.get_logger("dispatchd.golive")
IMPORT_RUN = 20  # messages per transaction, as intake takes a backlog


@dataclass(frozen=True)
class GoLive:
    """What a folder's first start left alone."""

    mailbox: str
    folder: str
    boundary: datetime  # start_after at midnight, or the moment of the first start
    cursor: int  # the last UID before go-live: intake dispatches the UIDs after it
    skipped: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None

    def summary(self) -> str:
        """One line for the log and ``systemctl status``."""
        if not self.skipped:
            return f"{self.mailbox}: live, no earlier mail in {self.folder}"
        return (f"{self.mailbox}: live; {self.skipped} earlier messages ({self.oldest:%Y-%m-%d} to "
                f"{self.newest:%Y-%m-%d}) left alone, take them in with: dispatchd import --since DAY")


def day_start(day: date, deps: IntakeDeps) -> datetime:
    """Midnight of ``day`` in the business calendar's time zone, in UTC (as stored)."""
    local = datetime.combine(day, time(), ZoneInfo(deps.config.calendar.timezone))
    return local.astimezone(timezone.utc)


def go_live(source: ImapSource, deps: IntakeDeps, uidvalidity: int) -> GoLive:
    """The first start of ``source``'s folder: record what is before go-live, set the cursor after it."""
    mailbox = source.config
    boundary = day_start(mailbox.start_after, deps) if mailbox.start_after else deps.clock.now()
    uids = source.uids_after(0)
    if mailbox.start_after is None:
        cursor = max(uids, default=0)
    else:  # UIDs follow arrival: up to the last message that arrived before that day
        candidates = source.arrived_before(mailbox.start_after + timedelta(days=1))  # the server's days
        cursor = max((e.uid for e in source.envelopes(candidates) if e.arrived < boundary), default=0)
    before = list(source.envelopes([uid for uid in uids if uid <= cursor]))
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        existing = queries.cursor_for(session, mailbox.account, mailbox.folder)
        if existing is not None:  # another instance went live first
            return GoLive(mailbox.name, mailbox.folder, boundary, existing.last_uid)
        _record_before_go_live(session, mailbox, uidvalidity, before, boundary)
        queries.advance_cursor(session, mailbox.account, mailbox.folder, uidvalidity, cursor)
    went = GoLive(mailbox.name, mailbox.folder, boundary, cursor, len(before),
                  min((e.arrived for e in before), default=None), max((e.arrived for e in before), default=None))
    log.info("mailbox.went_live", mailbox=mailbox.name, folder=mailbox.folder, boundary=boundary.isoformat(),
             before_go_live=went.skipped, after_uid=cursor, in_folder=len(uids),
             oldest=went.oldest.isoformat() if went.oldest else None,
             newest=went.newest.isoformat() if went.newest else None,
             dated_after_boundary=sum(1 for e in before if e.arrived >= boundary), summary=went.summary())
    return went


def _record_before_go_live(session: Session, mailbox: MailboxConfig, uidvalidity: int,
                           envelopes: list[Envelope], boundary: datetime) -> None:
    seen: set[str] = set()
    for envelope in envelopes:
        mail = parse_mail(envelope.header)
        key: str | None = f"{mailbox.address}|{mail.message_id}"
        # The first copy keeps the Message-ID: a later copy (or a re-read after a UIDVALIDITY
        # change) is then a duplicate, never dispatched.
        if key in seen or queries.first_copy(session, key or "") is not None:
            key = None
        else:
            seen.add(key or "")
        queries.insert_row(session, InboundMessage, MessageRecord(
            account=mailbox.account, folder=mailbox.folder, uidvalidity=uidvalidity, uid=envelope.uid,
            mailbox_address=mailbox.address, message_id=mail.message_id, dedup_key=key, sender=mail.sender,
            subject=mail.subject[:1000], received_at=envelope.arrived, raw_sha256="", size=envelope.size,
            body_hash=None, disposition=Disposition.BEFORE_GO_LIVE.value,
            reason=f"in {mailbox.folder} before go-live ({boundary:%Y-%m-%d %H:%M %Z})"))


@dataclass
class ImportReport:
    waiting: int = 0  # recorded before go-live and arrived since the day asked for
    outcomes: Counter[str] = field(default_factory=Counter)
    tasks: list[int] = field(default_factory=list)
    gone: int = 0  # no longer in the folder (moved or deleted by someone)
    failed: int = 0  # left recorded as before go-live; the log says why


def import_before_go_live(source: ImapSource, deps: IntakeDeps, since: datetime, quiet: bool,
                          progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Take in the messages of ``source``'s folder recorded before go-live that arrived at or
    after ``since``, oldest first, each exactly as intake would (``quiet``: nobody is mailed);
    each is moved on the server like any processed message, after its commit."""
    mailbox = source.config
    # Quiet: nobody is mailed, and no webhook, Slack or Teams channel hears of old mail either.
    deps = dataclasses.replace(deps, quiet=quiet, engine=without_integration_events(deps.engine) if quiet else deps.engine)
    report = ImportReport()
    state = source.select(mailbox.folder)
    with Session(deps.engine) as session:
        waiting = queries.before_go_live_since(session, mailbox.account, mailbox.folder, since)
    uids = [uid for uidvalidity, uid in waiting if uidvalidity == state.uidvalidity]
    report.waiting = len(waiting)
    report.gone = len(waiting) - len(uids)  # the folder was re-created: those UIDs mean nothing now
    done = 0
    fetched = iter(source.fetch(mailbox.folder, state.uidvalidity, uids))
    while run := list(itertools.islice(fetched, IMPORT_RUN)):
        pending: dict[str | None, list[int]] = {}
        for raw, outcome in _take_in(run, deps, mailbox, report):
            if outcome is not None:
                report.outcomes[outcome.disposition.value] += 1
                if outcome.task_id is not None and outcome.disposition in (Disposition.TASK, Disposition.TRIAGE):
                    report.tasks.append(outcome.task_id)
                target = mailbox.quarantine_folder if outcome.disposition is Disposition.QUARANTINED \
                    else mailbox.processed_folder
                pending.setdefault(target, []).append(raw.uid)
        for target, moved in pending.items():  # after the commit, like intake
            source.acknowledge(moved, target)
        done += len(run)
        if progress is not None:
            progress(done, len(uids))
    report.gone += len(uids) - done
    log.info("import.done", mailbox=mailbox.name, since=since.isoformat(), quiet=quiet, waiting=report.waiting,
             outcomes=dict(report.outcomes), gone=report.gone, failed=report.failed)
    return report


def _take_in(run: list[RawMail], deps: IntakeDeps, mailbox: MailboxConfig,
             report: ImportReport) -> list[tuple[RawMail, Outcome | None]]:
    """A run in one transaction; if one message breaks it, each one alone, so only that one
    stays recorded as before go-live (the log says why)."""
    try:
        return list(zip(run, take_in_before_go_live(run, deps, mailbox)))
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception:  # the per-message boundary, as in intake
        if len(run) == 1:
            log.exception("import.failed", uid=run[0].uid)
            report.failed += 1
            return [(run[0], None)]
    return [pair for raw in run for pair in _take_in([raw], deps, mailbox, report)]


def went_live_through(deps: IntakeDeps, mailbox: MailboxConfig, uidvalidity: int) -> int:
    """The highest UID still recorded as before go-live: intake leaves those messages alone."""
    with Session(deps.engine) as session:
        return queries.before_go_live_through(session, mailbox.account, mailbox.folder, uidvalidity)
