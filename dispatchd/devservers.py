"""Throw-away mail servers on 127.0.0.1 for the demo and the tests.

``Dovecot`` runs Debian's dovecot in the foreground (-F) as a child we own, with its own
config, runtime dir and Maildir under a temporary directory; ``stop`` ends it by its pid.
``Postgres`` does the same for Debian's PostgreSQL: a fresh cluster, trust auth on loopback.
``SmtpCapture`` is an in-process aiosmtpd server that records every message it accepts and
can be told to answer 451 or 550 for failure tests.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MAIL_USER = "dispatchd-mail"
PASSWORD = "secret"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.path.exists(p)), None)


def _mail_identity() -> tuple[int, int, str]:
    """Dovecot refuses to deliver as root, so root runs it for a system user of our own."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return entry.pw_uid, entry.pw_gid, entry.pw_name
    try:
        entry = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        MAIL_USER], check=True, capture_output=True)
        entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid, "dovecot"


class Dovecot:
    """A private IMAP server; any username logs in with ``PASSWORD`` and gets a fresh Maildir."""

    def __init__(self, port: int | None = None, root: Path | None = None, oauth2_introspection_url: str | None = None):
        self.port = port or free_port()
        self.owns_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="dispatchd-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.oauth2_introspection_url = oauth2_introspection_url

    def _oauth2_passdb(self) -> str:
        """XOAUTH2/OAUTHBEARER checked against an RFC 7662 introspection endpoint (on loopback)."""
        if not self.oauth2_introspection_url:
            return ""
        (self.root / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
        return f"""\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.root}/oauth2.conf.ext
}}
"""

    def _config(self) -> str:
        uid, gid, internal_user = _mail_identity()
        login_user = "dovenull" if os.geteuid() == 0 else internal_user
        return f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_introspection_url else ""}
log_path = {self.root}/dovecot.log
mail_location = maildir:{self.root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {min(uid, 1)}
first_valid_gid = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
mail_fsync = never
# A refused login is answered at once, and refusals do not slow the next logins from 127.0.0.1
# (anvil's penalty, 2 s doubling to 15 s, also delayed the correct logins of later tests).
auth_failure_delay = 0
{self._oauth2_passdb()}passdb {{
  driver = static
  mechanisms = plain login
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""

    def start(self, timeout: float = 15.0) -> Dovecot:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed (Debian: apt-get install dovecot-imapd)")
        uid, gid, _ = _mail_identity()
        self.root.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.root / "mail", uid, gid)
        config = self.root / "dovecot.conf"
        config.write_text(self._config())
        self.process = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "dovecot.log").read_text() if (self.root / "dovecot.log").exists() else ""
                raise RuntimeError(f"dovecot exited with {self.process.returncode}: {log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """Stop the server we started, by its pid (and its process group), then clean up."""
        if self.process is not None:
            # The whole group: Dovecot's imap children outlive a stopped master.
            _stop_child(self.process, lambda pid: os.killpg(pid, signal.SIGTERM), grace=10)
        self.process = None
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, user: str):  # type: ignore[no-untyped-def]
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, messages: list[bytes], folder: str = "INBOX") -> None:
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for start in range(0, len(messages), 200):
                chunk = messages[start:start + 200]
                if len(chunk) > 1 and client.has_capability("MULTIAPPEND"):
                    client.multiappend(folder, chunk)
                else:
                    for message in chunk:
                        client.append(folder, message)
        finally:
            client.logout()

    def count(self, user: str, folder: str = "INBOX") -> int:
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                return 0
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])
        finally:
            client.logout()


def _stop_child(process: subprocess.Popen[bytes], ask: Callable[[int], None], grace: float) -> None:
    """Ask a server we started to stop (``ask(pid)``); SIGKILL its process group after ``grace`` s."""
    if process.poll() is not None:
        return
    try:
        ask(process.pid)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def postgres_bin_dir() -> Path | None:
    """Debian keeps the server binaries out of PATH, one directory per major version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    return Path(on_path).resolve().parent if on_path else None


class Postgres:
    """A private PostgreSQL cluster on 127.0.0.1 with one database, ``dispatchd``.

    Durability is turned off (fsync): the cluster lives for one test session. PostgreSQL
    refuses to run as root, so root runs it as the same system user as Dovecot.
    """

    def __init__(self, port: int | None = None, durable: bool = False):
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dispatchd-postgres-"))
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for("dispatchd")

    def url_for(self, database: str) -> str:
        return f"postgresql://dispatchd@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> Postgres:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        uid, gid, _ = _mail_identity()
        as_user = {"user": uid, "group": gid} if os.geteuid() == 0 else {}
        data, sockets = self.root / "data", self.root / "run"
        sockets.mkdir()
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            os.chown(self.root, uid, gid)
            os.chown(sockets, uid, gid)
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "dispatchd", "--auth=trust",
                        "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, **as_user)
        options = [] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]
        with open(self.root / "postgres.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(sockets), "-c", "max_connections=200", *options],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, **as_user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: "
                                   f"{(self.root / 'postgres.log').read_text()[-2000:]}")
            try:
                self.create_database("dispatchd")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not answer on 127.0.0.1:{self.port}")

    def create_database(self, name: str) -> str:
        """A new empty database in this cluster (one per test keeps tests apart); its URL."""
        import psycopg

        try:
            with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=2) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            raise OSError(str(exc)) from exc
        except psycopg.errors.DuplicateDatabase:
            pass
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server we started, by its pid (fast shutdown), then remove the cluster."""
        if self.process is not None:
            _stop_child(self.process, lambda pid: os.kill(pid, signal.SIGINT), grace=20)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = field(default_factory=time.perf_counter)  # when the server accepted it
    peer: tuple[str, int] | None = None  # the client's end of the connection it came over


@dataclass
class _Recorder:
    messages: list[Received] = field(default_factory=list)
    answer: str | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.answer:
            return self.answer
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content, peer=tuple(session.peer[:2])))
        return "250 2.0.0 OK: queued"


@dataclass
class _OAuthRecorder(_Recorder):
    """Also demands AUTH XOAUTH2 with one accepted token."""

    token: str = ""
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        return await super().handle_DATA(server, session, envelope)

    async def auth_XOAUTH2(self, server, args):  # type: ignore[no-untyped-def]
        import base64

        from aiosmtpd.smtp import AuthResult

        decoded = base64.b64decode(args[1]).decode() if len(args) > 1 else ""
        fields = dict(part.split("=", 1) for part in decoded.split("\x01") if "=" in part)
        ok = fields.get("auth") == f"Bearer {self.token}"
        if ok:
            self.logins.append(fields.get("user", ""))
        return AuthResult(success=ok, handled=False)


class SmtpCapture:
    """aiosmtpd on 127.0.0.1 in a background thread; ``messages`` are what it accepted.
    With ``oauth2_token`` it requires AUTH XOAUTH2 with that token before accepting mail."""

    def __init__(self, port: int | None = None, oauth2_token: str | None = None):
        self.port = port or free_port()
        self.recorder = _OAuthRecorder(token=oauth2_token) if oauth2_token else _Recorder()
        self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    def answer_with(self, reply: str | None) -> None:
        """Make DATA fail with e.g. '451 4.3.0 try later' or '550 5.1.1 no such user'."""
        self.recorder.answer = reply

    def start(self) -> SmtpCapture:
        from aiosmtpd.controller import Controller

        # AUTH without TLS is what we want on a loopback test server.
        extra = {"auth_require_tls": False} if isinstance(self.recorder, _OAuthRecorder) else {}
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     decode_data=False, data_size_limit=50 * 1024 * 1024, **extra)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpCapture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
