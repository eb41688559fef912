"""The staff pages' actions (flows/staff_actions.py) and the dashboard's figures (flows/dashboard.py)
over a real database: the same commands, permissions, audit and emails as a reply."""

from __future__ import annotations

import itertools
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.dashboard import dashboard
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.flows.staff_actions import act
from dispatchd.store.tables import Outbox, Task, TaskEvent
from tests.conftest import write_config

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=BERLIN)
_uids = itertools.count(1)


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test"))
    return build_deps(config, clock=FrozenClock(MONDAY_10))


def submit(deps: IntakeDeps, subject: str, sender: str = "bob@acme.test") -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<web-{uid}@client.test>"
    message.set_content("Please.")
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def task(deps: IntakeDeps, task_id: int) -> Task:
    with Session(deps.engine) as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def events(deps: IntakeDeps, task_id: int) -> list[TaskEvent]:
    with Session(deps.engine) as session:
        return list(session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id).order_by(col(TaskEvent.id))))


def outbox(deps: IntakeDeps) -> list[Outbox]:
    with Session(deps.engine) as session:
        return list(session.exec(select(Outbox).order_by(col(Outbox.id))))


def test_rerouting_a_triage_task_is_the_reply_command_with_its_audit_and_emails(deps: IntakeDeps) -> None:
    task_id = submit(deps, "[Acme] - Mystery work - something odd")
    assert task(deps, task_id).queue == "triage"
    before = len(outbox(deps))
    result = act(deps, "morgan@agency.test", task_id, "type", "Content")
    assert result.ok, result.text
    moved = task(deps, task_id)
    assert (moved.queue, moved.type, moved.status) == ("content", "Content", "queued")
    last = events(deps, task_id)[-1]
    assert (last.kind, last.actor, last.message_id, last.to_status) == ("rerouted", "morgan@agency.test", "web",
                                                                         "queued")
    assert "routed by morgan@agency.test" in last.detail
    sent = outbox(deps)[before:]
    assert any(m.recipients == "bob@acme.test" for m in sent), "the client hears where it went, as by email"


@pytest.mark.parametrize(("who", "name", "argument", "why"), [
    ("ana@agency.test", "type", "Content", "a producer may not type"),
    ("ben@agency.test", "type", "Content", "triage is not one of your queues"),
    ("bob@acme.test", "type", "Content", "only staff act on tasks"),
    ("morgan@agency.test", "priority", "P9", "priority must be P0, P1, P2 or P3"),
    ("morgan@agency.test", "type", "Nonsense", "write 'type' and a request type"),
    ("morgan@agency.test", "start", "", "received"),  # not a move from received
    ("morgan@agency.test", "follow", "x@acme.test", "not an action of these pages"),
])
def test_refusals_change_nothing(deps: IntakeDeps, who: str, name: str, argument: str, why: str) -> None:
    task_id = submit(deps, "[Acme] - Mystery work - something odd")
    before = (task(deps, task_id).model_dump(), len(events(deps, task_id)), len(outbox(deps)))
    result = act(deps, who, task_id, name, argument)
    assert not result.ok and why in result.text
    assert (task(deps, task_id).model_dump(), len(events(deps, task_id)), len(outbox(deps))) == before


def test_take_respects_the_wip_limit(deps: IntakeDeps) -> None:
    ids = [submit(deps, f"[Acme] - Content - Post {n}") for n in range(4)]
    results = [act(deps, "ana@agency.test", task_id, "take") for task_id in ids]
    assert [r.ok for r in results][-1] is False and "WIP limit" in results[-1].text


def test_dashboard_counts_what_happened(deps: IntakeDeps) -> None:
    clock: FrozenClock = deps.clock  # type: ignore[assignment]
    first = submit(deps, "[Acme] - Content - Post one")
    second = submit(deps, "[Acme] - Content - Post two")
    submit(deps, "[Acme] - Mystery work - something odd")
    clock.advance(hours=2)
    for move in ("start", "review", "approve", "deliver"):
        assert act(deps, "ben@agency.test", first, move).ok, move
    clock.advance(days=1)
    assert act(deps, "ben@agency.test", second, "start").ok
    board = dashboard(deps, period_days=3)
    rows = {q.queue: q for q in board.queues}
    assert rows["content"].depth == 2 and rows["content"].finished == 1 and rows["triage"].depth == 1
    assert rows["content"].oldest_age_hours == pytest.approx(26)
    assert board.attainment == {"content": 1.0}
    assert board.triage_waiting == 1 and board.backlog == 2
    assert [(f.arrivals, f.completions, f.backlog) for f in board.flow] == [(0, 0, 0), (3, 1, 2), (0, 0, 2)]
    assert board.first_response.count == 2 and board.first_response.p50 == pytest.approx(14)  # 2 h and 26 h
    assert board.resolution.p50 == pytest.approx(2)
    ben = next(w for w in board.wip if w.name == "Ben")
    assert (ben.active, ben.limit) == (1, 3)
