"""The health report's staffing lines: skills that open work needs and too few people have
(the "key person takes PTO" risk), and who is over capacity this week."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta

from sqlmodel import Session, col, func, or_, select

from dispatchd.config import Config
from dispatchd.domain.sla import BusinessCalendar
from dispatchd.flows.assignment import ACTIVE, active_counts, away_among, task_needs
from dispatchd.store.tables import Task


def skill_gaps(session: Session, config: Config, now: datetime) -> list[str]:
    """One line per skill open work needs when it is at risk: nobody has it, everyone who has
    it is full or away, or work needing it waits unassigned ("5 open tasks need 'shopify'
    (3 unassigned); 1 person has it: Shay, at WIP limit")."""
    speaking = [c.name for c in config.clients if c.language]
    rows = session.execute(select(Task.needs, Task.client, Task.assignee).where(
        col(Task.status).in_(ACTIVE), or_(Task.needs != "", col(Task.client).in_(speaking)))).all()
    needed: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for needs, client, assignee in rows:
        for skill in task_needs(needs, client, config).skills:
            needed[skill] += 1
            waiting[skill] += assignee is None
    if not needed:
        return []
    loads = active_counts(session, [p.email for p in config.staff])
    away = away_among(session, list(config.staff), now)
    lines = []
    for skill, count in sorted(needed.items()):
        holders = [p for p in config.staff if skill in p.skills]
        states = [f"{p.name}, " + ("away" if p.email in away else "at WIP limit" if loads[p.email] >= p.wip_limit
                                   else f"{loads[p.email]} of {p.wip_limit} active") for p in holders]
        free = [s for s in states if "active" in s]
        if holders and free and not waiting[skill] and len(holders) > 1:
            continue
        people = (f"{len(holders)} {'person has' if len(holders) == 1 else 'people have'} it: {'; '.join(states)}"
                  if holders else "nobody has it")
        unassigned = f" ({waiting[skill]} unassigned)" if waiting[skill] else ""
        lines.append(f"{count} open task{'s' if count != 1 else ''} need{'s' if count == 1 else ''} "
                     f"'{skill}'{unassigned}; {people}")
    return lines


def over_capacity(session: Session, config: Config, now: datetime, calendar: BusinessCalendar) -> list[str]:
    """Who holds more than their WIP limit (assigned by hand past it), or was given more this
    week than their max_per_day allows on the days they work."""
    loads = active_counts(session, [p.email for p in config.staff])
    local = now.astimezone(calendar.zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), tzinfo=calendar.zone)
    given = dict(session.execute(select(Task.assignee, func.count()).where(
        col(Task.assignee).is_not(None), col(Task.assigned_at) >= monday).group_by(Task.assignee)).all())
    lines = []
    for person in config.staff:
        if loads[person.email] > person.wip_limit:
            lines.append(f"{person.name}: {loads[person.email]} active tasks, WIP limit {person.wip_limit}")
        if person.max_per_day is not None:
            days = len(person.shift.workdays if person.shift else calendar.workdays)
            if given.get(person.email, 0) > person.max_per_day * days:
                lines.append(f"{person.name}: {given[person.email]} new tasks this week, "
                             f"max_per_day {person.max_per_day} on {days} days")
    return lines

