"""Eligibility through the flows on a real database: redispatch from someone away goes to their
backup when nobody else in the queue can do the work; the health report's skill gaps and
over-capacity lines (flows/staffing.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.redispatch import redispatch
from dispatchd.flows.reports import health_report
from dispatchd.store.tables import StaffAway, Task, TaskEvent
from tests.conftest import write_config
from tests.unit.test_jobs import MONDAY_10, submit

# Design is least loaded: Ben (lead) and Greta; only Greta speaks German, Cara covers for her.
PEOPLE = """
[[staff]]
name = "Greta"
email = "greta@agency.test"
queues = ["design"]
skills = ["german"]
backup = "Cara"

[[staff]]
name = "Cara"
email = "cara@agency.test"
queues = ["content"]
wip_limit = 1

[[clients]]
name = "Kunde"
senders = ["*@kunde.test"]
language = "German"
"""


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=PEOPLE, scheduled=True))
    return build_deps(config, clock=FrozenClock(MONDAY_10))


def assignee(deps: IntakeDeps, task_id: int) -> str | None:
    with Session(deps.engine) as session:
        return session.get(Task, task_id).assignee  # type: ignore[union-attr]


def test_german_work_goes_to_the_german_speaker_and_her_backup_when_she_is_away(deps: IntakeDeps) -> None:
    german = submit(deps, "[Kunde] - Design - Banner", sender="kai@kunde.test")
    other = submit(deps, "[Acme] - Design - Logo")
    assert (assignee(deps, german), assignee(deps, other)) == ("greta@agency.test", "ben@agency.test")
    with Session(deps.engine) as session, session.begin():
        session.add(StaffAway(email="greta@agency.test", until=MONDAY_10.replace(day=30), set_at=MONDAY_10))
    assert redispatch(deps) == {"to_person": 1}
    assert assignee(deps, german) == "cara@agency.test", "Ben is free but speaks no German: Greta's backup"
    with Session(deps.engine) as session:
        [event] = session.exec(select(TaskEvent).where(TaskEvent.kind == "redispatched")).all()
    assert "Greta is away" in event.detail and "Greta's backup Cara took it" in event.detail


def test_health_names_skill_gaps_and_who_is_over_capacity(deps: IntakeDeps) -> None:
    for n in range(2):
        submit(deps, f"[Kunde] - Design - Banner {n}", sender="kai@kunde.test")
    with Session(deps.engine) as session, session.begin():
        for n in range(4):  # a lead gave Cara more than her WIP limit by hand
            session.add(Task(queue="content", priority="P2", status="in_progress", description=f"d{n}",
                             subject=f"s{n}", sender="bob@acme.test", assignee="cara@agency.test", sla="1 day",
                             message_id=f"<m{n}@x>", created_at=MONDAY_10, updated_at=MONDAY_10))
    report = health_report(deps)
    assert report.skill_gaps == ["2 open tasks need 'german'; 1 person has it: Greta, 2 of 3 active"]
    assert report.over_capacity == ["Cara: 4 active tasks, WIP limit 1"]
