"""config.toml as typed, frozen values, validated once at start.

Every refusal names the file, the line and the key (see ``tomlfile``). Secrets are never
accepted inline: they come from an environment variable or a file, so config.toml can be
committed and shared.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from datetime import date, time
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from dispatchd.defaults import default_dir
from dispatchd.domain.loops_budget import ReplyLimits
from dispatchd.domain.sla import parse_sla
from dispatchd.errors import ConfigError
from dispatchd.oauth import OAuth2Config
from dispatchd.tomlfile import Reader, TomlFile, load_toml

TLS_MODES = ("ssl", "starttls", "none")
ROLES = ("producer", "lead", "manager")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")


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
class CalendarConfig:
    timezone: str = "UTC"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    closed_dates: tuple[date, ...] = ()


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


def load_config(path: str | os.PathLike[str], credentials: bool = True) -> Config:
    """Read and validate config.toml; raises ConfigError listing every problem found.

    ``credentials=False`` is for read-only views, which need only the database: they run
    without the mail passwords in the environment (least privilege for operators).
    """
    config_path = Path(path).resolve()
    doc = load_toml(config_path)
    if doc.problems:
        raise ConfigError(doc.problems)
    config = _build(doc, credentials)
    if doc.problems:
        raise ConfigError(doc.problems)
    return config


def _build(doc: TomlFile, credentials: bool = True) -> Config:
    root = Reader(doc, doc.data, ())
    base = doc.path.parent
    mailboxes = _mailboxes(root, base, credentials)
    smtp = _smtp(root.table_of("smtp"), base, credentials)
    database = root.table_of("database")
    url = database.str("url", "sqlite:///dispatchd.db")
    if url and not url.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+psycopg:")):
        database.problem("url", "must be sqlite:///FILE or postgresql://USER@HOST/DATABASE")
    if url and urlsplit(url).password:
        database.problem("url", "inline secrets are refused: PostgreSQL reads the password from "
                                "PGPASSWORD or ~/.pgpass (PGPASSFILE)")
    database.refuse_unknown()
    storage = root.table_of("storage")
    data_dir = base / storage.str("dir", "data")
    storage.refuse_unknown()
    paths = root.table_of("paths")
    rules_dir = _directory(paths, "rules", base)
    templates_dir = _directory(paths, "templates", base)
    paths.refuse_unknown()
    intake_r = root.table_of("intake")
    intake = IntakeConfig(
        reply_to_malformed=intake_r.bool("reply_to_malformed", True),
        reply_to_unknown_senders=_unknown_senders(intake_r),
        format_help_per_day=intake_r.int("format_help_per_day", 3, minimum=0, maximum=100),
        triage_queue=intake_r.str("triage_queue", "triage"),
        max_message_bytes=int(intake_r.float("max_message_mb", 25.0) * 1024 * 1024),
        max_attachment_bytes=int(intake_r.float("max_attachment_mb", 20.0) * 1024 * 1024),
        reply_limits=ReplyLimits(
            per_sender_per_hour=intake_r.int("max_replies_per_sender_per_hour", 30, minimum=1),
            per_thread_per_hour=intake_r.int("max_replies_per_thread_per_hour", 10, minimum=1),
            per_hour=intake_r.int("max_replies_per_hour", 1000, minimum=1),
            same_body_senders=intake_r.int("same_body_senders", 5, minimum=2)),
    )
    intake_r.refuse_unknown()
    logging_r = root.table_of("logging")
    log_level = logging_r.choice("level", ("debug", "info", "warning", "error"), "info")
    log_format = logging_r.choice("format", ("auto", "json", "console"), "auto")
    logging_r.refuse_unknown()
    calendar = _calendar(root.table_of("calendar"))
    security_r = root.table_of("security")
    security = SecurityConfig(secret=_secret(security_r, base, required=False, prefix="secret",
                                             credentials=credentials),
                              legacy_secret_file=data_dir / "reply-secret",
                              trusted_authserv_id=security_r.str("trusted_authserv_id"))
    security_r.refuse_unknown()
    schedule = _schedule(root.table_of("schedule"))
    clients = tuple(_client(r) for r in root.tables("clients"))
    staff = tuple(_staff(r) for r in root.tables("staff"))
    queues = tuple(_queue(r) for r in root.tables("queues"))
    root.refuse_unknown()
    config = Config(
        path=doc.path, mailboxes=mailboxes, smtp=smtp, database_url=_sqlite_relative(url, base),
        data_dir=data_dir, rules_dir=rules_dir, templates_dir=templates_dir, intake=intake,
        calendar=calendar, security=security, log_level=log_level, log_format=log_format,
        clients=clients, staff=staff, queues=queues, schedule=schedule,
    )
    _check_people(doc, config)
    _check_mailboxes(doc, config)
    _check_loops(doc, config)
    return config


def _unknown_senders(r: Reader) -> str:
    """reply_to_unknown_senders = false | "authenticated" | true."""
    value = r.either("reply_to_unknown_senders", (bool, str), False)
    answers = {False: "never", True: "always", "authenticated": "authenticated"}
    if value not in answers:
        r.problem("reply_to_unknown_senders", f'must be false, "authenticated" or true; got {value!r}')
        return "never"
    return answers[value]


def _directory(r: Reader, name: str, base: Path) -> Path:
    """[paths] rules/templates; without an entry, ./rules beside the config, else the shipped ones."""
    given = r.str(name)
    if given is not None:
        path = base / given
        if not path.is_dir():
            r.problem(name, f"{path} is not a directory")
        return path
    beside = base / name
    return beside if beside.is_dir() else default_dir(name)


def _secret(r: Reader, base: Path, required: bool, prefix: str = "password", credentials: bool = True) -> Secret:
    """Where a secret comes from; with ``credentials`` it must be there now."""
    if prefix in r.table:
        r.known.add(prefix)
        r.problem(prefix, f"inline secrets are refused; use {prefix}_env or {prefix}_file")
    env = r.str(f"{prefix}_env")
    file = r.str(f"{prefix}_file")
    if env and file:
        r.problem(f"{prefix}_file", f"give {prefix}_env or {prefix}_file, not both")
    if required and not (env or file):
        r.problem(f"{prefix}_env", f"is required (or {prefix}_file)")
    if credentials and env and env not in os.environ:
        r.problem(f"{prefix}_env", f"environment variable {env} is not set")
    secret_file = base / file if file else None
    if credentials and secret_file and not secret_file.is_file():
        r.problem(f"{prefix}_file", f"{secret_file} does not exist")
    return Secret(env=env, file=secret_file)


def _oauth2(r: Reader, base: Path, credentials: bool = True, service: str = "imap") -> OAuth2Config | None:
    """auth = "xoauth2": a token command, or a refresh token with its token endpoint."""
    if r.choice("auth", ("password", "xoauth2"), "password") != "xoauth2":
        for key in ("oauth2_token_command", "oauth2_token_url", "oauth2_client_id", "oauth2_refresh_token_file",
                    "oauth2_client_secret_env", "oauth2_client_secret_file", "oauth2_scope"):
            if key in r.table:
                r.problem(key, 'only used with auth = "xoauth2"')
                r.known.add(key)
        return None
    command = r.str("oauth2_token_command")
    url = r.str("oauth2_token_url")
    refresh = r.str("oauth2_refresh_token_file")
    client_id = r.str("oauth2_client_id")
    secret = _secret(r, base, required=False, prefix="oauth2_client_secret", credentials=credentials)
    if not command and not (url and refresh and client_id):
        r.problem("auth", "xoauth2 needs oauth2_token_command, or oauth2_token_url + oauth2_client_id + "
                          "oauth2_refresh_token_file")
    refresh_path = base / refresh if refresh else None
    if credentials and refresh_path is not None and not refresh_path.is_file():
        r.problem("oauth2_refresh_token_file", f"{refresh_path} does not exist")
    return OAuth2Config(token_command=command, token_url=url, client_id=client_id,
                        client_secret=secret.reveal() if credentials else None,
                        refresh_token_file=refresh_path, scope=r.str("oauth2_scope"), service=service)


def _mailboxes(root: Reader, base: Path, credentials: bool = True) -> tuple[MailboxConfig, ...]:
    """[mailbox] for one intake address, [[mailbox]] for several."""
    if isinstance(root.table.get("mailbox"), list):
        mailboxes = tuple(_mailbox(r, base, credentials) for r in root.tables("mailbox"))
        if not mailboxes:
            root.problem("mailbox", "needs at least one [[mailbox]]")
    else:
        mailboxes = (_mailbox(root.table_of("mailbox"), base, credentials),)
    return mailboxes


def _mailbox(r: Reader, base: Path, credentials: bool = True) -> MailboxConfig:
    tls = r.choice("tls", TLS_MODES, "ssl")
    username = r.str("username", "", required=True)
    address = r.str("address", username if "@" in (username or "") else None)
    if not address:
        r.problem("address", "is required when username is not an email address")
    processed = r.str("processed_folder", "Processed")
    oauth2 = _oauth2(r, base, credentials)
    config = MailboxConfig(
        host=r.str("host", "", required=True),
        port=r.int("port", 993 if tls == "ssl" else 143, minimum=1, maximum=65535),
        tls=tls,
        username=username,
        password=_secret(r, base, required=oauth2 is None, credentials=credentials),
        address=(address or "").lower(),
        oauth2=oauth2,
        folder=r.str("folder", "INBOX"),
        processed_folder=processed or None,
        quarantine_folder=r.str("quarantine_folder", "Quarantine"),
        mode=r.choice("mode", ("idle", "poll"), "idle"),
        poll_interval=r.float("poll_interval", 60.0),
        idle_timeout=r.float("idle_timeout", 300.0),
        fetch_batch=r.int("fetch_batch", 200, minimum=1, maximum=5000),
        fetch_budget_mb=r.float("fetch_budget_mb", 50.0),
        name=r.str("name", (address or "").lower()),
        default_client=r.str("default_client"),
        queue_prefix=r.str("queue_prefix", ""),
        start_after=r.day("start_after"),
    )
    if config.poll_interval <= 0:
        r.problem("poll_interval", "must be positive")
    if config.fetch_budget_mb < 1:
        r.problem("fetch_budget_mb", "must be at least 1 (MB)")
    r.refuse_unknown()
    return config


def _smtp(r: Reader, base: Path, credentials: bool = True) -> SmtpConfig:
    tls = r.choice("tls", TLS_MODES, "starttls")
    username = r.str("username")
    from_address = r.str("from", "", required=True)
    oauth2 = _oauth2(r, base, credentials, service="smtp")
    if from_address and not _EMAIL.match(parseaddr(from_address)[1]):
        r.problem("from", f"{from_address!r} is not an email address")
    config = SmtpConfig(
        host=r.str("host", "", required=True),
        port=r.int("port", 465 if tls == "ssl" else 587, minimum=1, maximum=65535),
        tls=tls,
        username=username,
        password=_secret(r, base, required=bool(username) and oauth2 is None, credentials=credentials),
        from_address=from_address,
        oauth2=oauth2,
        timeout=r.float("timeout", 30.0),
        max_attempts=r.int("max_attempts", None, minimum=1, maximum=1000),
        give_up_after_hours=_hours(r, "give_up_after", "3 days"),
        verp=r.bool("verp", True),
        connections=r.int("connections", 4, minimum=1, maximum=20),
    )
    r.refuse_unknown()
    return config


def _hours(r: Reader, key: str, default: str) -> float:
    """A span of real time such as '3 days' or '36 hours', in hours."""
    written = r.str(key, default)
    try:
        target = parse_sla(written)
        if target.unit not in ("hours", "days", "weeks"):
            raise ValueError(f"{written!r}: write real time, e.g. '3 days' or '36 hours', not business time")
    except ValueError as exc:
        r.problem(key, str(exc))
        target = parse_sla(default)
    return target.amount * {"hours": 1, "days": 24, "weeks": 168}[target.unit]


def _calendar(r: Reader) -> CalendarConfig:
    zone = r.str("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem("timezone", f"unknown time zone {zone!r} (use an IANA name such as Europe/Berlin)")
        zone = "UTC"
    days = []
    for day in r.str_list("workdays", WEEKDAYS[:5]):
        if day.lower()[:3] in WEEKDAYS:
            days.append(WEEKDAYS.index(day.lower()[:3]))
        else:
            r.problem("workdays", f"unknown weekday {day!r}")
    hours = r.str("hours", "09:00-17:00")
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", hours)
    start, end = time(9), time(17)
    if not match:
        r.problem("hours", f"must look like '09:00-17:00', not {hours!r}")
    else:
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2)):
            r.problem("hours", f"{hours!r} is not a valid opening time range")
        else:
            start, end = time(h1, m1), (time(23, 59, 59) if h2 == 24 else time(h2, m2))
    closed = []
    for text in r.str_list("closed_dates"):
        try:
            closed.append(date.fromisoformat(text))
        except ValueError:
            r.problem("closed_dates", f"{text!r} is not a date (YYYY-MM-DD)")
    country = r.str("holidays_country")
    subdivision = r.str("holidays_subdivision")
    if country:
        import holidays

        try:
            holidays.country_holidays(country, subdiv=subdivision)
        except NotImplementedError as exc:
            r.problem("holidays_country", str(exc))
            country = None
    r.refuse_unknown()
    return CalendarConfig(zone, tuple(sorted(set(days))) or (0, 1, 2, 3, 4), start, end,
                          country, subdivision, tuple(closed))


DEFAULT_SCHEDULE = {
    "sla": "*/5 * * * *",
    "redispatch": "*/15 * * * *",
    "digest": "0 8 * * mon",
    "staff-digest": "30 8 * * mon-fri",
    "health": "0 8 * * mon-fri",
    "train": "30 2 * * *",
}


def _schedule(r: Reader) -> dict[str, str]:
    """Crontab lines per job; "" switches a job off."""
    schedule = dict(DEFAULT_SCHEDULE)
    for name in DEFAULT_SCHEDULE:
        value = r.str(name)
        if value is None:
            continue
        if not value.strip():
            schedule.pop(name)
            continue
        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            r.problem(name, f"not a crontab line ({exc}); e.g. '*/5 * * * *' or '0 8 * * mon'")
            continue
        schedule[name] = value
    r.refuse_unknown()
    return schedule


def _client(r: Reader) -> Client:
    client = Client(name=r.str("name", "", required=True), senders=r.str_list("senders"),
                    aliases=r.str_list("aliases"),
                    contacts=tuple(a.lower() for a in r.str_list("contacts")),
                    digest_to=tuple(a.lower() for a in r.str_list("digest_to")),
                    followers=tuple(a.lower() for a in r.str_list("followers")))
    if not client.senders and not client.contacts:
        r.problem("senders", "list at least one address or pattern such as '*@acme.com'")
    for key in ("contacts", "digest_to", "followers"):
        for address in getattr(client, key):
            if not _EMAIL.match(address) or any(ch in address for ch in "*?["):
                r.problem(key, f"{address!r} is not an email address (patterns belong in senders)")
    for address in client.followers:
        if _EMAIL.match(address) and not client.may_receive(address):
            # A follower reads the client's status mail: it must be one of the client's own addresses.
            r.problem("followers", f"{address} is not one of {client.name}'s addresses; add it to contacts first")
    r.refuse_unknown()
    return client


def _staff(r: Reader) -> Staff:
    away = r.str("away_until")
    away_until = None
    if away:
        try:
            away_until = date.fromisoformat(away)
        except ValueError:
            r.problem("away_until", f"{away!r} is not a date (YYYY-MM-DD)")
    person = Staff(name=r.str("name", "", required=True), email=r.str("email", "", required=True).lower(),
                   role=r.choice("role", ROLES, "producer"), queues=r.str_list("queues"),
                   wip_limit=r.int("wip_limit", 3, minimum=0, maximum=1000), away_until=away_until,
                   display_name=r.str("display_name", ""))
    if person.email and not _EMAIL.match(person.email):
        r.problem("email", f"{person.email!r} is not an email address")
    r.refuse_unknown()
    return person


def _queue(r: Reader) -> Queue:
    queue = Queue(name=r.str("name", "", required=True), owner=r.str("owner"), display_name=r.str("display_name"))
    r.refuse_unknown()
    return queue


def _check_people(doc: TomlFile, config: Config) -> None:
    seen: dict[str, int] = {}
    for index, person in enumerate(config.staff):
        if person.email in seen:
            doc.problem(("staff", index, "email"), f"{person.email} is already staff #{seen[person.email] + 1}")
        seen[person.email] = index
    names: dict[str, int] = {}
    for index, person in enumerate(config.staff):
        # `assign Ana`, rules and escalations name people: two Anas would be a coin toss.
        if person.name.lower() in names:
            doc.problem(("staff", index, "name"), f"{person.name!r} is already staff #{names[person.name.lower()] + 1}")
        names.setdefault(person.name.lower(), index)
    for index, queue in enumerate(config.queues):
        if queue.owner and not config.staff_by_name(queue.owner):
            doc.problem(("queues", index, "owner"), f"no [[staff]] named {queue.owner!r}")


def _check_mailboxes(doc: TomlFile, config: Config) -> None:
    def where(index: int, key: str) -> tuple[str | int, ...]:
        return ("mailbox", index, key) if isinstance(doc.data.get("mailbox"), list) else ("mailbox", key)

    names: dict[str, int] = {}
    folders: dict[tuple[str, str], int] = {}
    for index, mailbox in enumerate(config.mailboxes):
        if mailbox.name in names:
            doc.problem(where(index, "name"), f"{mailbox.name!r} is already mailbox #{names[mailbox.name] + 1}")
        names.setdefault(mailbox.name, index)
        if (mailbox.account, mailbox.folder) in folders:
            doc.problem(where(index, "folder"), f"{mailbox.account} {mailbox.folder} is already read by "
                                                f"mailbox #{folders[(mailbox.account, mailbox.folder)] + 1}")
        folders.setdefault((mailbox.account, mailbox.folder), index)
        if mailbox.default_client and not any(c.name == mailbox.default_client for c in config.clients):
            doc.problem(where(index, "default_client"), f"no [[clients]] named {mailbox.default_client!r}")


def _check_loops(doc: TomlFile, config: Config) -> None:
    """Refuse set-ups where dispatchd would mail itself: the classic mail loop."""
    ours = {*config.intake_addresses, parseaddr(config.smtp.from_address)[1].lower()} - {""}
    for index, person in enumerate(config.staff):
        if person.email in ours:
            doc.problem(("staff", index, "email"),
                        f"{person.email} is the intake address; notifications to it would loop")
    for index, client in enumerate(config.clients):
        for key, addresses in (("contacts", client.contacts), ("digest_to", client.digest_to),
                               ("followers", client.followers)):
            for address in addresses:
                if address in ours:
                    doc.problem(("clients", index, key), f"{address} is our own address; mail to it would loop")
        for pattern in client.senders:
            hit = next((a for a in ours if fnmatch.fnmatchcase(a, pattern.lower())), None)
            if hit:
                doc.problem(("clients", index, "senders"),
                            f"pattern {pattern!r} matches our own address {hit}; replies would loop")


def _sqlite_relative(url: str, base: Path) -> str:
    """sqlite:///relative.db is relative to the config file, as the README promises."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(base / url[len(prefix):])
    return url
