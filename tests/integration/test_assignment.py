"""Who gets work, end to end through real Dovecot and aiosmtpd (issue 16): skills, backups with
their reason, `next` offering only what the puller can do, part-timers' hours, and `check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dispatchd.store.tables import Task
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]
TRUSTED = {"Authentication-Results": "mx.agency.test; dkim=pass header.d=agency.test; dmarc=pass"}

# Shay is the only Shopify person (WIP 1, Cara covers for her); dev and design hand work out
# automatically, content is pull. Paula does print on Sundays only (the agency is shut then);
# Tim does print any time.
STAFF = """
[[staff]]
name = "Shay"
email = "shay@agency.test"
queues = ["dev"]
skills = ["shopify"]
wip_limit = 1
backup = "Cara"

[[staff]]
name = "Cara"
email = "cara@agency.test"
queues = ["dev", "content"]
skills = ["wordpress"]

[[staff]]
name = "Paula"
email = "paula@agency.test"
queues = ["design"]
skills = ["print"]
workdays = ["sun"]
hours = "00:00-24:00"

[[staff]]
name = "Tim"
email = "tim@agency.test"
queues = ["design"]
skills = ["print"]
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
hours = "00:00-24:00"
"""
SKILL_RULES = """
[[rule]]
name = "shopify-work"
when = { keywords = ["shopify"] }
then = { require = ["shopify"] }

[[rule]]
name = "print-work"
when = { keywords = ["print", "flyer"] }
then = { require = ["print"] }
"""


@pytest.fixture
def agency(deployment: Deployment) -> Deployment:
    rules = deployment.path / "rules"
    shutil.copytree(PROJECT / "rules", rules)
    service = rules / "40-service.toml"
    service.write_text(service.read_text()
                       .replace('name = "dev"\nstrategy = "pull"', 'name = "dev"\nstrategy = "least_loaded"')
                       .replace('name = "content"\nstrategy = "manual"', 'name = "content"\nstrategy = "pull"'))
    (rules / "50-skills.toml").write_text(SKILL_RULES)
    text = deployment.config.read_text().replace(f'rules = "{PROJECT / "rules"}"', f'rules = "{rules}"')
    deployment.config.write_text(text + STAFF)
    return deployment


def send(d: Deployment, *messages: bytes) -> None:
    d.deliver(*messages)
    assert d.run_once() == 0


def task(d: Deployment, task_id: int) -> Task:
    with d.session() as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def explained(d: Deployment, capsys: pytest.CaptureFixture[str], task_id: int) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert d.cli("explain-assign", str(task_id), "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_shopify_work_goes_to_the_only_shopify_person_then_to_her_backup(
        agency: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    d = agency
    send(d, make_mail("[Acme] - Technical - Shopify checkout fails"))
    assert task(d, 1).assignee == "shay@agency.test", "Ben and Cara are less loaded but lack 'shopify'"
    assert d.received_by("shay@agency.test")
    send(d, make_mail("[Acme] - Technical - Shopify theme update"))
    assert task(d, 2).assignee == "cara@agency.test"
    found = explained(d, capsys, 2)
    routed = next(e for e in found["history"] if e["kind"] == "routed")
    assert "no one with 'shopify' under their WIP limit; Shay's backup Cara took it" in routed["detail"]
    why = {c["name"]: c["why"] for c in found["considered"]}
    assert why["Shay"] == "at WIP limit (1 of 1)" and why["Ben"] == "lacks 'shopify'"
    assert found["needs"]["skills"] == ["shopify"]
    capsys.readouterr()
    assert d.cli("explain-assign", "2") == 0
    out = capsys.readouterr().out
    assert "needs: 'shopify'" in out and "Shay's backup Cara took it" in out
    assert d.cli("explain-assign", "99") == 1
    capsys.readouterr()
    assert d.cli("report", "--json") == 0
    assert json.loads(capsys.readouterr().out)["skill_gaps"] == [
        "2 open tasks need 'shopify'; 1 person has it: Shay, at WIP limit"]


def test_next_never_offers_work_the_puller_cannot_do(agency: Deployment) -> None:
    d = agency
    # content is pull: Cara (WordPress, no Shopify) asks for the next task twice
    send(d, make_mail("[Acme] - Content - Shopify product texts [P1]"), make_mail("[Acme] - Content - Blog post"))
    send(d, make_mail("next", sender="cara@agency.test", body="", to=d.user, headers=TRUSTED))
    assert (task(d, 1).assignee, task(d, 2).assignee) == (None, "cara@agency.test"), "the P1 needs Shopify"
    send(d, make_mail("next", sender="cara@agency.test", body="", to=d.user, headers=TRUSTED))
    reply = d.received_by("cara@agency.test")[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "that you have the skills, language and region for" in reply
    assert task(d, 1).assignee is None


def test_a_part_timer_is_not_assigned_outside_her_hours(agency: Deployment,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    d = agency
    send(d, make_mail("[Acme] - Design - Print flyer for the fair"))
    # Paula comes first in config and is as unloaded as Tim, but she works Sundays only.
    assert task(d, 1).assignee == "tim@agency.test"
    why = {c["name"]: c["why"] for c in explained(d, capsys, 1)["considered"]}
    assert why["Paula"] == "not working then (own hours)" and why["Ben"] == "lacks 'print'"


def test_check_refuses_what_cannot_work_with_file_and_line(agency: Deployment,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    d = agency
    good = d.config.read_text()
    d.config.write_text(good.replace('backup = "Cara"', 'backup = "Zed"'))
    capsys.readouterr()
    assert d.cli("check") == 2
    line = good.splitlines().index('backup = "Cara"') + 1
    assert f"{d.config}:{line}: staff[3].backup: no [[staff]] named 'Zed'" in capsys.readouterr().err
    d.config.write_text(good.replace('name = "Cara"\nemail = "cara@agency.test"\n',
                                     'name = "Cara"\nemail = "cara@agency.test"\nbackup = "Shay"\n'))
    assert d.cli("check") == 2
    assert "staff[3].backup: backups go round in a circle: Shay -> Cara -> Shay" in capsys.readouterr().err
    d.config.write_text(good + '[[clients]]\nname = "Kunde"\nsenders = ["*@kunde.test"]\nregion = "DACH"\n')
    assert d.cli("check") == 0
    assert "client Kunde: no [[staff]] covers its region 'DACH'" in capsys.readouterr().out
    d.config.write_text(good)
    rules = d.path / "rules" / "50-skills.toml"
    rules.write_text(SKILL_RULES.replace('require = ["print"]', 'require = ["letterpress"]'))
    assert d.cli("check") == 2
    assert f"{rules}:10: rule[1].then.require: no [[staff]] has the skill 'letterpress'" in capsys.readouterr().err


def test_work_nobody_in_the_queue_can_do_goes_to_triage_saying_why(
        agency: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    d = agency
    # Ben, dev's lead, is away: nobody is left to hold work dev cannot do.
    d.config.write_text(d.config.read_text().replace('role = "lead"\n', 'role = "lead"\naway_until = "2099-01-01"\n'))
    send(d, make_mail("[Acme] - Technical - Print stylesheet for invoices"))
    sent = task(d, 1)
    assert (sent.queue, sent.status, sent.assignee) == ("triage", "received", None), "nobody in dev has 'print'"
    why = ("no one in dev has 'print', and no backup or lead could take it (the queue's lead Ben is away): "
           "sent to triage")
    history = explained(d, capsys, 1)["history"]
    assert why in next(e for e in history if e["kind"] == "routed")["detail"]
    [notice] = d.received_by("morgan@agency.test")  # the triage reviewer: one mail, not a 'new task' as well
    assert notice["Subject"].startswith("[#1] Nobody in dev can take it, sent to triage")
    text = notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert why in " ".join(text.split()) and '"queue dev"' in text and '"assign <name>"' in text
    # The reviewer gives it to someone anyway, as the notice says.
    send(d, make_mail("Re: [#1] x", sender="morgan@agency.test", body="queue dev\nassign Cara", to=d.user,
                      headers=TRUSTED))
    assert (task(d, 1).queue, task(d, 1).status, task(d, 1).assignee) == ("dev", "queued", "cara@agency.test")

    # The only Shopify person is away and so is her backup: triage too, not a silent wait in dev.
    d.config.write_text(d.config.read_text()
                        .replace('backup = "Cara"\n', 'backup = "Cara"\naway_until = "2099-01-01"\n')
                        .replace('name = "Cara"\n', 'name = "Cara"\naway_until = "2099-01-01"\n'))
    send(d, make_mail("[Acme] - Technical - Shopify checkout fails"))
    assert (task(d, 2).queue, task(d, 2).assignee) == ("triage", None)
    capsys.readouterr()
    assert d.cli("explain-assign", "2") == 0
    assert "everyone with 'shopify' is away, and no backup or lead could take it" in capsys.readouterr().out
    assert "everyone with 'shopify' is away" in d.received_by("morgan@agency.test")[-1].get_body(
        ("plain",)).get_content()  # type: ignore[union-attr]

    # Once someone is back, the reviewer puts it back in dev's queue.
    send(d, make_mail("Re: [#2] x", sender="morgan@agency.test", body="queue dev", to=d.user, headers=TRUSTED))
    assert (task(d, 2).queue, task(d, 2).status) == ("dev", "queued")


def test_work_people_could_do_but_are_full_waits_in_its_queue(agency: Deployment) -> None:
    d = agency
    # Everyone in design who prints is full (WIP limit 0) rather than missing: the task waits in design.
    d.config.write_text(d.config.read_text().replace('skills = ["print"]\n', 'skills = ["print"]\nwip_limit = 0\n')
                        .replace('role = "lead"\n', 'role = "lead"\naway_until = "2099-01-01"\n'))
    send(d, make_mail("[Acme] - Design - Print flyer for the fair"))
    assert (task(d, 1).queue, task(d, 1).status, task(d, 1).assignee) == ("design", "queued", None)
    [notice] = d.received_by("ben@agency.test")[-1:]
    assert "at capacity" in notice["Subject"]
