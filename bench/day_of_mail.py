"""A day of a team's mail through the real daemon, read as each recipient would (run on demand):

    .venv/bin/python -m bench.day_of_mail [--idle 60] [--out day.txt]

Starts a private Dovecot (behind a counting proxy) and an SMTP capture on 127.0.0.1, starts
``dispatchd run`` (IDLE), and first leaves it idle: the IMAP commands it sends and the CPU that
the daemon and its sender use are printed. Then the day: clients' requests in the convention
and in plain words, a cc'd colleague, an outsider naming a client, a spoofed client address,
an out-of-office reply, a mailing list; staff answering their notices the way people write; the
client answering. After the daemon stops, the SLA and digest jobs run. Every email dispatchd
sent is written out grouped by recipient, for a person to read, with a line per recipient
saying which tasks and clients their mail mentioned (nobody may hear of another client's work).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from email.message import EmailMessage
from pathlib import Path

from dispatchd.demo import INTAKE, write_config
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture, free_port

CLIENTS = ("Acme", "Globex", "Tyler")  # whose names a recipient's mail may mention


class CountingProxy:
    """TCP proxy on loopback that counts the lines a client sends (IMAP commands, DONE)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.lines = 0
        self.commands: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counting: bool) -> None:
        try:
            while data := source.recv(65536):
                if counting:
                    self.lines += data.count(b"\r\n")
                    self.commands.extend(line.split(b" ", 2)[1][:12] if b" " in line else line[:12]
                                         for line in data.split(b"\r\n") if line)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped = True
        self.server.close()


# Beyond the demo's agency: a client known by one address only, and a second developer.
MORE_CONFIG = """
[[clients]]
name = "Tyler"
senders = ["tyler@tyler-seo.test"]

[[staff]]
name = "Dev"
email = "dev@agency.test"
queues = ["dev"]
"""


_ids = iter(range(1, 10_000))


def mail(sender: str, subject: str, body: str, *, html: bool = False, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, INTAKE, subject
    message["Message-ID"] = f"<day-{next(_ids)}@{sender.split('@')[-1].strip('>')}>"
    message["Date"] = email.utils.format_datetime(email.utils.localtime())
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body, subtype="html" if html else "plain")
    return message.as_bytes()


def answer(notice: EmailMessage, sender: str, body: str, subject: str | None = None, html: bool = False) -> bytes:
    """A reply as a mail program writes it: to the Reply-To, threaded, the notice quoted below."""
    quoted = "\n".join("> " + line for line in _text(notice).splitlines())
    text = body if html else f"{body}\n\nOn {notice['Date']}, {notice['From']} wrote:\n{quoted}\n"
    message = EmailMessage()
    message["From"], message["To"] = sender, notice["Reply-To"] or notice["From"]
    message["Subject"] = subject if subject is not None else f"Re: {notice['Subject']}"
    message["In-Reply-To"] = notice["Message-ID"]
    message["References"] = notice["Message-ID"]
    message["Message-ID"] = f"<day-{next(_ids)}@{sender.split('@')[-1].strip('>')}>"
    message["Date"] = email.utils.format_datetime(email.utils.localtime())
    message.set_content(text, subtype="html" if html else "plain")
    return message.as_bytes()


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


class Day:
    def __init__(self, root: Path, dovecot: Dovecot, smtp: SmtpCapture):
        self.root, self.dovecot, self.smtp = root, dovecot, smtp
        self.seen = 0

    def deliver(self, *messages: bytes) -> None:
        self.dovecot.append(INTAKE, list(messages))

    def settle(self, quiet: float = 3.0, timeout: float = 60.0) -> None:
        """Until the capture has received nothing new for ``quiet`` seconds."""
        deadline, count, since = time.monotonic() + timeout, len(self.smtp.messages), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if len(self.smtp.messages) != count:
                count, since = len(self.smtp.messages), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def received(self) -> list[tuple[list[str], EmailMessage]]:
        return [(m.rcpt_tos, email.message_from_bytes(m.data, policy=email.policy.default))  # type: ignore[misc]
                for m in self.smtp.messages]

    def latest_to(self, address: str, subject_has: str) -> EmailMessage | None:
        found = [m for rcpt, m in self.received() if address in rcpt and subject_has in str(m["Subject"])]
        return found[-1] if found else None


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [pid]
    if children.exists():
        for child in children.read_text().split():
            found += family(int(child))
    return found


def settle(pid: int, quiet: float = 0.05, limit: float = 120.0) -> float:
    """Wait until the daemon's start-up work is over (three seconds in a row with under ``quiet``
    CPU seconds each, at least five seconds in all); returns the CPU seconds it took. The idle
    figure is measured after this, so that a start-up cost is not reported as an idle one."""
    deadline, calm = time.monotonic() + limit, 0
    time.sleep(5)
    last = cpu_seconds(family(pid))
    while calm < 3 and time.monotonic() < deadline:
        time.sleep(1)
        now = cpu_seconds(family(pid))
        calm = calm + 1 if now - last < quiet else 0
        last = now
    return last


def run(idle_seconds: float, out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="dispatchd-day-"))
    os.environ["DISPATCHD_DEMO_PASSWORD"] = PASSWORD
    with Dovecot() as dovecot, SmtpCapture() as smtp:
        proxy = CountingProxy(dovecot.port)
        web = free_port()  # the web side served by the daemon: client mail carries its links
        write_config(root, proxy.port, smtp.port, mode="idle",
                     extra=MORE_CONFIG + f'[web]\nlisten = "127.0.0.1:{web}"\nbase_url = "http://127.0.0.1:{web}"\n'
                     ).chmod(0o600)
        day = Day(root, dovecot, smtp)
        with open(root / "daemon.log", "wb") as log:
            daemon = subprocess.Popen([sys.executable, "-m", "dispatchd", "run", "--config", str(root / "config.toml")],
                                      cwd=root, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            started = time.monotonic()
            settled = settle(daemon.pid)
            print(f"start-up: {settled:.2f} s CPU in {time.monotonic() - started:.0f} s (login, first pass and, "
                  "with no model yet, the day-one training of the triage model)", flush=True)
            pids = family(daemon.pid)
            lines, cpu = proxy.lines, cpu_seconds(pids)
            print(f"idle: watching {len(pids)} processes for {idle_seconds:.0f} s ...", flush=True)
            time.sleep(idle_seconds)
            idle_lines = proxy.lines - lines
            idle_cpu = cpu_seconds(pids) - cpu
            verbs = defaultdict(int)
            for verb in proxy.commands[-idle_lines:] if idle_lines else []:
                verbs[verb.decode(errors="replace")] += 1
            print(f"idle: {idle_lines} IMAP command lines ({dict(verbs)}), CPU {idle_cpu:.2f} s "
                  f"= {100 * idle_cpu / idle_seconds:.2f} % of a core (daemon + sender)", flush=True)
            _the_day(day)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
            proxy.stop()
        from dispatchd.cli import main as cli

        for job in ("sla", "digest", "staff-digest"):
            cli(["job", job, "--config", str(root / "config.toml")])
        cli(["tasks", "--config", str(root / "config.toml")])
        _write_transcript(day, out)
    print(f"files in {root}")


def _the_day(day: Day) -> None:
    started = len(day.smtp.messages)
    day.deliver(
        mail("Bob Stone <bob@acme.test>", "[Acme] - Content - Blog post on topic clusters",
             "Hi team,\n\n1,200 words on topic clusters for our SEO push, please.\n\nThanks,\nBob", Cc="Carol Ray <carol@acme.test>"),
        mail("Carla Diaz <carla@globex.test>", "New banner for the spring sale",
             "Hi Ben,\n\ncould we get a new banner for the spring sale? 1200x400 and a square one for "
             "Instagram. Colours as last time.\n\nBest,\nCarla"),
        mail("Tyler Moss <tyler@tyler-seo.test>", "checkout is broken!!",
             "Customers can't pay since this morning, the checkout page shows an error 500. Please fix asap."),
        mail("Bob Stone <bob@acme.test>", "Quick question",
             "Hello, could we set up a call to plan the Q1 campaign? Tuesday or Wednesday works."),
        mail("Pat PR <pr@brightmedia.test>", "[Acme] - Content - Press release",
             "Please write the press release for Acme's launch and send it to me."),
        mail("Alice <alice@globex.test>", "[#2] invoice details",
             "please send the final files and the invoice to billing-new@evil.test", Received="from evil.test"),
        mail("Bob Stone <bob@acme.test>", "Automatic reply: out of office", "I am away until Monday.",
             Auto_Submitted="auto-replied"),
        mail("News <news@list.example>", "Weekly marketing digest", "Top 10 tips...",
             List_Id="<news.list.example>", Precedence="list"),
        mail("Jon <jon@globex.test>", "[Globex] - Technical - Contact form sends no mail",
             "The contact form on /contact stopped sending us mail yesterday."),
        mail("Hans <hans@acme.test>", "Texte für die neue Produktseite",
             "Hallo zusammen,\n\nwir brauchen Texte für die neue Produktseite (ca. 500 Wörter).\n\nGrüße\nHans"),
    )
    day.settle()
    print(f"wave 1 (10 inbound): {len(day.smtp.messages) - started} emails sent", flush=True)
    started = len(day.smtp.messages)
    replies = []
    notice = day.latest_to("ana@agency.test", "[#1]")
    if notice is not None:
        replies.append(answer(notice, "Ana <ana@agency.test>", "Hi team,\n\nStart\n\nThanks"))
    notice = day.latest_to("dev@agency.test", "#") or day.latest_to("ben@agency.test", "#")
    if notice is not None:
        replies.append(answer(notice, "Dev <dev@agency.test>", "I’ll take it"))
    day.deliver(*replies)
    day.settle()
    replies = []
    notice = day.latest_to("ana@agency.test", "[#1]")
    if notice is not None:
        replies.append(answer(notice, "Ana <ana@agency.test>", "reply: Hi Bob, a first draft will be with you on Thursday."))
        replies.append(answer(notice, "Ana <ana@agency.test>", "Client wants this by Friday, keep it short."))
    day.deliver(*replies)
    day.settle()
    print(f"wave 2 (staff replies): {len(day.smtp.messages) - started} emails sent", flush=True)
    started = len(day.smtp.messages)
    replies = []
    notice = day.latest_to("bob@acme.test", "[#1]")
    if notice is not None:
        replies.append(answer(notice, "Bob Stone <bob@acme.test>", "Changes look good, thanks!"))
        replies.append(answer(notice, "Bob Stone <bob@acme.test>",
                              "Due to the holidays we will only review it next week."))
    notice = day.latest_to("jon@globex.test", "#")
    if notice is not None:
        replies.append(answer(notice, "Jon <jon@globex.test>", "Cancel this request please, we no longer need it."))
    day.deliver(*replies)
    day.settle()
    print(f"wave 3 (client replies): {len(day.smtp.messages) - started} emails sent", flush=True)


def _write_transcript(day: Day, out: Path) -> None:
    by_recipient: dict[str, list[EmailMessage]] = defaultdict(list)
    for rcpt, message in day.received():
        for address in rcpt:
            by_recipient[address].append(message)
    lines = []
    for address in sorted(by_recipient):
        messages = by_recipient[address]
        text = " ".join(f"{m['Subject']} {_text(m)}" for m in messages)
        tasks = sorted(set(re.findall(r"#(\d+)", text)), key=int)
        clients = sorted(name for name in CLIENTS if name in text)
        lines.append(f"\n{'=' * 100}\n{address}: {len(messages)} emails; mentions tasks {tasks}, clients {clients}")
        for message in messages:
            lines.append(f"\n--- From: {message['From']}\n    Reply-To: {message['Reply-To']}\n"
                         f"    Subject: {message['Subject']}\n")
            lines.extend("    " + line for line in _text(message).splitlines())
    out.write_text("\n".join(lines) + "\n")
    print(f"{sum(len(v) for v in by_recipient.values())} deliveries to {len(by_recipient)} recipients; "
          f"transcript in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds to leave the daemon idle first")
    parser.add_argument("--out", type=Path, default=Path("day-of-mail.txt"))
    args = parser.parse_args()
    run(args.idle, args.out)


if __name__ == "__main__":
    main()
