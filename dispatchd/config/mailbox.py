"""[mailbox] / [[mailbox]]: the intake mailboxes, and the checks across them."""

from __future__ import annotations

from pathlib import Path

from dispatchd.config.credentials import TLS_MODES, read_oauth2, read_secret
from dispatchd.config.model import Config, MailboxConfig
from dispatchd.tomlfile import Reader, TomlFile


def read_mailboxes(root: Reader, base: Path, credentials: bool = True) -> tuple[MailboxConfig, ...]:
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
    oauth2 = read_oauth2(r, base, credentials)
    config = MailboxConfig(
        host=r.str("host", "", required=True),
        port=r.int("port", 993 if tls == "ssl" else 143, minimum=1, maximum=65535),
        tls=tls,
        username=username,
        password=read_secret(r, base, required=oauth2 is None, credentials=credentials),
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


def check_mailboxes(doc: TomlFile, config: Config) -> None:
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

