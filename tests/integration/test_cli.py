"""The CLI for people and for scripts: --json on every view, replay, migrate, progress."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]


def as_json(deployment: Deployment, capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert deployment.cli(*args, "--json") in (0, 1)
    return json.loads(capsys.readouterr().out)


def test_every_view_speaks_json(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - One"), make_mail("hello"))
    deployment.run_once()
    assert isinstance(as_json(deployment, capsys, "tasks"), list)
    assert as_json(deployment, capsys, "show", "1")["id"] == 1  # type: ignore[index]
    assert isinstance(as_json(deployment, capsys, "queues"), list)
    assert isinstance(as_json(deployment, capsys, "outbox"), list)
    assert as_json(deployment, capsys, "quarantine") == []
    assert "queues" in as_json(deployment, capsys, "report")  # type: ignore[operator]
    assert as_json(deployment, capsys, "check")["ok"] is True  # type: ignore[index]
    assert as_json(deployment, capsys, "migrate")["to_version"] >= 4  # type: ignore[index]
    assert as_json(deployment, capsys, "job", "health")["job"] == "health"  # type: ignore[index]
    assert isinstance(as_json(deployment, capsys, "replay"), list)


def test_replay_shows_what_candidate_rules_would_change(deployment: Deployment, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"), make_mail("[Acme] - Design - Banner"),
                       make_mail("[Acme] - Poetry - An ode"))
    deployment.run_once()
    candidate = tmp_path / "candidate"
    shutil.copytree(PROJECT / "rules", candidate)
    (candidate / "10-types.toml").write_text((candidate / "10-types.toml").read_text().replace(
        'name = "Content"\naliases = ["copy", "copywriting", "blog", "article", "writing"]\nqueue = "content"\n'
        'priority = "P2"\nsla = "5 business days"',
        'name = "Content"\naliases = ["copy", "copywriting", "blog", "article", "writing", "poetry"]\n'
        'queue = "content"\npriority = "P2"\nsla = "3 business days"'))
    rows = as_json(deployment, capsys, "replay", "--rules", str(candidate), "--since", "1d")
    changed = {r["subject"]: (r["before"], r["after"], r["changed"]) for r in rows}  # type: ignore[union-attr]
    assert changed == {
        "[Acme] - Content - Blog post": (["content", "P2", "5 business days"], ["content", "P2", "3 business days"],
                                         ["sla"]),
        "[Acme] - Poetry - An ode": (["triage", "P2", "1 business day"], ["content", "P2", "3 business days"],
                                     ["queue", "sla"]),
    }
    capsys.readouterr()
    assert deployment.cli("replay", "--rules", str(candidate)) == 0
    assert "queue,sla" in capsys.readouterr().out
    message_id = deployment.tasks()[1].message_id
    assert deployment.cli("replay", message_id) == 0
    assert "because:" in capsys.readouterr().out
    assert deployment.tasks()[2].queue == "triage", "replay never changes anything"


def test_replay_refuses_a_bad_period(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    assert deployment.cli("replay", "--since", "soon") == 2
    assert "write e.g. 12h, 30d or 2w" in capsys.readouterr().err


def test_replay_tells_not_found_from_nothing_would_change(deployment: Deployment,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post", message_id="<blog@client.test>"))
    deployment.run_once()
    capsys.readouterr()
    assert deployment.cli("replay", "<nope@client.test>") == 1
    out, err = capsys.readouterr()
    assert "no stored request has the Message-ID <nope@client.test>" in err and "(none)" not in out
    assert deployment.cli("replay", "<blog@client.test>") == 0
    assert "nothing would change for task 1: same queue, priority and SLA" in capsys.readouterr().out
    assert deployment.cli("replay") == 0
    assert "nothing would change: 1 requests since" in capsys.readouterr().out


def test_tasks_filter_and_refuse_what_does_not_exist(deployment: Deployment,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post on 100% cotton"),
                       make_mail("[Globex] - Design - Banner", sender="Gil <gil@globex.test>"),
                       make_mail("[Acme] - Technical - Checkout broken"))
    deployment.run_once()

    def ids(*args: str) -> list[int]:
        return [row["id"] for row in as_json(deployment, capsys, "tasks", *args)]  # type: ignore[union-attr]

    assert ids() == [3, 2, 1]
    assert ids("--client", "acme corp") == [3, 1], "an alias names the client"
    assert ids("--text", "100%") == [1] and ids("--text", "BANNER") == [2]
    assert ids("--queue", "dev", "--status", "queued") == [3]
    assert ids("--assignee", "nobody") == [3, 1] and ids("--assignee", "ben@agency.test") == [2]  # design: least loaded
    assert ids("--since", "1d") == [3, 2, 1] and ids("--since", "2000-01-01", "--until", "2000-01-02") == []
    for args, refusal in ((("--queue", "contnet"), "--queue contnet: no such queue (did you mean content?)"),
                          (("--client", "Acmee"), "--client Acmee: no such client (did you mean Acme?)"),
                          (("--assignee", "Zed"), "--assignee Zed: no [[staff]] of that name or email"),
                          (("--since", "2026-13-01"), "--since '2026-13-01': write a day such as 2026-11-01")):
        capsys.readouterr()
        assert deployment.cli("tasks", *args) == 2
        assert refusal in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        deployment.cli("tasks", "--status", "done")
    assert refused.value.code == 2 and "invalid choice: 'done'" in capsys.readouterr().err


def test_piping_a_view_into_head_is_quiet_and_json_is_complete(deployment: Deployment,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(*(make_mail(f"[Acme] - Content - Post {i}", sender=f"p{i}@acme.test") for i in range(150)))
    deployment.run_once()
    import subprocess
    import sys
    # JSON of 150 tasks is over 64 KiB: more than the pipe holds after head has gone
    command = f"{sys.executable} -m dispatchd tasks --json --config {deployment.config} | head -1"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert len(deployment.tasks()) == 150 and result.stdout == "[\n" and result.stderr == ""
    # A script counting tasks gets every one of them, not the newest 100 (issue 16).
    assert len(as_json(deployment, capsys, "tasks")) == 150  # type: ignore[arg-type]
    assert deployment.cli("tasks") == 0
    out = capsys.readouterr().out
    assert out.count("Post ") == 100 and "100 of 150 shown; next page: --before 51, or --json for all" in out
    # Paging is explicit: a page of JSON says so on stderr and names the cursor for the next one.
    page = as_json(deployment, capsys, "tasks", "--limit", "30", "--before", "51")
    assert [row["id"] for row in page] == list(range(50, 20, -1))  # type: ignore[union-attr]
    assert deployment.cli("tasks", "--json", "--limit", "30", "--before", "51") == 0
    assert "30 of 50 shown; next page: --before 21" in capsys.readouterr().err
