"""Running as a service: the notify protocol, reload on SIGHUP, the unit file, init, the wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, make_mail, stop_process
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]


class NotifySocket:
    """What systemd listens on: a datagram socket; we collect what the daemon says."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, socket.timeout):
                return self.messages

    def saw(self, text: str) -> bool:
        return any(text in m for m in self.drain())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path):  # type: ignore[no-untyped-def]
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def start_with(deployment: Deployment, env: dict[str, str]) -> subprocess.Popen[bytes]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return deployment.start_daemon()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_notify_protocol(deployment: Deployment, notify_socket: NotifySocket) -> None:
    daemon = start_with(deployment, {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000"})
    try:
        wait_for(lambda: notify_socket.saw("READY=1"), what="READY=1")
        ready = next(m for m in notify_socket.messages if "READY=1" in m)
        assert f"STATUS=reading {deployment.user}; 0 queued in outbox" in ready
        wait_for(lambda: notify_socket.drain().count("WATCHDOG=1") >= 2, what="watchdog pings")
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: notify_socket.saw("RELOADING=1"), what="RELOADING=1")
        wait_for(lambda: sum("READY=1" in m for m in notify_socket.drain()) >= 2, what="READY=1 after reload")
    finally:
        assert stop_process(daemon) == 0
    assert notify_socket.saw("STOPPING=1")


def test_ready_comes_before_a_long_first_pass(deployment: Deployment, notify_socket: NotifySocket) -> None:
    """READY=1 once the mailbox is reachable, not after the backlog: 20,000 messages must not
    meet TimeoutStartSec. The pass's progress goes to STATUS=."""
    backlog = 400
    deployment.deliver(*(make_mail(f"[Acme] - Content - Backlog {n}", sender=f"client{n}@acme.test")
                         for n in range(backlog)))
    daemon = start_with(deployment, {"NOTIFY_SOCKET": str(notify_socket.path)})
    try:
        wait_for(lambda: notify_socket.saw("READY=1"), what="READY=1")
        ready = next(m for m in notify_socket.messages if "READY=1" in m)
        assert f"STATUS=reading {deployment.user}: 0 of {backlog} messages" in ready
        wait_for(lambda: notify_socket.saw(f"STATUS=reading {deployment.user}; "), timeout=120, what="the pass's end")
    finally:
        assert stop_process(daemon) == 0
    said = notify_socket.drain()
    progress = [m for m in said if f" of {backlog} messages" in m]
    assert said.index(ready) == 0 and len(progress) >= 2, said  # READY first, then progress
    assert len(deployment.tasks()) == backlog


def test_an_unreachable_mailbox_is_ready_and_says_why(deployment: Deployment, notify_socket: NotifySocket) -> None:
    """A wrong password: the service is up and retrying (restarting it would not help)."""
    daemon = start_with(deployment, {"NOTIFY_SOCKET": str(notify_socket.path), "DISPATCHD_TEST_PASSWORD": "wrong"})
    try:
        wait_for(lambda: notify_socket.saw("READY=1"), what="READY=1")
        ready = next(m for m in notify_socket.messages if "READY=1" in m)
        assert f"STATUS={deployment.user}: reconnecting in 1s:" in ready
    finally:
        assert stop_process(daemon) == 0


def test_reload_applies_good_rules_and_refuses_bad_ones(deployment: Deployment, tmp_path: Path) -> None:
    rules = tmp_path / "candidate-rules"
    shutil.copytree(PROJECT / "rules", rules)
    config = deployment.config.read_text().replace(f'rules = "{PROJECT / "rules"}"', f'rules = "{rules}"')
    deployment.config.write_text(config)
    daemon = deployment.start_daemon()
    try:
        wait_for(lambda: "imap.connected" in (deployment.path / "daemon.log").read_text(), what="login")
        (rules / "10-types.toml").write_text((rules / "10-types.toml").read_text() + '\n[[type]]\nname = "Broken"\n')
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload.refused" in (deployment.path / "daemon.log").read_text(), what="refusal")
        assert "type[6].queue: is required" in (deployment.path / "daemon.log").read_text()
        deployment.deliver(make_mail("[Acme] - Poetry - An ode"))
        wait_for(lambda: len(deployment.tasks()) == 1, what="first task")
        assert deployment.tasks()[0].queue == "triage", "the old rules are still in force"
        text = (rules / "10-types.toml").read_text().replace('\n[[type]]\nname = "Broken"\n', "")
        (rules / "10-types.toml").write_text(text + '\n[[type]]\nname = "Poetry"\nqueue = "content"\n'
                                                    'sla = "1 business day"\n')
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload.done" in (deployment.path / "daemon.log").read_text(), what="reload")
        deployment.deliver(make_mail("[Acme] - Poetry - Another ode"))
        wait_for(lambda: len(deployment.tasks()) == 2, what="second task")
        assert deployment.tasks()[1].queue == "content", "the new rules apply without a restart"
    finally:
        assert stop_process(daemon) == 0


def test_unit_file_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (PROJECT / "systemd" / "dispatchd.service").read_text()
    executable = shutil.which("dispatchd") or sys.executable
    (tmp_path / "dispatchd.service").write_text(unit.replace("/usr/local/bin/dispatchd", executable))
    result = subprocess.run([analyze, "verify", str(tmp_path / "dispatchd.service")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for line in ("Type=notify", "ExecStart=/usr/local/bin/dispatchd run", "ExecReload=", "Restart=on-failure",
                 "RestartPreventExitStatus=2", "StateDirectory=dispatchd", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "PrivateTmp=yes"):
        assert line in unit
    # RestartPreventExitStatus= does not cover ExecStartPre=: a check there would restart forever.
    assert not re.search(r"^ExecStartPre=", unit, re.MULTILINE)
    for link in re.findall(r"^Documentation=(.*)$", unit, re.MULTILINE):  # no dead links
        for target in link.split():
            assert not target.startswith("file://") or Path(target[len("file://"):]).exists(), target


def test_init_writes_a_config_that_check_accepts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatchd.cli import main

    monkeypatch.setenv("DISPATCHD_IMAP_PASSWORD", "x")
    monkeypatch.setenv("DISPATCHD_SMTP_PASSWORD", "y")
    assert main(["init", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "rules" / "10-types.toml").exists()
    assert main(["check", "--config", str(tmp_path / "site" / "config.toml")]) == 0
    assert main(["init", str(tmp_path / "site")]) == 2, "never overwrites without --force"
    capsys.readouterr()
    (tmp_path / "site" / "rules" / "30-rules.toml").write_text('[[rule]]\nname = "x"\nthen = { assign = "Zed" }\n')
    assert main(["check", "--json", "--config", str(tmp_path / "site" / "config.toml")]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["problems"][0]["line"] == 3
    assert "no [[staff]] named 'Zed'" in result["problems"][0]["reason"]


@pytest.mark.slow
def test_wheel_ships_rules_templates_and_example(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(PROJECT)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("dispatchd-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "DISPATCHD_IMAP_PASSWORD": "x",
           "DISPATCHD_SMTP_PASSWORD": "y"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = lambda *args: subprocess.run([sys.executable, "-m", "dispatchd", *args], cwd=outside, env=env,  # noqa: E731
                                       capture_output=True, text=True)
    assert run("--version").stdout.strip().startswith("dispatchd ")
    created = run("init", str(tmp_path / "fresh"))
    assert created.returncode == 0, created.stderr
    checked = run("check", "--config", str(tmp_path / "fresh" / "config.toml"))
    assert checked.returncode == 0, checked.stderr
    located = subprocess.run([sys.executable, "-c", "import dispatchd.defaults as d; print(d.default_dir('rules'))"],
                             cwd=outside, env=env, capture_output=True, text=True)
    assert located.stdout.strip().startswith(str(tmp_path / "site"))
    site = tmp_path / "site" / "dispatchd"
    for shipped in ("_templates/web/_base.html.j2", "_templates/web/requests.html.j2", "_templates/_portal.txt.j2",
                    "web/static/site.css"):
        assert (site / shipped).is_file(), f"the wheel lacks {shipped}: the web side would not render"
    assert (tmp_path / "fresh" / "rules" / "example-mail" / "en.jsonl").is_file(), "init leaves out the example mail"
