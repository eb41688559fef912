"""Bounces, oversize mail, loops between robots and between two dispatchd instances."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from dispatchd.devservers import SmtpCapture
from dispatchd.store.tables import TaskEvent
from tests.conftest import write_config
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


def dsn(to: str, status: str, original_message_id: str | None, action: str = "failed") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    original = (f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original_message_id}\r\n"
                f"Subject: original\r\n\r\n") if original_message_id else ""
    return (f"From: MAILER-DAEMON@mx.acme.test\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: <dsn-{status}-{abs(hash(original_message_id))}@mx.acme.test>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            f"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            f"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\n\r\n"
            f"Final-Recipient: rfc822; bob@acme.test\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; 550 no such user\r\n\r\n{original}--B--\r\n").encode()


def test_bounce_via_verp_marks_the_email_and_tells_the_owner(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    deployment.run_once()
    confirmation = next(r for r in deployment.smtp.messages if "bob@acme.test" in r.rcpt_tos)
    assert confirmation.mail_from.startswith(deployment.user.split("@")[0] + "+m")
    deployment.deliver(dsn(confirmation.mail_from, "5.1.1", None))
    deployment.run_once()
    rows = {r.kind: r for r in deployment.outbox()}
    assert rows["client-received"].status == "bounced" and "does not exist" in rows["client-received"].last_error
    assert [r.disposition for r in deployment.inbound()] == ["task", "bounce"]
    assert len(deployment.tasks()) == 1, "a bounce is never a request"
    [owner] = [m for m in deployment.received_by("ben@agency.test") if "Undelivered" in m["Subject"]]
    assert "bob@acme.test does not exist (5.1.1)" in owner.get_body(("plain",)).get_content()
    assert not [r for r in deployment.smtp.messages if "mailer-daemon@mx.acme.test" in r.rcpt_tos]
    with deployment.session() as session:
        assert session.exec(select(TaskEvent).where(TaskEvent.kind == "bounce")).one().actor == "mailer-daemon"


def test_bounce_matched_by_quoted_message_id(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    deployment.run_once()
    sent = next(r for r in deployment.outbox() if r.kind == "client-received")
    deployment.deliver(dsn(deployment.user, "5.7.1", sent.message_id))
    deployment.run_once()
    row = next(r for r in deployment.outbox() if r.kind == "client-received")
    assert row.status == "bounced" and "policy or as spam" in row.last_error


def test_delay_report_changes_nothing(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    deployment.run_once()
    sent = next(r for r in deployment.outbox() if r.kind == "client-received")
    deployment.deliver(dsn(deployment.user, "4.4.7", sent.message_id, action="delayed"))
    deployment.run_once()
    assert next(r for r in deployment.outbox() if r.kind == "client-received").status == "sent"
    assert not [m for m in deployment.received() if "Undelivered" in m["Subject"]]


def test_unknown_bounce_is_only_recorded(deployment: Deployment) -> None:
    deployment.deliver(dsn(deployment.user, "5.1.1", "<never-sent@x.test>"))
    deployment.run_once()
    assert deployment.tasks() == [] and deployment.smtp.messages == []
    assert deployment.inbound()[0].reason == "bounce for a message we did not send"


@pytest.mark.config(extra="[intake]\nmax_message_mb = 0.05\nmax_attachment_mb = 0.01\n")
def test_oversize_mail_is_answered_not_stored(deployment: Deployment) -> None:
    big = make_mail("[Acme] - Content - Huge", attachments=(("video.bin", b"v" * 80_000),))
    deployment.deliver(big)
    deployment.run_once()
    [row] = deployment.inbound()
    assert row.disposition == "rejected" and "the limit is 0 MB" in row.reason and row.size > 80_000
    from dispatchd.store.blobs import BlobStore

    kept = BlobStore(deployment.path / "data" / "blobs").get(row.raw_sha256)
    assert b"Subject:" in kept and len(kept) < 2000, "only the header is kept"
    assert deployment.tasks() == []
    [reply] = deployment.received_by("bob@acme.test")
    assert reply["Subject"] == "Too large to accept: [Acme] - Content - Huge"
    assert deployment.folder_count("Processed") == 1


@pytest.mark.config(extra="[intake]\nmax_attachment_mb = 0.01\n")
def test_oversize_attachment_is_named_not_stored(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Brief", attachments=(("big.pdf", b"p" * 20_000),
                                                                          ("small.txt", b"ok"))))
    deployment.run_once()
    body = deployment.received_by("bob@acme.test")[0].get_body(("plain",)).get_content()
    assert "small.txt" in body and "big.pdf (not stored: 0.0 MB is over the 0 MB limit)" in body.replace("\n", " ")


# Answering unknown senders is off by default; the breaker guards those who turn it on.
@pytest.mark.config(extra="[intake]\nmax_replies_per_sender_per_hour = 3\nreply_to_unknown_senders = true\n"
                          "format_help_per_day = 100\n")
def test_breaker_stops_answering_a_chatty_robot(deployment: Deployment) -> None:
    robot = [make_mail(f"ticket update {n}", sender="robot@helpdesk.test", body=f"Ticket {n} updated")
             for n in range(6)]
    deployment.deliver(*robot)
    deployment.run_once()
    dispositions = [r.disposition for r in deployment.inbound()]
    assert dispositions == ["triage"] * 3 + ["quarantined"] * 3
    assert len(deployment.received_by("robot@helpdesk.test")) == 3
    owner = [m for m in deployment.received_by("morgan@agency.test") if m["Subject"].startswith("Loop breaker")]
    assert len(owner) == 1, "the owner hears once, not once per message"
    assert deployment.folder_count("Quarantine") == 3


@pytest.mark.config(extra="[intake]\nsame_body_senders = 3\n")
def test_breaker_catches_a_responder_that_changes_address(deployment: Deployment) -> None:
    text = "Thank you for your message. I am currently out and will reply on my return."
    deployment.deliver(*[make_mail("Re: your request", sender=f"ooo{n}@bigcorp.test", body=text) for n in range(5)])
    deployment.run_once()
    assert [r.disposition for r in deployment.inbound()] == ["triage", "triage", "quarantined", "quarantined",
                                                            "quarantined"]


def _instance(root: Path, name: str, dovecot, smtp: SmtpCapture) -> Deployment:  # type: ignore[no-untyped-def]
    root.mkdir()
    user = f"requests@{name}.test"
    write_config(root, dovecot.port, smtp.port, mailbox=user)
    text = (root / "config.toml").read_text().replace('email = "', f'email = "{name}-')
    (root / "config.toml").write_text(text)
    return Deployment(root, dovecot, smtp, user)


@pytest.mark.parametrize("strip_headers", [False, True], ids=["headers-intact", "header-stripping-relay"])
def test_two_instances_mailing_each_other_do_not_loop(tmp_path: Path, dovecot, strip_headers: bool) -> None:  # type: ignore[no-untyped-def]
    with SmtpCapture() as smtp_a, SmtpCapture() as smtp_b:
        a = _instance(tmp_path / "a", "alpha", dovecot, smtp_a)
        b = _instance(tmp_path / "b", "beta", dovecot, smtp_b)
        # Someone forges a request to A "from" B's intake address: A answers B, B answers A ...
        a.deliver(make_mail("hello there", sender=b.user, to=a.user))
        delivered = 0
        for _ in range(12):
            for source, target in ((a, b), (b, a)):
                source.run_once()
                for received in source.smtp.messages[getattr(source, "_seen", 0):]:
                    if target.user in received.rcpt_tos:
                        data = received.data
                        if strip_headers:
                            data = b"\r\n".join(line for line in data.split(b"\r\n") if not line.lower().startswith(
                                (b"auto-submitted:", b"x-auto-response-suppress:", b"x-dispatchd-task:")))
                        target.deliver(data)
                        delivered += 1
                source._seen = len(source.smtp.messages)  # type: ignore[attr-defined]
        assert delivered <= 6, f"{delivered} emails went back and forth"
        last_round = len(a.smtp.messages) + len(b.smtp.messages)
        for side in (a, b):
            side.run_once()
        assert len(a.smtp.messages) + len(b.smtp.messages) == last_round, "the exchange has stopped"


@pytest.mark.config(extra="[intake]\nmax_message_mb = 0.5\n")
def test_whole_corpus_through_dovecot(deployment: Deployment) -> None:
    corpus = sorted((Path(__file__).resolve().parents[1] / "data" / "corpus").glob("*.eml"))
    deliverable = [p.read_bytes() for p in corpus if p.stat().st_size > 0]  # Dovecot refuses an empty APPEND
    deployment.deliver(*deliverable)
    assert deployment.run_once() in (0, 75)
    rows = deployment.inbound()
    assert len(rows) == len(deliverable), "every message on the server was recorded"
    assert deployment.folder_count("INBOX") == 0
    assert all(r.disposition != "quarantined" or r.reason.startswith("loop breaker") for r in rows)
    assert {r.status for r in deployment.outbox()} <= {"sent", "pending"}


def test_full_disk_leaves_the_message_on_the_server(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from dispatchd.store.blobs import BlobStore

    def disk_full(self, data):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    deployment.deliver(make_mail("[Acme] - Content - No room"))
    with monkeypatch.context() as patch:
        patch.setattr(BlobStore, "put", disk_full)
        assert deployment.run_once() == 3, "reported as an outage, not a crash"
    assert deployment.folder_count("INBOX") == 1 and deployment.inbound() == []
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == 1
