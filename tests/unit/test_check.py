import json
import re
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
    assert re.search(r"due:      by (end of )?\w{3} \d{1,2} \w{3}.* \(24 hours\), if it came now", out), out


def test_check_explains_triage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write_config(tmp_path)), "--explain", "hello there",
                 "--from", "eve@unknown.test"]) == 0
    out = capsys.readouterr().out
    assert "queue:    triage (triage: a person routes it)" in out and "eve@unknown.test is not a known client address" in out


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
    for source in (project / "templates").glob("*.j2"):
        (templates / source.name).write_text(source.read_text())
    (templates / "client-received.txt.j2").write_text(
        "{% block subject %}[#{{ task.id }}]{% endblock %}\n{% block body %}\n{{ task.nope }\n{% endblock %}\n")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'templates = "{project / "templates"}"', f'templates = "{templates}"'))
    assert main(["check", "--config", str(config)]) == 2
    assert "client-received.txt.j2:3:" in capsys.readouterr().err


def test_explain_reads_without_reprs_and_names_the_assumed_sender(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write_config(tmp_path)), "--explain", "[Acme] - Content - Blog [P1]"]) == 0
    out = capsys.readouterr().out
    assert "subject:  [Acme] - Content - Blog [P1]\n" in out
    assert "from:     bob@gmail.test  (assumed: an address of Acme; choose another with --from)" in out
    assert "read as:  client Acme; type Content; description Blog; priority P1" in out
    assert "ParsedSubject(" not in out and "'" not in out.split("because:")[0]
    assert main(["check", "--config", str(write_config(tmp_path)), "--explain", "hi", "--from", "x@y.test"]) == 0
    out = capsys.readouterr().out
    assert "read as:  not in the [Client] - Type - Description format: the subject does not start" in out
    assert "SubjectError(" not in out and "assumed" not in out


def _with_rules(tmp_path: Path, extra_rules: str = "", **config: object) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    project = Path(__file__).resolve().parents[2]
    for source in (project / "rules").glob("*.toml"):
        (rules / source.name).write_text(source.read_text())
    (rules / "50-extra.toml").write_text(extra_rules)
    path = write_config(tmp_path, **config)  # type: ignore[arg-type]
    path.write_text(path.read_text().replace(f'rules = "{project / "rules"}"', f'rules = "{rules}"'))
    return path


def test_check_refuses_two_staff_of_one_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _with_rules(tmp_path, extra='[[staff]]\nname = "ana"\nemail = "ana2@agency.test"\nqueues = ["content"]\n')
    assert main(["check", "--config", str(path)]) == 2
    assert "staff[3].name: 'ana' is already staff #1" in capsys.readouterr().err


def test_check_refuses_an_escalation_that_names_nobody(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _with_rules(tmp_path, '[[escalation]]\nname = "tell-nobody"\nwhen = { priority = ["P0"] }\n'
                                 'then = { notify = [] }\n')
    assert main(["check", "--config", str(path)]) == 2
    assert "escalation tell-nobody: names nobody and changes nothing" in capsys.readouterr().err


@pytest.mark.parametrize("extra, warning", [
    ('[[staff]]\nname = "Cy"\nemail = "cy@agency.test"\nqueues = ["contnet"]\n',
     "warning: staff Cy: queue 'contnet' gets no work: no type, rule or triage routes to it "
     "(did you mean 'content'?)"),
    ("", "warning: type Content: nobody works in its queue 'content'"),
    ("", "warning: triage queue 'triage': no [[staff]] works in it"),
])
def test_check_warns_about_queues_that_do_not_meet(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    extra: str, warning: str) -> None:
    path = _with_rules(tmp_path, extra=extra)
    if not extra:  # nobody in content, nobody in triage
        text = path.read_text().replace('queues = ["content"]', 'queues = ["design"]')
        text = text.replace('queues = ["content", "design", "dev", "revision"]', 'queues = ["design", "dev", "revision"]')
        path.write_text(text.replace('queues = ["triage", "strategy"]', 'queues = ["strategy"]'))
    assert main(["check", "--config", str(path)]) == 0
    assert warning in capsys.readouterr().out


def test_check_of_a_sound_setup_has_no_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(write_config(tmp_path))]) == 0
    assert "warning" not in capsys.readouterr().out


def test_check_warns_when_the_client_notice_window_is_not_shorter_than_an_sla(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20, 3: the shipped "24 hours" covered the whole of the P0 (4 h) and P1 (24 h) SLAs."""
    project = Path(__file__).resolve().parents[2]
    rules = tmp_path / "rules"
    rules.mkdir()
    for source in (project / "rules").glob("*.toml"):
        (rules / source.name).write_text(source.read_text())
    service = rules / "40-service.toml"
    service.write_text(service.read_text().replace('notify_client_before = "3 hours"',
                                                   'notify_client_before = "24 hours"'))
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'rules = "{project / "rules"}"', f'rules = "{rules}"'))
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "notify_client_before = '24 hours' is not shorter than the SLA of P0 (4 hours), P1 (24 hours)" in \
        out.out + out.err
    (tmp_path / "shipped").mkdir()
    assert main(["check", "--config", str(write_config(tmp_path / "shipped"))]) == 0
    assert "notify_client_before" not in "".join(capsys.readouterr()), "the shipped rules pass"


@pytest.mark.parametrize("template, branch", [("client-format-help.txt.j2", "{% if stranger %}"),
                                              ("staff-comment.txt.j2", "{% if unverified %}")])
def test_check_renders_the_branches_for_strangers_and_unverified_senders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str, branch: str) -> None:
    project = Path(__file__).resolve().parents[2]
    templates = tmp_path / "templates"
    templates.mkdir()
    for source in (project / "templates").glob("*.j2"):
        (templates / source.name).write_text(source.read_text())
    text = (templates / template).read_text()
    assert branch in text
    (templates / template).write_text(text.replace(branch, branch + "{{ misspelt_variable }}", 1))
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f'templates = "{project / "templates"}"', f'templates = "{templates}"'))
    assert main(["check", "--config", str(config)]) == 2
    assert "misspelt_variable" in capsys.readouterr().err


def test_check_warns_when_answering_every_unknown_sender(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20, 4: configs copied from the old example say reply_to_unknown_senders = true."""
    config = write_config(tmp_path, extra="[intake]\nreply_to_unknown_senders = true\n")
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "reply_to_unknown_senders = true answers any address, also forged ones" in out.out + out.err


def test_check_warns_about_integrations_that_hear_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s")
    config = write_config(tmp_path, extra='[[webhooks]]\nname = "crm"\nurl = "https://crm.example/hook"\n'
                                          'secret_env = "HOOK_SECRET"\nclients = ["Initech"]\nqueues = ["contnet"]\n')
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "webhook crm: no [[clients]] is named 'Initech'" in text
    assert "webhook crm: no [[staff]] works in queue 'contnet'" in text


def test_check_warns_about_example_mail_the_model_cannot_learn_from(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped label would drop the mail in silence at training."""
    path = _with_rules(tmp_path)
    (tmp_path / "rules" / "example-mail").mkdir()
    lines = [{"label": "Desgin", "subject": "Poster", "body": "a poster for the fair please"},
             {"label": "not a request", "subject": "Thanks", "body": "All good, thank you!"}]
    (tmp_path / "rules" / "example-mail" / "ours.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "example mail: 1 labelled 'Desgin', which names no type in the rules" in out
    assert "(did you mean 'Design'?)" in out and "not a request" not in out
