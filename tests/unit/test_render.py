from datetime import datetime, timezone
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from dispatchd.mail.compose import OutboundMail, compose
from dispatchd.render import TEMPLATE_NAMES, Renderer
from dispatchd.store.tables import Task

PROJECT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 10, tzinfo=timezone.utc)


def sample_task(**overrides: object) -> Task:
    values: dict[str, object] = dict(
        id=42, client="Acme", type="Content", queue="content", priority="P2", status="queued",
        description="Blog post <script>alert(1)</script>", subject="s", sender="bob@acme.test", sla="5 business days",
        due_at=NOW, due_explanation="due Thu 3 Dec 10:00: 5 business days", message_id="<m@acme.test>",
        created_at=NOW, updated_at=NOW)
    values.update(overrides)
    return Task(**values)  # type: ignore[arg-type]


def context(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = dict(
        task=sample_task(), sender_name="Bob", organisation="Agency", intake_address="requests@agency.test",
        due_label="Thu 3 Dec 2026", priority_label="normal", attachments=["brief.pdf"], reasons=["type Content"],
        problems=["subject: no client"], types=["Content", "Design"], example_subject="[Acme] - Content - x",
        original_subject="hello", body="Body text", triage_queue="triage", status_label="in progress",
        source_label="queued", actor="ana@agency.test", detail="", allowed=("review", "cancel"), author="bob@acme.test",
        comment="Also pillar pages", results=[("start", True, "queued -> in_progress")], applied=True,
        subject_hint="Re: x", reason="all members busy", meant_for=None, clock="resolution", level="warning", used="81%",
        previous="ana@agency.test", successor="dina@agency.test", failed_to="bob@acme.test",
        failed_subject="[#42] Received", explanation="bob@acme.test does not exist (5.1.1)", size_mb="31.0",
        limit_mb="25", sender="robot@x.test", unverified=None, stranger=False, client_view=False,
        queue_label="Content", assignee_label="Ana",
        client_claim="claims to be Acme (sender not on Acme's list)",
        due_reasons="5 business days", headline="Started", moved=True, changes=["assigned to Ana"], now_yours=True,
        command="start", meaning="", followers=["carol@acme.test"], added_by="bob@acme.test",
        follower=False, message="", signed_by="Ana", files=[],
        lines=["Tuesday 8 December, 15:00–15:45", "Wednesday 9 December, 10:00–10:45"], minutes=45,
        zone_label="Europe/Berlin (CET, UTC+01:00)", note="", example="Tuesday 15:00",
        when="Tuesday 8 December, 15:00–15:45", summary="Call about request #42", link="https://meet.test/42",
        people=["Morgan", "bob@acme.test"], cancelled=False, updated=False, rescheduling=False, for_client=True)
    values.update(_digest_values())
    values.update(overrides)
    return values


def _digest_values() -> dict[str, object]:
    from dispatchd.config import Staff

    task = sample_task()
    report = {"generated_at": "2026-11-26T08:00:00", "period_days": 30, "requests": 10, "triaged": 1,
              "parked_mail": 2, "bounced_mail": 1, "quarantined": 0, "prune_runs": 1, "pruned_bytes": 2500000,
              "triage_share": 0.1, "triage_colour": "red", "suggestions": ["add alias"],
              "skill_gaps": [], "over_capacity": ["Ben: 5 active tasks, WIP limit 3"],
              "queues": [{"queue": "content", "colour": "green", "depth": 1, "avg_wait_days": 0.5, "breach_rate": 0.0,
                          "colours": {"depth": "green", "avg_wait_days": "green", "breach_rate": "green"},
                          "forecast": [{"task_id": 42, "late_by_hours": 3.0}]}]}
    return dict(client="Acme", delivered=[task], in_progress=[task], coming=[], reviewing=[task], contact_name="Bob",
                period="2026-W48",
                due=lambda t: "Thu 3 Dec", person=Staff("Ana", "ana@agency.test"), mine=[(task, ("start", "cancel"))],
                free=[task], report=report, first_name="Ana", link="https://desk.agency.test/staff/signin/t0ken", minutes=15)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_renders_text_and_html(name: str) -> None:
    rendered = Renderer(PROJECT / "templates").render(name, **context())
    assert "\n" not in rendered.subject
    if name in ("client-digest", "staff-digest", "owner-health"):
        assert "#42" in rendered.text and rendered.html
    elif name == "staff-signin":
        assert "https://desk.agency.test/staff/signin/t0ken" in rendered.text and "15 minutes" in rendered.text
    elif name == "client-link":
        assert rendered.subject == "Your link to your requests"
    elif name in ("reply-refused", "client-too-large", "owner-loop"):
        assert "42" not in rendered.subject + rendered.text + (rendered.html or ""), "strangers learn nothing"
    else:
        assert rendered.subject.startswith("[#42] ")
    assert rendered.text.strip() and rendered.html and "<html>" in rendered.html


def test_confirmation_says_what_the_issue_asks() -> None:
    rendered = Renderer(PROJECT / "templates").render("client-received", **context())
    assert rendered.subject == "[#42] Received: Blog post <script>alert(1)</script>"
    for needle in ("Team:      Content", "Priority:  P2 (normal)", "Expected:  Thu 3 Dec 2026", "keep [#42]"):
        assert needle in rendered.text


@pytest.mark.parametrize(("type_name", "said"), [("Design", "as a Design request"), ("Urgent", "as an Urgent request")])
def test_the_confirmation_says_how_the_model_filed_it(type_name: str, said: str) -> None:
    rendered = Renderer(PROJECT / "templates").render("client-received", **context(classified_as=type_name))
    assert f"We filed this {said}" in rendered.text and f"We filed this {said.replace(type_name, f'<strong>{type_name}</strong>')}" in (rendered.html or "")


def test_html_is_escaped_text_is_not() -> None:
    rendered = Renderer(PROJECT / "templates").render("client-received", **context())
    assert "<script>" not in (rendered.html or "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (rendered.html or "")
    assert "<script>alert(1)</script>" in rendered.text


def test_misspelt_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.txt.j2").write_text("{% block subject %}{{ tsak.id }}{% endblock %}{% block body %}{% endblock %}")
    with pytest.raises(UndefinedError):
        Renderer(tmp_path).render("x", task=sample_task())


def test_compose_threads_and_marks_auto_reply() -> None:
    mail = OutboundMail(kind="client-received", to=("bob@acme.test",), subject="[#42] Received: x\r\nBcc: evil@x.test",
                        text="hello", html="<p>hello</p>", task_id=42, in_reply_to="<m@acme.test>",
                        references=("<a@acme.test>", "<m@acme.test>"), auto_submitted="auto-replied")
    raw = compose(mail, "Agency <requests@agency.test>", "requests@agency.test", "<dispatchd.42.ab@agency.test>", NOW)
    parsed = message_from_bytes(raw, policy=default)
    assert parsed["Subject"] == "[#42] Received: x Bcc: evil@x.test"
    assert parsed["Bcc"] is None
    assert parsed["Message-ID"] == "<dispatchd.42.ab@agency.test>"
    assert parsed["In-Reply-To"] == "<m@acme.test>"
    assert parsed["References"] == "<a@acme.test> <m@acme.test>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Reply-To"] == "requests@agency.test"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed.get_body(("html",)) is not None and parsed.get_body(("plain",)) is not None


def test_compose_writes_valid_mime_whatever_the_text() -> None:
    text = "Zoë wrote:\r\n= sign, trailing space \nlong " + "x" * 200 + "\n.\nFrom the start"
    mail = OutboundMail(kind="k", to=("Zoë Ünal <zoe@acme.test>",), subject="Ünïcode " + "word " * 300, text=text)
    raw = compose(mail, "Agency <requests@agency.test>", "requests@agency.test", "<dispatchd.1.ab@agency.test>", NOW)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=default)
    assert not parsed.defects and parsed.get_content_type() == "text/plain"
    assert parsed.get_content() == text.replace("\r\n", "\n").replace("\n", "\r\n")
    assert parsed["To"].addresses[0].display_name == "Zoë Ünal"
    assert parsed["Subject"] == "Ünïcode " + " ".join(["word"] * 300)
    with_html = compose(OutboundMail(kind="k", to=("a@acme.test",), subject="s", text="plain", html="<p>é</p>"),
                        "requests@agency.test", "requests@agency.test", "<dispatchd.1.cd@agency.test>", NOW)
    parts = message_from_bytes(with_html, policy=default)
    assert not parts.defects and [p.get_content_type() for p in parts.iter_parts()] == ["text/plain", "text/html"]
    assert parts.get_body(("html",)).get_content().strip() == "<p>é</p>"


def test_format_help_to_a_stranger_names_no_task() -> None:
    rendered = Renderer(PROJECT / "templates").render(
        "client-format-help", **context(task=None, stranger=True, example_subject="[Your company] - Content - x"))
    assert "42" not in rendered.subject + rendered.text + (rendered.html or ""), "strangers learn no task number"
    assert rendered.subject == "Please write from your usual address: hello" and "[Your company] - Content - x" in rendered.text


@pytest.mark.parametrize("name", ["client-status", "client-sla-late", "reply-results"])
def test_clients_read_first_names_and_team_names(name: str) -> None:
    task = sample_task(queue="b/dev-internal", assignee="ana.lopez@agency.test")
    client = Renderer(PROJECT / "templates").render(name, **context(task=task, client_view=True,
                                                                    queue_label="Web team", assignee_label="Ana"))
    for text in (client.text, client.html or ""):
        assert "agency.test" not in text and "dev-internal" not in text
    assert "Team:      Web team" in client.text and "With:      Ana" in client.text
    staff = Renderer(PROJECT / "templates").render(name, **context(task=task))
    assert "Queue:     b/dev-internal" in staff.text and "ana.lopez@agency.test" in staff.text


def test_staff_new_task_keeps_one_field_a_line() -> None:
    rendered = Renderer(PROJECT / "templates").render("staff-new-task", **context(due_label="by end of Thu 3 Dec"))
    assert "  Client:    Acme (claims to be Acme (sender not on Acme's list))\n  Type:      Content\n" in rendered.text
    assert "  Due:       by end of Thu 3 Dec (5 business days)\n  Files:" in rendered.text


def test_a_follower_reads_about_a_request_they_follow() -> None:
    renderer = Renderer(PROJECT / "templates")
    assert "Your request #42 is now in progress." in renderer.render("client-status", **context()).text
    followed = renderer.render("client-status", **context(follower=True)).text
    assert "Request #42, which you follow, is now in progress." in followed and "Your request" not in followed


@pytest.mark.parametrize("name", [n for n in TEMPLATE_NAMES if n.startswith(("client-", "reply-")) and n != "client-link"])
def test_client_mails_carry_the_link_to_all_their_requests(name: str) -> None:
    url = "https://dispatch.example.com/c/abc.def"
    rendered = Renderer(PROJECT / "templates").render(name, **context(portal_url=url))
    assert f"All your requests: {url}" in rendered.text
    assert f"\n\nAll your requests: {url}" in rendered.text and "\n\n\nAll your requests" not in rendered.text, \
        "one blank line before the link, not two"
    assert f'<a href="{url}">' in (rendered.html or "")
    without = Renderer(PROJECT / "templates").render(name, **context(portal_url=""))
    assert "All your requests" not in without.text + (without.html or "")


def test_work_sent_to_triage_tells_the_reviewer_why_and_what_to_do() -> None:
    rendered = Renderer(PROJECT / "templates").render("staff-capacity", **context(
        meant_for="dev", reason="no one in dev has 'shopify'"))
    assert rendered.subject.startswith("[#42] Nobody in dev can take it, sent to triage")
    assert "no one in dev has 'shopify'" in rendered.text and '"queue dev"' in rendered.text
    assert rendered.html is not None and "<code>queue dev</code>" in rendered.html


def test_a_new_renderer_compiles_again_only_what_changed_on_disk(tmp_path: Path) -> None:
    """Renderers of one directory share its compiled templates until a file is edited, added
    or replaced: a reload then renders the new text, and an unchanged one compiles nothing."""
    (tmp_path / "note.txt.j2").write_text("{% block subject %}Old{% endblock %}{% block body %}b{% endblock %}")
    first = Renderer(tmp_path)
    assert first.render("note").subject == "Old"
    assert Renderer(tmp_path).env is first.env
    (tmp_path / "note.txt.j2").write_text("{% block subject %}New!{% endblock %}{% block body %}b{% endblock %}")
    edited = Renderer(tmp_path)
    assert edited.env is not first.env and edited.render("note").subject == "New!"
    (tmp_path / "note.html.j2").write_text("<p>{{ subject }}</p>")
    assert Renderer(tmp_path).render("note").html == "<p>New!</p>"
    assert first.render("note").subject == "Old", "a running renderer keeps what it loaded until the reload"
