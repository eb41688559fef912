"""``dispatchd check --connect`` against real Dovecot and aiosmtpd: one line per server, and for
each mistake a sentence naming the setting; a refused login at run time reads the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatchd.devservers import SmtpCapture, free_port
from tests.integration.conftest import Deployment

pytestmark = pytest.mark.integration


def _edit(deployment: Deployment, old: str, new: str, count: int = 1) -> None:
    text = deployment.config.read_text()
    assert old in text
    deployment.config.write_text(text.replace(old, new, count))


def _check(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = deployment.cli("check", "--connect")
    return code, capsys.readouterr().out


def test_everything_reachable(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(deployment, capsys)
    assert code == 0, out
    assert f"ok: IMAP {deployment.user}: logged in to 127.0.0.1:{deployment.dovecot.port} as {deployment.user}; " \
           f"INBOX holds 0 messages" in out
    local, _, domain = deployment.user.partition("@")
    assert f"ok: SMTP 127.0.0.1:{deployment.smtp.port}: no login configured; envelope sender {local}+m" in out
    assert deployment.smtp.messages == [], "nothing is sent"


@pytest.mark.parametrize("old, new, words", [
    ('password_env = "DISPATCHD_TEST_PASSWORD"', 'password_env = "WRONG_PASSWORD"',
     "refused the login of '{user}': Authentication failed. [AUTHENTICATIONFAILED]. Check [mailbox] username and "
     "the password in the environment variable WRONG_PASSWORD (password_env)"),
    ('tls = "none"', 'tls = "ssl"',
     "does not speak TLS the way tls = 'ssl' expects (WRONG_VERSION_NUMBER). Check [mailbox] tls and port"),
    ('tls = "none"', 'tls = "starttls"', "Server does not support STARTTLS capability. Check [mailbox] tls"),
    ('port = {imap}', 'port = {closed}', "nothing accepts connections there. Check [mailbox] host and port"),
    ('host = "127.0.0.1"', 'host = "imap.invalid"', "the host name 'imap.invalid' is not known (DNS)"),
])
def test_each_imap_mistake_is_named(deployment: Deployment, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch, old: str, new: str, words: str) -> None:
    monkeypatch.setenv("WRONG_PASSWORD", "not-it")
    closed = free_port()
    _edit(deployment, old.format(imap=deployment.dovecot.port), new.format(closed=closed))
    code, out = _check(deployment, capsys)
    assert code == 3
    [failed] = [line for line in out.splitlines() if line.startswith("FAILED: IMAP")]
    assert words.format(user=deployment.user) in failed and "b'" not in failed
    assert f"ok: SMTP 127.0.0.1:{deployment.smtp.port}" in out, "the other servers are still tried"


def test_a_refused_login_at_run_time_is_a_sentence(deployment: Deployment, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHD_TEST_PASSWORD", "not-it")
    capsys.readouterr()
    assert deployment.run_once() == 3
    err = capsys.readouterr().err
    assert f"refused the login of '{deployment.user}': Authentication failed. [AUTHENTICATIONFAILED]" in err
    assert "b'[" not in err


@pytest.fixture
def xoauth_smtp() -> Iterator[SmtpCapture]:
    with SmtpCapture(oauth2_token="right-token") as server:
        yield server


def test_smtp_login_and_oauth_mistakes(deployment: Deployment, capsys: pytest.CaptureFixture[str],
                                       xoauth_smtp: SmtpCapture) -> None:
    _edit(deployment, f"port = {deployment.smtp.port}", f'port = {xoauth_smtp.port}\nusername = "{deployment.user}"\n'
          f'auth = "xoauth2"\noauth2_token_command = "echo wrong-token"')
    code, out = _check(deployment, capsys)
    assert code == 3
    assert f"ok: SMTP 127.0.0.1:{xoauth_smtp.port} OAuth2: a token from oauth2_token_command" in out
    assert f"FAILED: SMTP 127.0.0.1:{xoauth_smtp.port}: SMTP 127.0.0.1:{xoauth_smtp.port} refused the login of " \
           f"'{deployment.user}': 535" in out
    assert "Check [smtp] username and the OAuth2 token" in out
    _edit(deployment, 'oauth2_token_command = "echo wrong-token"', 'oauth2_token_command = "exit 4"')
    code, out = _check(deployment, capsys)
    assert code == 3 and "FAILED: SMTP 127.0.0.1:" in out and "oauth2_token_command failed (exit 4)" in out
    assert "(settings: [smtp] oauth2_*)" in out


class _RefusesVerp:
    """An SMTP server that refuses envelope senders with a +tag, as some relays do."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        if "+" in address:
            return "550 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        return "250 OK"


def test_a_refused_verp_sender_offers_verp_false(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_RefusesVerp(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        _edit(deployment, f"port = {deployment.smtp.port}", f"port = {controller.port}")
        code, out = _check(deployment, capsys)
        assert code == 3 and "the server refuses the envelope sender" in out
        assert "550 5.7.1 Sender address rejected" in out and "set [smtp] verp = false" in out
        _edit(deployment, "[smtp]\n", "[smtp]\nverp = false\n")
        code, out = _check(deployment, capsys)
        assert code == 0 and f"envelope sender {deployment.user} accepted" in out
    finally:
        controller.stop()
