"""``dispatchd demo``: the whole intake pipeline against throw-away local servers.

Starts a private Dovecot and an SMTP capture on 127.0.0.1, delivers a handful of sample
requests (good ones, a malformed subject, an unknown sender, an auto-reply, a duplicate),
runs the daemon once and prints the queues and every email it sent. Nothing to configure.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from dispatchd.defaults import default_dir
from dispatchd.devservers import PASSWORD, Dovecot, SmtpCapture

INTAKE = "requests@agency.test"


def sample_requests() -> list[bytes]:
    def message(sender: str, subject: str, body: str, n: int, **extra: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, INTAKE, subject
        msg["Message-ID"] = f"<demo-{n}@client.test>"
        msg["Date"] = email.utils.format_datetime(email.utils.localtime())
        for name, value in extra.items():
            msg[name.replace("_", "-")] = value
        msg.set_content(body)
        return msg

    brief = message("Bob Stone <bob@acme.test>", "[Acme] - Content - Blog post on topic clusters",
                    "Hi team,\n\n1,200 words on topic clusters for our SEO push, please.\n\nBob", 1)
    brief.add_attachment(b"%PDF-1.4 demo brief\n", maintype="application", subtype="pdf", filename="brief.pdf")
    html = message("Carla <carla@globex.test>", "=?utf-8?q?[Globex]_=E2=80=93_Design_=E2=80=93_Neues_Logo?=",
                   "", 3)
    html.clear_content()
    html.set_content("<p>We need a <b>new logo</b> for the spring campaign.</p><script>alert(1)</script>",
                     subtype="html")
    mails = [
        brief,
        message("Bob Stone <bob@acme.test>", "Re: [Acme] | Tech | Checkout page broken, site down!",
                "Customers cannot pay since this morning.", 2),
        html,
        message("Dana <dana@globex.test>", "[Globex] - Strategy - Q3 planning call [P1]",
                "Can we talk next week?", 4),
        message("Bob Stone <bob@acme.test>", "quick question about our invoice",
                "Hello, who do I talk to about the invoice?", 5),
        message("Eve <eve@unknown.test>", "[Initech] - Content - Press release",
                "Please write our press release.", 6),
        message("Bob Stone <bob@acme.test>", "Automatic reply: [Acme] - Content - x",
                "I am out of the office.", 7, Auto_Submitted="auto-replied"),
    ]
    raw = [m.as_bytes() for m in mails]
    return raw + [raw[0]]  # the same Message-ID delivered twice becomes one task


def write_config(directory: Path, imap_port: int, smtp_port: int, mode: str = "poll", extra: str = "") -> Path:
    """The demo agency's config; ``mode`` idle or poll, ``extra`` more tables appended
    (``bench.day_of_mail`` adds a client and a developer)."""
    config = directory / "config.toml"
    config.write_text(f"""\
[mailbox]
host = "127.0.0.1"
port = {imap_port}
tls = "none"
username = "{INTAKE}"
password_env = "DISPATCHD_DEMO_PASSWORD"
mode = "{mode}"
start_after = "2000-01-01"   # the sample mail is delivered before the first start: dispatch it all

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
from = "Demo Agency <{INTAKE}>"

[database]
url = "sqlite:///dispatchd.db"

[paths]
rules = "{default_dir('rules')}"
templates = "{default_dir('templates')}"

[calendar]
timezone = "Europe/London"
hours = "09:00-17:30"
holidays_country = "GB"

[logging]
format = "console"
level = "warning"

[[clients]]
name = "Acme"
senders = ["*@acme.test"]
aliases = ["ACME Corp"]

[[clients]]
name = "Globex"
senders = ["*@globex.test"]

[[staff]]
name = "Ana"
email = "ana@agency.test"
queues = ["content"]

[[staff]]
name = "Ben"
email = "ben@agency.test"
role = "lead"
queues = ["design", "dev"]

[[staff]]
name = "Morgan"
email = "morgan@agency.test"
role = "manager"
queues = ["triage", "strategy"]
{extra}""")
    return config


def _staff_reply(dovecot: Dovecot, smtp: SmtpCapture, config: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Ana answers her 'new task' email with "start": the task moves and the client hears of it."""
    notice = next(email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp.messages
                  if "ana@agency.test" in m.rcpt_tos)
    answer = EmailMessage()
    answer["From"], answer["To"] = "Ana <ana@agency.test>", notice["Reply-To"]
    answer["Subject"], answer["In-Reply-To"] = f"Re: {notice['Subject']}", notice["Message-ID"]
    answer["Message-ID"] = "<demo-reply@agency.test>"
    answer.set_content("start\n\nOn it!\n\nOn Thu, Demo Agency wrote:\n> New task #1 ...")
    before = len(smtp.messages)
    dovecot.append(INTAKE, [answer.as_bytes()])
    print(f"\n== Ana replies \"start\" to {notice['Reply-To']} (a signed reply address); run --once again")
    cli(["run", "--once", "--config", str(config)])
    for received in smtp.messages[before:]:
        parsed = email.message_from_bytes(received.data, policy=email.policy.default)
        print(f"   to {', '.join(received.rcpt_tos):<22} {parsed['Subject']}")
    print()
    cli(["show", "1", "--config", str(config)])


def run_demo(keep: bool = False) -> int:
    from dispatchd.cli import main as cli

    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="dispatchd-demo-"))
    os.environ["DISPATCHD_DEMO_PASSWORD"] = PASSWORD
    try:
        with Dovecot() as dovecot, SmtpCapture() as smtp:
            config = write_config(directory, dovecot.port, smtp.port)
            requests = sample_requests()
            dovecot.append(INTAKE, requests)
            print(f"== {len(requests)} emails delivered to {INTAKE} (Dovecot on 127.0.0.1:{dovecot.port})")
            print("== dispatchd run --once")
            code = cli(["run", "--once", "--config", str(config)])
            print(f"   exit code {code}; {dovecot.count(INTAKE)} left in INBOX, "
                  f"{dovecot.count(INTAKE, 'Processed')} in Processed\n")
            print("== dispatchd queues")
            cli(["queues", "--config", str(config)])
            print("\n== dispatchd tasks")
            cli(["tasks", "--config", str(config)])
            print(f"\n== {len(smtp.messages)} emails received by the SMTP capture (127.0.0.1:{smtp.port})")
            for received in smtp.messages:
                parsed = email.message_from_bytes(received.data, policy=email.policy.default)
                print(f"   to {', '.join(received.rcpt_tos):<22} {parsed['Subject']}")
            _staff_reply(dovecot, smtp, config, cli)
            first = next((m for m in smtp.messages if b"Received:" in m.data), None)
            if first is not None:
                parsed = email.message_from_bytes(first.data, policy=email.policy.default)
                body = parsed.get_body(("plain",))
                print("\n== one confirmation, as the client sees it")
                for name in ("From", "To", "Subject", "Message-ID", "In-Reply-To", "Auto-Submitted", "Reply-To"):
                    print(f"   {name}: {parsed[name]}")
                print("\n" + "\n".join("   " + line for line in (body.get_content() if body else "").splitlines()))
        print(f"\n== demo finished in {time.monotonic() - started:.1f}s; files in {directory}"
              + ("" if keep else " (removed)"))
        return 0 if code == 0 else code
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_demo("--keep" in sys.argv))
