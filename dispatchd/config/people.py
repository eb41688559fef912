"""[[clients]], [[staff]] and [[queues]]: who files work, who does it, and where it waits."""

from __future__ import annotations

import fnmatch
from datetime import date
from email.utils import parseaddr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatchd.config.model import EMAIL_PATTERN, Client, Config, Queue, Staff
from dispatchd.tomlfile import Reader, TomlFile

ROLES = ("producer", "lead", "manager")


def read_client(r: Reader) -> Client:
    client = Client(name=r.str("name", "", required=True), senders=r.str_list("senders"),
                    aliases=r.str_list("aliases"),
                    contacts=tuple(a.lower() for a in r.str_list("contacts")),
                    digest_to=tuple(a.lower() for a in r.str_list("digest_to")),
                    followers=tuple(a.lower() for a in r.str_list("followers")),
                    timezone=_zone(r, "timezone"))
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


def read_staff(r: Reader) -> Staff:
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
    if person.email and not EMAIL_PATTERN.match(person.email):
        r.problem("email", f"{person.email!r} is not an email address")
    r.refuse_unknown()
    return person


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

