"""The frozen values config.toml becomes: one dataclass per section, and the whole ``Config``."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path

from dispatchd.domain.eligibility import Shift
from dispatchd.domain.events import EventFilter
from dispatchd.domain.loops_budget import ReplyLimits
from dispatchd.oauth import OAuth2Config

# What an address in config.toml must look like (patterns such as '*@acme.com' belong in senders).
EMAIL_PATTERN = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


@dataclass(frozen=True)
class Secret:
    """Where a password comes from; resolved when a connection is made, never logged."""

    env: str | None = None
    file: Path | None = None

    def reveal(self) -> str | None:
        if self.env:
            return os.environ.get(self.env)
        if self.file:
            return self.file.read_text(encoding="utf-8").strip()
        return None

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r}, file={self.file!r})"



@dataclass(frozen=True)
class MailboxConfig:
    """One intake mailbox ([mailbox], or each [[mailbox]]) and what its requests default to."""

    host: str
    port: int
    tls: str
    username: str
    password: Secret
    address: str
    oauth2: OAuth2Config | None = None
    folder: str = "INBOX"
    processed_folder: str | None = "Processed"
    quarantine_folder: str = "Quarantine"
    mode: str = "idle"
    poll_interval: float = 60.0
    idle_timeout: float = 300.0
    fetch_batch: int = 200
    fetch_budget_mb: float = 50.0  # mail held at once while reading (FETCH chunks, a run's bytes)
    name: str = ""
    default_client: str | None = None
    queue_prefix: str = ""
    # Go-live boundary for the folder's first start: mail dated before this day (in the calendar's
    # time zone) is recorded as "before go-live", not dispatched; None = what is there at the start.
    start_after: date | None = None

    @property
    def account(self) -> str:
        """The IMAP account, as the cursor and the message records name it."""
        return f"{self.username}@{self.host}:{self.port}"



@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: str
    username: str | None
    password: Secret
    from_address: str
    timeout: float = 30.0
    max_attempts: int | None = None  # an extra cap on one email's attempts; the horizon is give_up_after
    give_up_after_hours: float = 72.0  # an email refused temporarily is retried this long, then parked
    verp: bool = True
    oauth2: OAuth2Config | None = None
    connections: int = 4  # sent over at once: each mostly waits on the server's replies



@dataclass(frozen=True)
class IntakeConfig:
    reply_to_malformed: bool = True
    # Format help to an address that is no client's: "never" (forged senders would turn it into
    # backscatter), "authenticated" (their domain passed DKIM/SPF/DMARC) or "always".
    reply_to_unknown_senders: str = "never"
    format_help_per_day: int = 3  # per address, whoever it is
    triage_queue: str = "triage"
    max_message_bytes: int = 25 * 1024 * 1024
    max_attachment_bytes: int = 20 * 1024 * 1024
    reply_limits: ReplyLimits = ReplyLimits()



@dataclass(frozen=True)
class SecurityConfig:
    """The HMAC secret for signed reply addresses and the receiving server we trust.

    Without a configured secret one is generated once and kept in the database, so every
    instance sharing it signs alike; ``legacy_secret_file`` is where older versions kept it.
    """

    secret: Secret
    legacy_secret_file: Path
    trusted_authserv_id: str | None = None



@dataclass(frozen=True)
class WebConfig:
    """[web]: where the web side listens, the address in links, the signing secret, limits."""

    listen: str | None = None  # HOST:PORT the daemon serves the web side on; None: it does not
    base_url: str | None = None  # e.g. https://dispatch.example.com; None: emails carry no link
    secret: Secret = field(default_factory=Secret)  # signs client links and CSRF tokens
    link_days: int = 90  # how long a client link in an email stays valid
    max_upload_bytes: int = 20 * 1024 * 1024  # per request form, all files together
    max_files: int = 10
    trusted_header: str | None = None  # staff: a header a reverse proxy sets to the signed-in address
    staff_session_hours: int = 12



@dataclass(frozen=True)
class CalendarConfig:
    timezone: str = "UTC"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    closed_dates: tuple[date, ...] = ()



@dataclass(frozen=True)
class BackupConfig:
    """[backup]: the scheduled backup's directory (None: not scheduled) and how many to keep."""

    dir: Path | None = None
    keep: int = 14


@dataclass(frozen=True)
class RetentionConfig:
    """[retention]: how long each kind of data is kept (None: forever). Open tasks are never pruned."""

    KINDS = ("raw_mail", "attachments", "closed_tasks", "quarantine", "outbox_sent")
    raw_mail: timedelta | None = None       # the .eml of every message
    attachments: timedelta | None = None    # attachment files
    closed_tasks: timedelta | None = None   # done/cancelled tasks with everything recorded about them
    quarantine: timedelta | None = None     # quarantined messages (their .eml)
    outbox_sent: timedelta | None = None    # the bytes of sent mail (the row stays: replies match it)
    batch: int = 500                        # rows per transaction (pruning, erasure): no long lock

    @property
    def anything(self) -> bool:
        return any(getattr(self, kind) is not None for kind in self.KINDS)


@dataclass(frozen=True)
class BookingConfig:
    """[booking]: booking calls in the attendees' CalDAV calendars (README "Booking calls").
    ``calendars``: staff email -> the URL of their calendar collection."""

    url: str
    username: str | None
    password: Secret
    calendars: dict[str, str]
    meeting_link: str = ""  # a fixed room, or a template with {task} and {uid}
    notice_hours: float = 24.0
    reminder_hours: float = 24.0
    proposals: int = 4
    step_minutes: int = 30
    horizon_days: int = 14
    retry_minutes: float = 5.0  # the calendar server was down: try the booking again after this
    timeout: float = 20.0


@dataclass(frozen=True)
class SecondOpinionConfig:
    """[second_opinion]: an OpenAI-compatible chat endpoint asked about the requests the triage
    model left in triage (README "A second opinion"). Absent: never asked, nothing is sent."""

    url: str                    # the API's base, e.g. http://127.0.0.1:11434/v1 (no /chat/completions)
    model: str                  # e.g. "llama3.1:8b"
    api_key: Secret = field(default_factory=Secret)  # a bearer token (api_key_env / api_key_file); none for Ollama
    timeout: float = 15.0       # seconds for one whole call, connecting included
    threshold: float = 0.8      # the answer's own confidence needed to route
    max_per_run: int = 20       # calls per run of the job at most


@dataclass(frozen=True)
class Client:
    """A client: who may file for it (``senders``, patterns allowed) and who may hear about its
    work. ``contacts`` are named addresses (they may file too); ``digest_to``, when given, is
    the only list the weekly digest goes to."""

    name: str
    senders: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    digest_to: tuple[str, ...] = ()
    followers: tuple[str, ...] = ()  # the client's addresses that follow every one of its requests
    timezone: str | None = None  # the zone call times are shown in (default: the [calendar]'s)
    region: str | None = None  # only staff who cover it take its work
    language: str | None = None  # a skill all its work needs ("german")
    owner: str | None = None  # the account manager (a staff name): preferred, and told of its gaps
    preferred: tuple[str, ...] = ()  # staff names who get its work when loads are equal

    def owns_sender(self, address: str) -> bool:
        address = address.lower()
        return address in self.contacts or any(fnmatch.fnmatchcase(address, pattern.lower())
                                               for pattern in self.senders)

    def may_receive(self, address: str) -> bool:
        """Whether ``address`` is one of this client's: a sender, a contact or a digest address."""
        return self.owns_sender(address) or address.lower() in self.digest_to



@dataclass(frozen=True)
class Staff:
    name: str
    email: str
    role: str = "producer"
    queues: tuple[str, ...] = ()
    wip_limit: int = 3
    away_until: date | None = None
    display_name: str = ""  # what clients read; default: the first name
    skills: frozenset[str] = frozenset()  # lower case: "shopify", "german", "print"
    regions: frozenset[str] = frozenset()
    backup: str | None = None  # a staff name: who takes what this person cannot
    shift: Shift | None = None  # own working days and hours; None = the agency calendar
    max_per_day: int | None = None  # new tasks a day, on top of the WIP limit

    @property
    def client_name(self) -> str:
        """The name clients see: never an email address ('Ana Lopez' -> 'Ana')."""
        return self.display_name or (self.name.split() or ["our team"])[0]



@dataclass(frozen=True)
class Queue:
    name: str
    owner: str | None = None
    display_name: str | None = None  # what clients read instead of the internal name



@dataclass(frozen=True)
class Destination:
    """One place events are delivered to."""

    name: str
    kind: str                   # "webhook", "slack" or "teams"
    url: str | None             # a webhook's URL (not a secret)
    url_secret: Secret | None   # a Slack/Teams URL (the URL is the credential)
    signing: Secret | None      # a webhook's HMAC secret
    filter: EventFilter = field(default_factory=EventFilter)
    owners: tuple[str, ...] = ()  # told once when events are parked or the destination is gone
    concurrency: int = 4          # requests in flight at once (each task's events still in order)
    timeout: float = 10.0         # seconds for one request, connecting included
    max_attempts: int = 12        # then parked (about a day of doubling waits)

    def target(self) -> str | None:
        """The URL to post to (revealed from the environment or file for Slack and Teams)."""
        return self.url if self.url_secret is None else self.url_secret.reveal()



@dataclass(frozen=True)
class Config:
    path: Path
    mailboxes: tuple[MailboxConfig, ...]
    smtp: SmtpConfig
    database_url: str
    data_dir: Path
    rules_dir: Path
    templates_dir: Path
    intake: IntakeConfig
    calendar: CalendarConfig
    security: SecurityConfig
    log_level: str = "info"
    log_format: str = "auto"
    clients: tuple[Client, ...] = ()
    staff: tuple[Staff, ...] = ()
    queues: tuple[Queue, ...] = field(default_factory=tuple)
    schedule: dict[str, str] = field(default_factory=dict)
    web: WebConfig = field(default_factory=WebConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    booking: BookingConfig | None = None
    # [[webhooks]], [[slack]], [[teams]] (config/integrations.py): where integration events go
    destinations: tuple[Destination, ...] = ()
    second_opinion: SecondOpinionConfig | None = None  # [second_opinion]; None: off

    def destination_named(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)

    @property
    def mailbox(self) -> MailboxConfig:
        """The first mailbox: its address answers for mail that belongs to no one mailbox
        (digests, reports, replies to people who are not a task's)."""
        return self.mailboxes[0]

    def mailbox_named(self, name: str | None) -> MailboxConfig:
        """A task's mailbox by name; the first one for older tasks or a mailbox since removed."""
        return next((m for m in self.mailboxes if m.name == name), self.mailboxes[0])

    def mailbox_reading(self, account: str, folder: str) -> MailboxConfig:
        """The mailbox a stored message was fetched by; the first one if it is gone from config."""
        return next((m for m in self.mailboxes if (m.account, m.folder) == (account, folder)), self.mailboxes[0])

    @property
    def intake_addresses(self) -> frozenset[str]:
        return frozenset(m.address for m in self.mailboxes)

    def staff_by_email(self, address: str) -> Staff | None:
        address = address.lower()
        return next((s for s in self.staff if s.email.lower() == address), None)

    def staff_by_name(self, name: str) -> Staff | None:
        lowered = name.strip().lower()
        return next((s for s in self.staff if s.name.lower() == lowered or s.email.lower() == lowered), None)

    def queue_owners(self, queue: str) -> tuple[Staff, ...]:
        """Who hears about new work in ``queue``: its named owner, else its leads, else its members."""
        named = next((q.owner for q in self.queues if q.name == queue and q.owner), None)
        if named:
            owner = self.staff_by_name(named)
            return (owner,) if owner else ()
        members = [s for s in self.staff if queue in s.queues]
        leads = [s for s in members if s.role in ("lead", "manager")]
        if leads or members:
            return tuple(leads or members)
        return tuple(s for s in self.staff if s.role == "manager")

