"""A failed connection or login as a sentence that names the setting to look at.

Used where the daemon reports an outage and by ``dispatchd check --connect``. The server's own
words are kept (decoded: IMAPClient hands them over as the repr of bytes), followed by what to
check in config.toml.
"""

from __future__ import annotations

import ast
import socket
import ssl

from imapclient.exceptions import CapabilityError, LoginError

from dispatchd.config import MailboxConfig, Secret, SmtpConfig
from dispatchd.mail.smtp_faults import ServerFault, Stage

DEFAULT_PORTS = {"imap": {"ssl": 993, "starttls": 143, "none": 143},
                 "smtp": {"ssl": 465, "starttls": 587, "none": 25}}


def server_words(exc: BaseException) -> str:
    """The server's text of ``exc``: "b'[AUTHENTICATIONFAILED] Authentication failed.'" becomes
    "Authentication failed. [AUTHENTICATIONFAILED]"."""
    text = str(exc)
    if text[:2] in ("b'", 'b"') and text[-1:] in ("'", '"'):
        try:
            text = ast.literal_eval(text).decode("utf-8", "replace")
        except (ValueError, SyntaxError, AttributeError):
            pass
    if text.startswith("[") and "] " in text:  # a response code first: the words matter more
        code, _, rest = text[1:].partition("] ")
        text = f"{rest.strip()} [{code}]"
    return text.strip() or type(exc).__name__


def imap_failure(config: MailboxConfig, exc: BaseException) -> str:
    """Why logging in to ``config``'s IMAP server failed, and which setting to check."""
    table = f"[[mailbox]] {config.name}" if config.name and config.name != config.address else "[mailbox]"
    server = f"IMAP {config.host}:{config.port}"
    if isinstance(exc, LoginError):
        return (f"{server} refused the login of {config.username!r}: {server_words(exc)}. "
                f"Check {table} username and {_credential(config.password, config.oauth2 is not None)}")
    return _connection_failure(server, table, config.host, config.port, config.tls, "imap", exc)


def smtp_failure(config: SmtpConfig, fault: ServerFault) -> str:
    """Why the SMTP session could not be set up (``SmtpSender.open``'s fault), and what to check."""
    server = f"SMTP {config.host}:{config.port}"
    stage, _, said = fault.detail.partition(": ")
    if stage == Stage.AUTH:
        return (f"{server} refused the login of {config.username!r}: {said}. Check [smtp] username and "
                f"{_credential(config.password, config.oauth2 is not None)}; Microsoft 365 also needs SMTP AUTH "
                f"enabled for this mailbox (5.7.139 says it is not)")
    if stage == Stage.STARTTLS:
        return f"{server}: STARTTLS failed ({said}). Check [smtp] tls and port (starttls: 587, ssl: 465)"
    if stage in (Stage.GREETING, Stage.EHLO):
        return (f"{server} did not greet as expected ({said}). Check [smtp] tls = {config.tls!r}: port 465 "
                f"wants \"ssl\", 587 and 25 want \"starttls\"")
    return f"{server}: {said or fault.detail}. Check [smtp] host and port, and that this machine may connect"


def _credential(password: Secret, oauth: bool) -> str:
    if oauth:
        return "the OAuth2 token (oauth2_*: does the token belong to this username, with the mail scope?)"
    if password.env:
        return f"the password in the environment variable {password.env} (password_env)"
    if password.file:
        return f"the password in {password.file} (password_file)"
    return "password_env or password_file (none is set)"


def _connection_failure(server: str, table: str, host: str, port: int, tls: str, service: str,
                        exc: BaseException) -> str:
    usual = DEFAULT_PORTS[service][tls]
    if isinstance(exc, socket.gaierror):
        return f"{server}: the host name {host!r} is not known (DNS). Check {table} host"
    if isinstance(exc, ConnectionRefusedError):
        return (f"{server}: nothing accepts connections there. Check {table} host and port"
                + (f" (tls = {tls!r} usually means port {usual})" if port != usual else ""))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{server}: its TLS certificate is not trusted ({exc.verify_message}). Check that {table} host "
                f"is the name on the certificate")
    if isinstance(exc, ssl.SSLError):
        other = "starttls" if tls == "ssl" else "ssl"
        return (f"{server} does not speak TLS the way tls = {tls!r} expects ({exc.reason or exc}). Check {table} "
                f"tls and port: {DEFAULT_PORTS[service]['ssl']} wants \"ssl\", "
                f"{DEFAULT_PORTS[service]['starttls']} wants \"starttls\" (or try tls = {other!r})")
    if isinstance(exc, CapabilityError):
        return f"{server}: {server_words(exc)}. Check {table} tls (\"ssl\" on port {DEFAULT_PORTS[service]['ssl']}?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"{server} did not answer in time. Check {table} host and port, and any firewall in between"
    return f"{server}: {server_words(exc)}"
