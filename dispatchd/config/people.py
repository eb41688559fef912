"""[[clients]], [[staff]] and [[queues]]: who files work, who does it, and where it waits."""

from __future__ import annotations

import fnmatch
from datetime import date
from email.utils import parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatchd.config.business_calendar import read_hours, read_weekdays
from dispatchd.config.model import EMAIL_PATTERN, CalendarConfig, Client, Config, Queue, Staff
from dispatchd.domain.eligibility import Shift, backup_cycle
from dispatchd.tomlfile import Reader, TomlFile

ROLES = ("producer", "lead", "manager")


def read_client(r: Reader) -> Client:
    client = Client(name=r.str("name", "", required=True), senders=r.str_list("senders"),
                    aliases=r.str_list("aliases"),
                    contacts=tuple(a.lower() for a in r.str_list("contacts")),
                    digest_to=tuple(a.lower() for a in r.str_list("digest_to")),
                    followers=tuple(a.lower() for a in r.str_list("followers")),
                    timezone=_zone(r, "timezone"),
                    region=r.str("region"), language=(r.str("language") or "").lower() or None,
                    owner=r.str("owner"), preferred=r.str_list("preferred"))
    if not client.senders and not client.contacts:
        r.problem("senders", "list at least one address or pattern such as '*@acme.com'")
    for key in ("contacts", "digest_to", "followers"):
        for address in getattr(client, key):
            if not EMAIL_PATTERN.match(address) or any(ch in address for ch in "*?["):
                r.problem(key, f"{address!r} is not an email address (patterns belong in senders)")
    for address in client.followers:
        if EMAIL_PATTERN.match(address) and not client.may_receive(address):
            # A follower reads the client's status mail: it must be one of the client's own addresses.
            r.problem("followers", f"{address} is not one of {client.name}'s addresses; add it to contacts first")
    r.refuse_unknown()
    return client


def _zone(r: Reader, key: str) -> str | None:
    name = r.str(key)
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem(key, f"unknown time zone {name!r} (use an IANA name such as America/New_York)")
        return None
    return name


def read_staff(r: Reader, calendar: CalendarConfig) -> Staff:
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
                   display_name=r.str("display_name", ""),
                   skills=frozenset(k.strip().lower() for k in r.str_list("skills")),
                   regions=frozenset(r.str_list("regions")), backup=r.str("backup"),
                   shift=_shift(r, calendar), max_per_day=r.int("max_per_day", None, minimum=1, maximum=1000))
    if person.email and not EMAIL_PATTERN.match(person.email):
        r.problem("email", f"{person.email!r} is not an email address")
    r.refuse_unknown()
    return person


def _shift(r: Reader, calendar: CalendarConfig) -> Shift | None:
    """A part-timer's own ``workdays`` and ``hours`` (either defaults to the agency calendar's)."""
    if "workdays" not in r.table and "hours" not in r.table:
        return None
    days = read_weekdays(r, "workdays", ()) or calendar.workdays
    start, end = read_hours(r, "hours", None) or (calendar.day_start, calendar.day_end)
    return Shift(days, start, end)


def read_queue(r: Reader) -> Queue:
    queue = Queue(name=r.str("name", "", required=True), owner=r.str("owner"), display_name=r.str("display_name"))
    r.refuse_unknown()
    return queue


def check_people(doc: TomlFile, config: Config) -> None:
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
    check_cover(doc, config)


def check_cover(doc: TomlFile, config: Config) -> None:
    """Backups, owners and preferred people must be staff; backups must not go round in a circle."""
    for index, person in enumerate(config.staff):
        if person.backup and config.staff_by_name(person.backup) is None:
            doc.problem(("staff", index, "backup"), f"no [[staff]] named {person.backup!r}")
        elif person.backup and person.backup.lower() == person.name.lower():
            doc.problem(("staff", index, "backup"), f"{person.name} cannot be their own backup")
    backups = {p.name.lower(): p.backup.lower() for p in config.staff
               if p.backup and config.staff_by_name(p.backup) and p.backup.lower() != p.name.lower()}
    cycle = backup_cycle(backups)
    if cycle:
        index = next(i for i, p in enumerate(config.staff) if p.name.lower() == cycle[0])
        names = [config.staff_by_name(n).name for n in cycle]  # type: ignore[union-attr]
        doc.problem(("staff", index, "backup"),
                    f"backups go round in a circle: {' -> '.join([*names, names[0]])}; someone must end it")
    skills = {skill for person in config.staff for skill in person.skills}
    for index, client in enumerate(config.clients):
        if client.language and client.language not in skills:
            doc.problem(("clients", index, "language"),
                        f"no [[staff]] has {client.language!r} in their skills; its work could never be assigned")
        for key, names in (("owner", (client.owner,) if client.owner else ()), ("preferred", client.preferred)):
            for name in names:
                if config.staff_by_name(name) is None:
                    doc.problem(("clients", index, key), f"no [[staff]] named {name!r}")


def check_loops(doc: TomlFile, config: Config) -> None:
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

