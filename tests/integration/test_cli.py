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
