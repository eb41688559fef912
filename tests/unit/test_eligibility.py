"""Who may take a task and who gets it (domain/eligibility.py): skills, regions, language, hours,
WIP limits, max per day, absences, backups, the lead, and cycles of backups."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time

import pytest

from dispatchd.domain.eligibility import Candidate, Needs, Shift, backup_cycle, choose, eligible, gaps, verdict

BEN = Candidate("Ben", "ben@a.test", skills=frozenset({"shopify", "wordpress"}), regions=frozenset({"DACH"}),
                wip_limit=3, backup="Cara")
CARA = Candidate("Cara", "cara@a.test", skills=frozenset({"wordpress", "german"}), wip_limit=3, backup="Dev")
DEV = Candidate("Dev", "dev@a.test", skills=frozenset({"wordpress"}), wip_limit=3, in_queue=False)
LEAD = Candidate("Lea", "lea@a.test", wip_limit=5, in_queue=False)
SHOPIFY = Needs(frozenset({"shopify"}))


@pytest.mark.parametrize(("person", "needs", "ok", "why"), [
    (BEN, SHOPIFY, True, "eligible, 0 of 3 active"),
    (CARA, SHOPIFY, False, "lacks 'shopify'"),
    (CARA, Needs(frozenset({"german", "wordpress"})), True, "eligible"),                # language is a skill
    (BEN, Needs(frozenset({"german"})), False, "lacks 'german'"),
    (BEN, Needs(region="DACH"), True, "eligible"),
    (CARA, Needs(region="DACH"), False, "does not cover DACH"),                          # region must match
    (BEN, Needs(region="US"), False, "does not cover US"),
    (replace(BEN, load=3), SHOPIFY, False, "at WIP limit (3 of 3)"),
    (replace(BEN, load=2), SHOPIFY, True, "eligible, 2 of 3 active"),
    (replace(BEN, away=True), SHOPIFY, False, "away"),
    (replace(BEN, working=False), SHOPIFY, False, "not working then (own hours)"),
    (replace(BEN, max_per_day=2, given_today=2), SHOPIFY, False, "at max_per_day (2 of 2 today)"),
    (replace(BEN, max_per_day=2, given_today=1), SHOPIFY, True, "eligible"),
    (DEV, Needs(), False, "not in the queue"),
    (replace(CARA, load=3), SHOPIFY, False, "lacks 'shopify'; at WIP limit (3 of 3)"),
])
def test_who_is_eligible_and_why(person: Candidate, needs: Needs, ok: bool, why: str) -> None:
    found = verdict(person, needs)
    assert (found.eligible, eligible(person, needs)) == (ok, ok)
    assert found.why.startswith(why)


# Part-timer: Mon-Wed mornings. Agency open Mon-Fri 9-17 (opening == local), or closed: the next opening.
MORNINGS = Shift((0, 1, 2), time(9), time(13))
MON_10, TUE_15, THU_10 = datetime(2026, 12, 7, 10), datetime(2026, 12, 8, 15), datetime(2026, 12, 10, 10)
TUE_22, WED_9, WED_22, THU_9 = (datetime(2026, 12, 8, 22), datetime(2026, 12, 9, 9), datetime(2026, 12, 9, 22),
                                datetime(2026, 12, 10, 9))


@pytest.mark.parametrize(("local", "opening", "on_duty"), [
    (MON_10, MON_10, True),
    (TUE_15, TUE_15, False),    # the agency is open, she is not
    (THU_10, THU_10, False),    # not her day
    (TUE_22, WED_9, True),      # after hours: her day when the agency opens again
    (WED_22, THU_9, False),
])
def test_a_part_timer_is_on_duty_only_in_her_hours(local: datetime, opening: datetime, on_duty: bool) -> None:
    assert MORNINGS.on_duty(local, opening) is on_duty


STAFF = {c.name.lower(): c for c in (BEN, CARA, DEV, LEAD)}


@pytest.mark.parametrize(("members", "needs", "lead", "assignee", "step", "reason"), [
    ([BEN, CARA], SHOPIFY, LEAD, "ben@a.test", "strategy", "least loaded in dev with 'shopify'"),
    # the only Shopify person is full: their backup takes it, and the log says so
    ([replace(BEN, load=3), CARA], SHOPIFY, LEAD, "cara@a.test", "backup",
     "no one with 'shopify' under their WIP limit; Ben's backup Cara took it"),
    ([replace(BEN, away=True), CARA], SHOPIFY, LEAD, "cara@a.test", "backup",
     "everyone with 'shopify' is away; Ben's backup Cara took it"),
    # the backup is full too: down the chain to the backup's backup
    ([replace(BEN, load=3), replace(CARA, load=3)], SHOPIFY, LEAD, "dev@a.test", "backup",
     "Ben's backup Cara's backup Dev took it"),
    # nobody has the skill: no backup to ask, the queue's lead has it
    ([CARA], SHOPIFY, LEAD, "lea@a.test", "lead", "no one in dev has 'shopify'; no backup free; the queue's lead Lea"),
    # the lead is away too and nobody in the queue can do it at all: triage, saying why
    ([CARA], SHOPIFY, replace(LEAD, away=True), None, "triage",
     "no one in dev has 'shopify', and no backup or lead could take it (the queue's lead Lea is away): sent to triage"),
    ([replace(CARA, backup=None)], SHOPIFY, None, None, "triage", "no one in dev has 'shopify'"),
    ([replace(CARA, backup=None)], Needs(region="DACH"), None, None, "triage", "no one in dev covers DACH"),
    ([replace(CARA, backup=None)], Needs(frozenset({"french"})), None, None, "triage", "sent to triage"),
    # the only one with the skill is away and their backup is full
    ([replace(BEN, away=True), replace(CARA, load=3, backup=None)], SHOPIFY, None, None, "triage",
     "everyone with 'shopify' is away, and no backup or lead could take it (no lead): sent to triage"),
    # redispatch: the only one who could do it is away; stale work of someone still here waits
    ([replace(BEN, moving_from=True, away=True, backup=None)], SHOPIFY, None, None, "triage", "sent to triage"),
    ([replace(BEN, moving_from=True, backup=None)], SHOPIFY, None, None, "nobody", "waits in the queue"),
    ([replace(CARA, away=True, backup=None)], Needs(), None, None, "triage", "all 1 members are away"),
    ([], Needs(), None, None, "triage", "queue dev has no members"),
    # people who could do it are merely full or off for the day: it waits in the queue
    ([replace(CARA, load=3, backup=None)], Needs(), None, None, "nobody",
     "queue dev at capacity: all 1 members are at their WIP limit; no backup free; no lead; waits in the queue"),
    ([replace(BEN, load=3, backup=None), replace(CARA, backup=None)], SHOPIFY, None, None, "nobody",
     "queue dev at capacity: no one with 'shopify' under their WIP limit; no backup free; no lead; waits in the queue"),
    ([replace(BEN, working=False, backup=None), replace(CARA, away=True)], SHOPIFY, None, None, "nobody",
     "no one with 'shopify' is free (Ben not working then (own hours)); no backup free; no lead; waits in the queue"),
])
def test_who_gets_it(members: list[Candidate], needs: Needs, lead: Candidate | None, assignee: str | None,
                     step: str, reason: str) -> None:
    staff = {**STAFF, **{m.name.lower(): m for m in members}}
    if lead is not None:
        staff[lead.name.lower()] = lead
    chosen = choose("dev", "least_loaded", members, needs, None, staff, lead)
    assert (chosen.assignee, chosen.step) == (assignee, step)
    assert reason in chosen.reason
    assert [v.name for v in chosen.considered][:len(members)] == [m.name for m in members]


def test_equal_loads_go_to_the_preferred_and_round_robin_skips_the_unable() -> None:
    ana = Candidate("Ana", "ana@a.test", skills=frozenset({"wordpress"}))
    prefer_cara = Needs(prefer=("Cara",))
    assert choose("web", "least_loaded", [ana, BEN, CARA], prefer_cara, None, STAFF, None).assignee == "cara@a.test"
    assert choose("web", "least_loaded", [ana, replace(BEN, load=0), replace(CARA, load=1)], prefer_cara, None,
                  STAFF, None).assignee == "ana@a.test", "a preference breaks ties, never loads"
    assert choose("web", "least_loaded", [ana, BEN], Needs(prefer=("shopify",)), None, STAFF,
                  None).assignee == "ben@a.test", "a preferred skill counts too"
    # round robin after Ana: Ben's turn, but he lacks German, so Cara
    german = Needs(frozenset({"german"}))
    assert choose("web", "round_robin", [ana, BEN, CARA], german, "ana@a.test", STAFF, None).assignee == "cara@a.test"
    manual = choose("web", "manual", [ana, BEN], Needs(), None, STAFF, None)
    assert (manual.assignee, manual.step, len(manual.considered)) == (None, "manual", 2)


def test_a_cycle_of_backups_ends_the_search_instead_of_looping() -> None:
    ring = {"ben": replace(BEN, load=3, backup="Cara"), "cara": replace(CARA, load=3, backup="Ben")}
    chosen = choose("dev", "least_loaded", [ring["ben"]], SHOPIFY, None, ring, None)
    assert (chosen.assignee, chosen.step) == (None, "nobody")


@pytest.mark.parametrize(("backups", "cycle"), [
    ({}, None),
    ({"ben": "cara"}, None),
    ({"ben": "cara", "cara": "dev"}, None),
    ({"ben": "cara", "cara": "ben"}, ["ben", "cara"]),
    ({"ana": "ben", "ben": "cara", "cara": "dev", "dev": "ben"}, ["ben", "cara", "dev"]),
])
def test_backup_cycles_are_found(backups: dict[str, str], cycle: list[str] | None) -> None:
    assert backup_cycle(backups) == cycle


def test_gaps_name_every_missing_skill_and_the_region() -> None:
    assert gaps(CARA, Needs(frozenset({"shopify", "print"}), "DACH")) == [
        "lacks 'print'", "lacks 'shopify'", "does not cover DACH"]
