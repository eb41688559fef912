"""Scheduled jobs end to end: real Dovecot and aiosmtpd, a frozen clock, restarts between runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import Daemon, build_deps, build_outbox
from dispatchd.sending import SendLoop
from dispatchd.jobs import JOBS
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")


def restart_and_run(deployment: Deployment, clock: FrozenClock, *jobs: str) -> None:
    """A fresh process's worth of objects: read mail, run the jobs, send what they queued."""
    deps = build_deps(load_config(deployment.config), clock=clock)
    asyncio.run(Daemon(deps, SendLoop(build_outbox(deps))).run_once())
    for job in jobs:
        JOBS[job](deps)
    asyncio.run(build_outbox(deps).drain())
    deps.engine.dispose()


def sla_mail(deployment: Deployment) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for message, raw in zip(deployment.received(), deployment.smtp.messages):
        subject = message["Subject"]
        if "SLA" in subject or "Update on timing" in subject:
            kind = "red" if "RED" in subject else "yellow" if "Yellow" in subject else "client-late"
            for rcpt in raw.rcpt_tos:
                found[(kind, rcpt)] += 1
    return found


def test_task_crosses_80_and_100_percent_with_mail_exactly_once(deployment: Deployment) -> None:
    clock = FrozenClock(datetime(2026, 11, 23, 10, tzinfo=BERLIN))  # Monday
    deployment.deliver(make_mail("[Acme] - Technical - Checkout is slow"))  # dev: 2 business days
    restart_and_run(deployment, clock, "sla")
    assert sla_mail(deployment) == {}
    ben_notice = deployment.received_by("ben@agency.test")[-1]
    deployment.deliver(make_mail(f"Re: {ben_notice['Subject']}", sender="ben@agency.test", body="take",
                                 to=ben_notice["Reply-To"], headers={"In-Reply-To": ben_notice["Message-ID"]}))
    clock.advance(hours=1)
    restart_and_run(deployment, clock, "sla")
    clock.at = datetime(2026, 11, 25, 9, 30, tzinfo=BERLIN)  # Wed 09:30: 13.5 of 16 working hours = 84 %
    restart_and_run(deployment, clock, "sla")
    assert sla_mail(deployment) == {("yellow", "ben@agency.test"): 1, ("client-late", "bob@acme.test"): 1}
    restart_and_run(deployment, clock, "sla")  # restart, same time: nothing new
    clock.at = datetime(2026, 11, 25, 10, 5, tzinfo=BERLIN)  # past due
    restart_and_run(deployment, clock, "sla", "sla")
    restart_and_run(deployment, clock, "sla")
    assert sla_mail(deployment) == {("yellow", "ben@agency.test"): 1, ("client-late", "bob@acme.test"): 1,
                                    ("red", "ben@agency.test"): 1, ("red", "morgan@agency.test"): 1}
    red = next(m for m in deployment.received_by("morgan@agency.test") if "RED" in m["Subject"])
    assert "late" in red.get_body(("plain",)).get_content()
    assert deployment.tasks()[0].priority == "P1", "the escalation rule ran once"


def test_job_command_runs_once_and_sends(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - One"), make_mail("[Acme] - Design - Two"))
    assert deployment.run_once() == 0
    capsys.readouterr()
    assert deployment.cli("job", "staff-digest") == 0
    assert "staff-digest: staff-digest=" in capsys.readouterr().out
    digests = [m for m in deployment.received() if m["Subject"].startswith("Your queue today")]
    assert {m["To"] for m in digests} == {"ana@agency.test", "ben@agency.test"}
    assert deployment.cli("job", "staff-digest") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert deployment.cli("report", "--json") == 0
    assert '"queues"' in capsys.readouterr().out


def test_reply_to_staff_digest_runs_commands(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Waiting for someone"))
    deployment.run_once()
    deployment.cli("job", "staff-digest")
    digest = next(m for m in deployment.received_by("ben@agency.test") if m["Subject"].startswith("Your queue"))
    assert "take 1" in digest.get_body(("plain",)).get_content()
    deployment.deliver(make_mail(f"Re: {digest['Subject']}", sender="ben@agency.test", body="take 1\nstart 1",
                                 to=digest["Reply-To"], headers={"In-Reply-To": digest["Message-ID"]}))
    deployment.run_once()
    task = deployment.tasks()[0]
    assert (task.assignee, task.status) == ("ben@agency.test", "in_progress")
