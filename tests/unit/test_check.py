from pathlib import Path

import pytest

from dispatchd.cli import main
from tests.conftest import write_config


def test_check_passes_and_explains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["check", "--config", str(config), "--explain", "Fwd: [ACME Corp] | bug | Checkout broken [ABC-7]",
                 "--from", "bob@gmail.test"]) == 0
    out = capsys.readouterr().out
    assert "ok:" in out and "3 staff, 6 request types, 2 rules" in out
    for line in ("client:   Acme", "type:     Technical", "queue:    dev", "priority: P1", "sla:      24 hours",
                 "rule urgent-words (keyword 'broken'): priority raised to P1"):
        assert line in out


def test_check_explains_triage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write_config(tmp_path)), "--explain", "hello there",
                 "--from", "eve@unknown.test"]) == 0
    out = capsys.readouterr().out
    assert "queue:    triage (triage)" in out and "eve@unknown.test is not a known client address" in out


def test_check_refuses_rules_naming_unknown_staff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    project = Path(__file__).resolve().parents[2]
    for source in (project / "rules").glob("*.toml"):
        (rules / source.name).write_text(source.read_text())
    (rules / "40-vip.toml").write_text('[[rule]]\nname = "vip"\nwhen = { client = ["Initech"], mailbox = "brand-z" }\n'
                                        'then = { assign = "Zed", notify = ["requests1000@agency.test"] }\n')
    config = write_config(tmp_path, mailbox="requests1000@agency.test")
    config.write_text(config.read_text().replace(f'rules = "{project / "rules"}"', f'rules = "{rules}"'))
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "40-vip.toml:4: rule[0].then.assign: no [[staff]] named 'Zed'" in err
    assert "rule[0].then.notify: requests1000@agency.test is the intake address" in err
    assert "40-vip.toml:3: rule[0].when.client: no [[clients]] named 'Initech'" in err
    assert "rule[0].when.mailbox: no [[mailbox]] named 'brand-z' in config.toml (known: requests1000@agency.test)" in err


def test_check_refuses_a_broken_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Path(__file__).resolve().parents[2]
    templates = tmp_path / "templates"
    templates.mkdir()
    for source in (project / "templates").iterdir():
        (templates / source.name).write_text(source.read_text())
    (templates / "client-received.txt.j2").write_text(
        "{% block subject %}[#{{ task.id }}]{% endblock %}\n{% block body %}\n{{ task.nope }\n{% endblock %}\n")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'templates = "{project / "templates"}"', f'templates = "{templates}"'))
    assert main(["check", "--config", str(config)]) == 2
    assert "client-received.txt.j2:3:" in capsys.readouterr().err
