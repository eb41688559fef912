"""Who may receive mail: a client's data only that client's addresses, the team never our own
address, an automatic answer only a sender it cannot turn into backscatter."""

from __future__ import annotations

from dispatchd.config import Config
from dispatchd.domain.authres import sender_authenticated
from dispatchd.domain.models import InboundMail
from dispatchd.domain.trust import may_receive
from dispatchd.store.tables import Task


def client_may_receive(address: str, task: Task, config: Config) -> bool:
    """A client's data goes only to that client's addresses (``domain/trust.may_receive``): a
    task a person moved to a client keeps its outside requester out of that client's mail."""
    client = next((c for c in config.clients if c.name == task.client), None) if task.client else None
    return may_receive(address, client, task.sender)


def client_recipients(task: Task, config: Config, followers: list[str] | None = None) -> list[str]:
    """Who on the client's side hears of the task's progress: its sender and its followers, each
    only if it is one of the client's own addresses (``client_may_receive``): a follower admitted
    under an address list that has since changed hears nothing more."""
    candidates = ([task.sender] if task.sender else []) + list(followers or ())
    return [a for a in dict.fromkeys(candidates) if a and client_may_receive(a, task, config)]


def staff_recipients(task: Task, extra: tuple[str, ...], config: Config) -> list[str]:
    """Queue owners, the assignee and whoever the rules named; never our own address."""
    addresses = [s.email for s in config.queue_owners(task.queue)]
    if task.assignee:
        addresses.append(task.assignee)
    for who in extra:
        person = config.staff_by_name(who)
        addresses.append(person.email if person else who.lower())
    return [a for a in dict.fromkeys(addresses) if a and a not in config.intake_addresses]


def may_answer(mail: InboundMail, config: Config) -> bool:
    """Whether an automatic answer (format help, a refusal, "too large") may go to ``mail``'s
    sender: always to staff and to any client's address; to anyone else only as
    ``[intake] reply_to_unknown_senders`` allows, since a forged sender turns it into backscatter."""
    if not mail.sender:
        return False
    if config.staff_by_email(mail.sender) or any(c.may_receive(mail.sender) for c in config.clients):
        return True
    return help_strangers(mail, config)


def help_strangers(mail: InboundMail, config: Config) -> bool:
    """An address that is no client's: off by default; "authenticated" answers only a domain
    that passed DKIM/SPF/DMARC at the receiving server we trust."""
    setting = config.intake.reply_to_unknown_senders
    if setting == "authenticated":
        return sender_authenticated(mail.sender, mail.headers.get("authentication-results", ()),
                                    config.security.trusted_authserv_id)
    return setting == "always"
