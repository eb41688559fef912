"""Who may take a task, and who gets it: skills, region, language, working hours, WIP limits,
absences, backups and the queue's lead — every step with a reason a person can read.

Pure: the flow (``flows/assignment.py``) looks up loads, absences and the moment the work would
start, and hands them in as ``Candidate`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

AUTOMATIC = ("round_robin", "least_loaded")


@dataclass(frozen=True)
class Shift:
    """A person's own working week when it differs from the agency calendar (part-timers)."""

    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday = 0
    start: time = time(9)
    end: time = time(17)

    def covers(self, local: datetime) -> bool:
        """Whether ``local`` (in the agency's time zone) is inside this working week."""
        return local.weekday() in self.workdays and self.start <= local.time() < self.end

    def on_duty(self, local: datetime, opening: datetime) -> bool:
        """Whether work arriving at ``local`` is theirs to start: inside their hours while the
        agency is open (``opening == local``); when it is closed, if they work the day it opens."""
        if opening == local:
            return self.covers(local)
        return opening.weekday() in self.workdays

    def __str__(self) -> str:
        days = ", ".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d] for d in self.workdays)
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Needs:
    """What a task asks of whoever does it: every skill (a client's language is one), the
    client's region, and whom or which skills the rules prefer (names or skills, in order)."""

    skills: frozenset[str] = frozenset()
    region: str | None = None
    prefer: tuple[str, ...] = ()

    def describe(self) -> str:
        """"with 'shopify', 'german' in DACH", or "" when the task asks for nothing special."""
        parts = [f"with {', '.join(repr(s) for s in sorted(self.skills))}"] if self.skills else []
        if self.region:
            parts.append(f"in {self.region}")
        return " ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """A staff member as assignment sees them at one moment."""

    name: str
    email: str
    skills: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    load: int = 0             # active tasks held now
    wip_limit: int = 3
    given_today: int = 0      # tasks given to them today
    max_per_day: int | None = None
    away: bool = False
    working: bool = True      # inside their own hours when the work would start
    backup: str | None = None  # a staff name
    in_queue: bool = True
    moving_from: bool = False  # the work is being taken off them (redispatch): their backup may cover


@dataclass(frozen=True)
class Verdict:
    """One person considered: whether they could take it, and why (not)."""

    name: str
    email: str
    eligible: bool
    why: str


@dataclass(frozen=True)
class Assignment:
    """Who gets a task (None: nobody), by which step, why, and everyone considered."""

    assignee: str | None
    reason: str
    step: str  # "rule", "strategy", "backup", "lead", "manual", "nobody" (waits in its queue), "triage"
    considered: tuple[Verdict, ...] = field(default_factory=tuple)


def gaps(person: Candidate, needs: Needs) -> list[str]:
    """What ``person`` lacks for the task: missing skills and region ([] = qualified)."""
    missing = [f"lacks {skill!r}" for skill in sorted(needs.skills - person.skills)]
    if needs.region and needs.region not in person.regions:
        missing.append(f"does not cover {needs.region}")
    return missing


def unavailable(person: Candidate) -> str | None:
    """Why ``person`` cannot take more work now (away, off, full), or None."""
    if person.moving_from:
        return "the work is moving away from them"
    if person.away:
        return "away"
    if not person.working:
        return "not working then (own hours)"
    if person.load >= person.wip_limit:
        return f"at WIP limit ({person.load} of {person.wip_limit})"
    if person.max_per_day is not None and person.given_today >= person.max_per_day:
        return f"at max_per_day ({person.given_today} of {person.max_per_day} today)"
    return None


def verdict(person: Candidate, needs: Needs) -> Verdict:
    problems = ([] if person.in_queue else ["not in the queue"]) + gaps(person, needs)
    busy = unavailable(person)
    if busy:
        problems.append(busy)
    if problems:
        return Verdict(person.name, person.email, False, "; ".join(problems))
    return Verdict(person.name, person.email, True, f"eligible, {person.load} of {person.wip_limit} active")


def eligible(person: Candidate, needs: Needs) -> bool:
    return person.in_queue and not gaps(person, needs) and unavailable(person) is None


def preference(person: Candidate, needs: Needs) -> int:
    """How many of the task's preferences ``person`` meets (their name, or a skill of theirs)."""
    wanted = {p.lower() for p in needs.prefer}
    return sum(1 for p in wanted if p in person.skills or p == person.name.lower())


def choose(queue: str, strategy: str, members: list[Candidate], needs: Needs, last_assignee: str | None,
           staff: dict[str, Candidate], lead: Candidate | None) -> Assignment:
    """Who gets new work in ``queue``: the eligible member the strategy picks (equal loads go to
    the preferred), else the backup of a qualified member who cannot, else the queue's lead,
    else triage when nobody in the queue can do it at all (``unmet``), else nobody: it waits
    in the queue until someone is free (the queue's owners are told). ``members`` are in config order; ``staff`` maps
    every staff name (lower case) to a candidate, for backups."""
    considered = tuple(verdict(m, needs) for m in members)
    if strategy not in AUTOMATIC:
        return Assignment(None, f"queue {queue} is {strategy}", "manual", considered)
    ordered = _by_strategy(strategy, members, needs, last_assignee)
    how = "least loaded" if strategy == "least_loaded" else "round robin"
    detail = needs.describe()
    chosen = next((m for m in ordered if eligible(m, needs)), None)
    if chosen is not None:
        return Assignment(chosen.email, f"{how} in {queue}" + (f" {detail}" if detail else ""), "strategy",
                          considered)
    shortfall = _shortfall(queue, members, needs)
    qualified = [m for m in ordered if not gaps(m, needs)]
    for primary in qualified:
        cover = _free_backup(primary, staff, needs)
        if cover is not None:
            backup, chain = cover
            return Assignment(backup.email, f"{shortfall}; {chain} took it", "backup",
                              (*considered, Verdict(backup.name, backup.email, True, f"backup ({chain})")))
    if lead is not None and unavailable(lead) is None:
        # The lead decides who does it; they hold it meanwhile rather than letting it wait unseen.
        return Assignment(lead.email, f"{shortfall}; no backup free; the queue's lead {lead.name} has it", "lead",
                          (*considered, Verdict(lead.name, lead.email, True, "the queue's lead")))
    why_not_lead = f"the queue's lead {lead.name} is {unavailable(lead)}" if lead else "no lead"
    if unmet(members, needs):
        return Assignment(None, f"{shortfall}, and no backup or lead could take it ({why_not_lead}): "
                                "sent to triage", "triage", considered)
    return Assignment(None, f"queue {queue} at capacity: {shortfall}; no backup free; {why_not_lead}; "
                            "waits in the queue", "nobody", considered)


def unmet(members: list[Candidate], needs: Needs) -> bool:
    """Whether nobody in the queue can do the work at all, not merely now: no member has the
    skills and region, or everyone who has them is away. Such work goes to triage; work that
    people who are merely full or off for the day could do waits in its queue, so an ordinary
    busy afternoon does not flood triage. Stale work taken off someone who is not away goes
    back to the queue: they still could do it."""
    return not any(not gaps(m, needs) and not m.away for m in members)


def _by_strategy(strategy: str, members: list[Candidate], needs: Needs, last: str | None) -> list[Candidate]:
    if strategy == "least_loaded":
        ranked = sorted(enumerate(members), key=lambda pair: (pair[1].load, -preference(pair[1], needs), pair[0]))
        return [member for _, member in ranked]
    emails = [m.email for m in members]
    start = emails.index(last) + 1 if last in emails else 0
    return members[start:] + members[:start]


def _shortfall(queue: str, members: list[Candidate], needs: Needs) -> str:
    """Why nobody in the queue can take it, in one phrase: "no one in dev has 'shopify'",
    "no one with 'shopify' under their WIP limit", "all 3 members are busy or away (…)"."""
    detail = needs.describe()
    qualified = [m for m in members if not gaps(m, needs)]
    if not members:
        return f"queue {queue} has no members"
    if not qualified:
        lacking = ", ".join(repr(s) for s in sorted(needs.skills))
        return f"no one in {queue} " + (f"has {lacking}" if needs.skills else f"covers {needs.region}")
    reasons = {m.name: unavailable(m) or "" for m in qualified}
    kinds = {reason.split(" (")[0] for reason in reasons.values()}
    if detail:
        if kinds == {"at WIP limit"}:
            return f"no one {detail} under their WIP limit"
        if kinds == {"away"}:
            return f"everyone {detail} is away"
        return f"no one {detail} is free ({', '.join(f'{n} {r}' for n, r in reasons.items())})"
    if kinds == {"at WIP limit"}:
        return f"all {len(qualified)} members are at their WIP limit"
    if kinds == {"away"}:
        return f"all {len(qualified)} members are away"
    return f"all {len(qualified)} members are busy or away ({', '.join(f'{n} {r}' for n, r in reasons.items())})"


def _free_backup(primary: Candidate, staff: dict[str, Candidate], needs: Needs) -> tuple[Candidate, str] | None:
    """The first free person down ``primary``'s chain of backups, with the words for it
    ("Ben's backup Cara", "Ben's backup Cara's backup Dev"); a cycle ends the chain."""
    seen = {primary.name.lower()}
    current, words = primary, primary.name
    while current.backup and current.backup.lower() not in seen:
        backup = staff.get(current.backup.lower())
        if backup is None:
            return None
        seen.add(backup.name.lower())
        words = f"{words}'s backup {backup.name}"
        if unavailable(backup) is None:
            return backup, words
        current = backup
    return None


def backup_cycle(backups: dict[str, str]) -> list[str] | None:
    """A cycle in who-backs-up-whom (names, lower case), as the names in order, or None."""
    for start in backups:
        path, current = [start], backups.get(start)
        while current is not None and current not in path:
            path.append(current)
            current = backups.get(current)
        if current is not None and current == start:
            return path
    return None
