"""End to end through real Dovecot and aiosmtpd: APPEND mail, run dispatchd, read DB and SMTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatchd.store.blobs import BlobStore
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("type_label, queue, priority, sla", [
    ("Content", "content", "P2", "5 business days"),
    ("Design", "design", "P2", "3 business days"),
    ("Technical", "dev", "P2", "2 business days"),
    ("Dev", "dev", "P2", "2 business days"),
    ("Bug", "dev", "P2", "2 business days"),
    ("Strategy", "strategy", "P2", "48 hours"),
    ("Consultation", "strategy", "P2", "48 hours"),
    ("Revision", "revision", "P1", "2 business days"),
    ("Urgent", "triage", "P0", "4 hours"),
])
def test_request_per_default_type(deployment: Deployment, type_label: str, queue: str, priority: str,
                                  sla: str) -> None:
    deployment.deliver(make_mail(f"[Acme] - {type_label} - Something to do", message_id="<req@client.test>"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.client, task.queue, task.priority, task.sla) == ("Acme", queue, priority, sla)
    assert task.status == "queued" and task.due_at is not None and task.message_id == "<req@client.test>"
    [confirmation] = deployment.received_by("bob@acme.test")
    assert confirmation["Subject"] == f"[#{task.id}] Received: Something to do"
    assert confirmation["In-Reply-To"] == "<req@client.test>"
    assert confirmation["Auto-Submitted"] == "auto-replied"
    local, _, domain = deployment.user.partition("@")
    assert confirmation["Reply-To"].startswith(f"{local}+t{task.id}.") and confirmation["Reply-To"].endswith(domain)
    body = confirmation.get_body(("plain",)).get_content()
    team = {"content": "Content", "design": "Design", "dev": "Technical", "strategy": "Strategy",
            "revision": "Revision", "triage": "our team"}[queue]  # clients never read internal queue names
    assert f"Team:      {team}" in body and f"Priority:  {priority}" in body and "Expected:" in body
    staff = [m for m in deployment.received() if "bob@acme.test" not in m["To"]]
    assert staff and all(m["Subject"].startswith(f"[#{task.id}] New {priority} in {queue}") for m in staff)
    assert all(m["Auto-Submitted"] == "auto-generated" for m in staff)
    assert deployment.folder_count("INBOX") == 0 and deployment.folder_count("Processed") == 1


def test_queue_owner_is_notified(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post on topic clusters"))
    deployment.run_once()
    assert not deployment.received_by("ana@agency.test"), "the lead owns the queue, not every member"
    [notice] = deployment.received_by("ben@agency.test")
    assert "Blog post on topic clusters" in notice["Subject"]
    assert "type Content: queue content" in notice.get_body(("plain",)).get_content()


def test_malformed_subject_goes_to_triage_with_help(deployment: Deployment) -> None:
    deployment.deliver(make_mail("quick question about our invoice", message_id="<bad@client.test>"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert (task.queue, task.status, task.client) == ("triage", "received", "Acme")
    [reply] = deployment.received_by("bob@acme.test")
    assert reply["Subject"] == f"[#{task.id}] Received (a tip for next time): quick question about our invoice"
    body = reply.get_body(("plain",)).get_content()
    assert "[Client] - Type - Short description" in body and "[Acme] - Type - quick question" in body
    assert "subject: the subject does not start with the client name" in body
    assert deployment.received_by("morgan@agency.test"), "the triage owner hears about it"


def test_unknown_sender_goes_to_triage(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Initech] - Content - Press release", sender="eve@unknown.test"))
    deployment.run_once()
    [task] = deployment.tasks()
    assert task.queue == "triage" and task.client is None and task.type == "Content"
    assert not deployment.received_by("eve@unknown.test"), "no format help to strangers by default"
    [notice] = deployment.received_by("morgan@agency.test")
    assert "eve@unknown.test is not a known client address" in notice.get_body(("plain",)).get_content()


def test_unknown_type_goes_to_triage(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Poetry - An ode"))
    deployment.run_once()
    [task] = deployment.tasks()
    assert task.queue == "triage" and task.type is None
    assert "'Poetry' is not a request type" in deployment.received_by("bob@acme.test")[0].get_body(("plain",)).get_content()


@pytest.mark.config(extra="[intake]\nreply_to_unknown_senders = false\n")
def test_unknown_sender_reply_can_be_turned_off(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Initech] - Content - Press release", sender="eve@unknown.test"))
    deployment.run_once()
    assert deployment.tasks()[0].queue == "triage"
    assert not deployment.received_by("eve@unknown.test")


def test_encoded_word_subject(deployment: Deployment) -> None:
    raw = make_mail("x", sender="Jürgen <juergen@globex.test>").replace(
        b"Subject: x", b"Subject: =?utf-8?B?W0dsb2JleF0g4oCTIERlc2lnbiDigJMgTmV1ZXMgTG9nbyBmw7xyIE3DvG5jaGVu?=")
    deployment.deliver(raw)
    deployment.run_once()
    [task] = deployment.tasks()
    assert (task.client, task.type, task.description) == ("Globex", "Design", "Neues Logo für München")
    [reply] = deployment.received_by("juergen@globex.test")
    assert reply["Subject"] == f"[#{task.id}] Received: Neues Logo für München"


def test_html_only_body(deployment: Deployment) -> None:
    html = "<p>We need a <b>spring</b> banner.</p><script>alert('x')</script>"
    deployment.deliver(make_mail("[Globex] - Design - Banner", sender="carla@globex.test", html=html))
    deployment.run_once()
    [task] = deployment.tasks()
    [notice] = deployment.received_by("ben@agency.test")
    text = notice.get_body(("plain",)).get_content()
    assert "We need a spring banner." in text and "alert" not in text
    assert "<script>" not in notice.get_body(("html",)).get_content()


def test_attachment_is_stored_and_recorded(deployment: Deployment) -> None:
    payload = b"%PDF-1.4 brief " * 100
    deployment.deliver(make_mail("[Acme] - Content - Brochure", attachments=(("brief.pdf", payload),)))
    deployment.run_once()
    [task] = deployment.tasks()
    assert deployment.cli("show", str(task.id), "--json") == 0
    from dispatchd.store.tables import Attachment
    from sqlmodel import select

    with deployment.session() as session:
        [attachment] = session.exec(select(Attachment)).all()
    assert (attachment.filename, attachment.size, attachment.task_id) == ("brief.pdf", len(payload), task.id)
    assert BlobStore(deployment.path / "data" / "blobs").get(attachment.sha256) == payload
    assert "brief.pdf" in deployment.received_by("bob@acme.test")[0].get_body(("plain",)).get_content()


def test_raw_eml_of_every_message_is_kept(deployment: Deployment) -> None:
    raw = make_mail("[Acme] - Content - Keep me")
    deployment.deliver(raw)
    deployment.run_once()
    [row] = deployment.inbound()
    stored = BlobStore(deployment.path / "data" / "blobs").get(row.raw_sha256)
    assert stored.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_same_message_id_twice_is_one_task(deployment: Deployment) -> None:
    raw = make_mail("[Acme] - Content - Once only", message_id="<same@client.test>")
    deployment.deliver(raw, raw)
    deployment.run_once()
    deployment.deliver(raw)
    deployment.run_once()
    assert len(deployment.tasks()) == 1
    assert [r.disposition for r in deployment.inbound()] == ["task", "duplicate", "duplicate"]
    assert len(deployment.received_by("bob@acme.test")) == 1


@pytest.mark.parametrize("headers, sender", [
    ({"Auto-Submitted": "auto-replied"}, "bob@acme.test"),
    ({"Precedence": "bulk"}, "bob@acme.test"),
    ({"List-Id": "<news.acme.test>"}, "bob@acme.test"),
    ({}, "MAILER-DAEMON@mx.acme.test"),
])
def test_machines_never_open_tasks_or_get_answers(deployment: Deployment, headers: dict[str, str], sender: str) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Out of office", sender=sender, headers=headers))
    deployment.run_once()
    assert deployment.tasks() == []
    assert deployment.smtp.messages == []
    [row] = deployment.inbound()
    assert row.disposition == "automated" and row.reason


def test_reply_to_confirmation_is_a_comment_not_a_new_task(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    deployment.run_once()
    [confirmation] = deployment.received_by("bob@acme.test")
    reply = make_mail(f"Re: {confirmation['Subject']}", body="Also mention pillar pages.\n\n"
                      "On Thu, 26 Nov 2026 at 10:00, Agency <x@agency.test> wrote:\n> old text\n",
                      headers={"In-Reply-To": confirmation["Message-ID"]})
    deployment.deliver(reply)
    deployment.run_once()
    [task] = deployment.tasks()
    with deployment.session() as session:
        from dispatchd.store.tables import TaskEvent
        from sqlmodel import select

        comments = session.exec(select(TaskEvent).where(TaskEvent.kind == "comment")).all()
    assert [c.detail for c in comments] == ["Also mention pillar pages."]
    assert len(deployment.received_by("bob@acme.test")) == 1, "no auto-reply to a reply"


def test_reply_matched_by_subject_tag_alone(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Blog post"))
    deployment.run_once()
    deployment.deliver(make_mail("AW: [#1] Received: Blog post", body="Danke!"))
    deployment.run_once()
    assert len(deployment.tasks()) == 1
    assert deployment.inbound()[-1].disposition == "reply"


def test_foreign_ticket_tag_is_kept(deployment: Deployment) -> None:
    deployment.deliver(make_mail("[Acme] - Content - Landing page [ABC-123]"))
    deployment.run_once()
    [confirmation] = deployment.received_by("bob@acme.test")
    assert confirmation["Subject"] == "[#1] Received: Landing page [ABC-123]"


def test_seen_flag_is_irrelevant_and_untouched(deployment: Deployment) -> None:
    client = deployment.dovecot.client(deployment.user)
    client.append("INBOX", make_mail("[Acme] - Content - Read in webmail"), flags=[b"\\Seen"])
    client.logout()
    deployment.run_once()
    assert len(deployment.tasks()) == 1


@pytest.mark.config(extra="")
def test_cli_views(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    deployment.deliver(make_mail("[Acme] - Content - One"), make_mail("hello"))
    deployment.run_once()
    capsys.readouterr()
    deployment.cli("tasks", "--json")
    tasks = json.loads(capsys.readouterr().out)
    required = {"id", "client", "type", "queue", "priority", "status", "description", "sender", "assignee",
                "due_at", "message_id"}
    assert all(required <= set(t) for t in tasks) and {t["queue"] for t in tasks} == {"content", "triage"}
    deployment.cli("tasks", "--queue", "triage", "--json")
    assert [t["queue"] for t in json.loads(capsys.readouterr().out)] == ["triage"]
    deployment.cli("queues", "--json")
    queues = {q["queue"]: q for q in json.loads(capsys.readouterr().out)}
    assert queues["content"]["open"] == 1 and queues["triage"]["by_status"] == {"received": 1}
    deployment.cli("show", "1", "--json")
    shown = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in shown["events"]] == ["received", "routed"]
    assert {m["direction"] for m in shown["messages"]} == {"in", "out"}
    assert deployment.cli("show", "99") == 1
    deployment.cli("tasks")
    assert "DESCRIPTION" in capsys.readouterr().out
    deployment.cli("outbox", "--json")
    assert {r["status"] for r in json.loads(capsys.readouterr().out)} == {"sent"}


def test_config_via_environment(deployment: Deployment, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from dispatchd.cli import main

    monkeypatch.setenv("DISPATCHD_CONFIG", str(deployment.config))
    assert main(["queues", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_broken_config_is_refused_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dispatchd.cli import main

    (tmp_path / "config.toml").write_text('[mailbox]\nhost = "x"\nusername = "r@x.test"\npassword = "p"\n')
    assert main(["run", "--once", "--config", str(tmp_path / "config.toml")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'config.toml'}:4: mailbox.password: inline secrets are refused" in err
    assert "smtp.host: is required" in err
