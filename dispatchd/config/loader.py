"""``load_config``: reads config.toml section by section and runs the checks across sections.

Every refusal names the file, the line and the key (see ``tomlfile``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from dispatchd.config.booking import check_booking, read_booking
from dispatchd.config.business_calendar import read_calendar
from dispatchd.config.credentials import read_secret
from dispatchd.config.lifecycle import read_backup, read_retention
from dispatchd.config.integrations import read_destinations
from dispatchd.config.mailbox import check_mailboxes, read_mailboxes
from dispatchd.config.model import Config, IntakeConfig, SecurityConfig
from dispatchd.config.people import check_loops, check_people, read_client, read_queue, read_staff
from dispatchd.config.schedule import read_schedule
from dispatchd.config.second_opinion import read_second_opinion
from dispatchd.config.smtp import read_smtp
from dispatchd.config.web import read_web
from dispatchd.defaults import default_dir
from dispatchd.domain.loops_budget import ReplyLimits
from dispatchd.errors import ConfigError
from dispatchd.tomlfile import Reader, TomlFile, load_toml


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
    mailboxes = read_mailboxes(root, base, credentials)
    smtp = read_smtp(root.table_of("smtp"), base, credentials)
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
    calendar = read_calendar(root.table_of("calendar"))
    security_r = root.table_of("security")
    security = SecurityConfig(secret=read_secret(security_r, base, required=False, prefix="secret",
                                             credentials=credentials),
                              legacy_secret_file=data_dir / "reply-secret",
                              trusted_authserv_id=security_r.str("trusted_authserv_id"))
    security_r.refuse_unknown()
    schedule = read_schedule(root.table_of("schedule"))
    backup = read_backup(root.table_of("backup"), base)
    retention = read_retention(root.table_of("retention"))
    clients = tuple(read_client(r) for r in root.tables("clients"))
    staff = tuple(read_staff(r, calendar) for r in root.tables("staff"))
    queues = tuple(read_queue(r) for r in root.tables("queues"))
    web = read_web(root.table_of("web"), base, credentials)
    destinations = read_destinations(root, base, credentials)
    booking = read_booking(root.table_of("booking"), base, credentials)
    second_opinion = read_second_opinion(root.table_of("second_opinion"), base, credentials)
    root.refuse_unknown()
    config = Config(
        path=doc.path, mailboxes=mailboxes, smtp=smtp, database_url=_sqlite_relative(url, base),
        data_dir=data_dir, rules_dir=rules_dir, templates_dir=templates_dir, intake=intake,
        calendar=calendar, security=security, log_level=log_level, log_format=log_format,
        clients=clients, staff=staff, queues=queues, schedule=schedule, web=web,
        backup=backup, retention=retention, destinations=destinations,
        booking=booking, second_opinion=second_opinion,
    )
    check_people(doc, config)
    check_mailboxes(doc, config)
    check_loops(doc, config)
    return replace(config, booking=check_booking(doc, config))


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


def _sqlite_relative(url: str, base: Path) -> str:
    """sqlite:///relative.db is relative to the config file, as the README promises."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(base / url[len(prefix):])
    return url

