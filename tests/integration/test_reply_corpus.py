"""Replies as people write them, end to end: each case in tests/data/replies/*.toml answers a real
email dispatchd sent (Outlook, Gmail, Apple Mail, Thunderbird; EN/DE/FR/ES; plain, HTML-only,
multipart; top- and bottom-posted; signatures; accidental sends) and says what must follow:
the task's status, what is stored, who is told, whether a question is asked.

One deployment serves the whole corpus: a task per case, brought to the case's status by
batches of real replies (assign, start, review, approve, deliver), then every case's reply in
one run, then the follow-ups ("yes") in another. A case's format:

    [[case]]
    id = "outlook-desktop-greeting-start"   # unique
    by = "ana"                # ana (producer) | ben (lead) | client (the task's requester)
    status = "queued"         # where the task is when the reply arrives
    subject = "Re: {subject}" # optional
    body = "..."              # the text part; placeholders below
    html = "..."              # optional HTML part (alone when body is absent: HTML-only)
    to = "reply-to"           # or "intake": to the plain address, with a DKIM pass
    thread = true             # In-Reply-To/References to the answered mail
    then = "Yes"              # optional follow-up reply to the mail the reply caused
    then_answers = "first"    # ... or to the first mail that person got about the task
    [case.expect]             # status, assignee, priority, stored (a substring of a comment, ""
                              # for none), told (who gets mail: ana, ben, client; exact),
                              # question (the command asked about), subject (of the sender's answer)
    [case.after]              # the same, after the follow-up

Placeholders: {subject} {from} {date} {original} {quoted} {original_html} of the answered email.
"""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, localtime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from dispatchd.devservers import PASSWORD, SmtpCapture
from dispatchd.store.tables import Task, TaskEvent
from tests.conftest import write_config
from tests.integration.conftest import Deployment, _ids, make_mail

pytestmark = pytest.mark.integration
CORPUS = Path(__file__).resolve().parent.parent / "data" / "replies"
LADDER = ("queued", "in_progress", "in_review", "ready_for_delivery", "delivered")
STEPS = (("ana", "start"), ("ana", "review"), ("ben", "approve"), ("ben", "deliver"))
STAFF = {"ana": "ana@agency.test", "ben": "ben@agency.test", "morgan": "morgan@agency.test"}
DKIM = "mx.agency.test; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"


def load_cases() -> list[dict[str, Any]]:
    cases = [case for path in sorted(CORPUS.glob("*.toml")) for case in tomllib.loads(path.read_text())["case"]]
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), "case ids are unique"
    return cases


CASES = load_cases()


@dataclass
class Outcome:
    """What one case's task looks like after a round, and the mail the round caused."""

    task: Task
    events: list[TaskEvent]
    mail: list[EmailMessage] = field(default_factory=list)
    recipients: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, dovecot: Any) -> Iterator[dict[str, tuple[Outcome, Outcome | None]]]:
    smtp = SmtpCapture().start()
    _parsed.clear()  # keyed by id(): only this sink's messages, which it keeps alive
    try:
        with pytest.MonkeyPatch.context() as patch:  # the autouse password fixture is per test
            patch.setenv("DISPATCHD_TEST_PASSWORD", PASSWORD)
            path = tmp_path_factory.mktemp("corpus")
            user = f"requests{next(_ids)}@agency.test"
            write_config(path, dovecot.port, smtp.port, mailbox=user)
            yield run_corpus(Deployment(path, dovecot, smtp, user))
    finally:
        smtp.stop()


def client_of(number: int) -> str:
    return f"contact{number}@acme.test"


def run_corpus(d: Deployment) -> dict[str, tuple[Outcome, Outcome | None]]:
    ids = {case["id"]: number for number, case in enumerate(CASES, start=1)}
    round_trip(d, [make_mail(f"[Acme] - Content - Case {n}: {case['id']}", sender=client_of(n))
                   for n, case in enumerate(CASES, start=1)])
    assert [t.status for t in d.tasks()] == ["queued"] * len(CASES)
    # Ben hands every task to Ana, then the ladder, one batch of replies per step.
    round_trip(d, [staff_reply(d, n, "ben", "assign Ana") for n in ids.values()])
    for rung, (who, command) in enumerate(STEPS, start=1):
        round_trip(d, [staff_reply(d, ids[c["id"]], who, command) for c in CASES
                       if LADDER.index(c["status"]) >= rung])
    tasks = {t.id: t for t in d.tasks()}
    for case in CASES:
        assert tasks[ids[case["id"]]].status == case["status"], f"{case['id']}: set-up"
    first = round_trip(d, [compose_reply(d, ids[c["id"]], c) for c in CASES])
    outcomes = {case["id"]: outcome(d, ids[case["id"]], first) for case in CASES}
    follow = [c for c in CASES if "then" in c]
    second = round_trip(d, [follow_up(d, ids[c["id"]], c) for c in follow]) if follow else 0
    return {case["id"]: (outcomes[case["id"]], outcome(d, ids[case["id"]], second) if "then" in case else None)
            for case in CASES}


def round_trip(d: Deployment, messages: list[bytes]) -> int:
    """Deliver ``messages``, run once; the index of the first mail this round sent."""
    start = len(d.smtp.messages)
    d.deliver(*messages)
    assert d.run_once() == 0
    return start


_parsed: dict[int, EmailMessage] = {}


def received(d: Deployment) -> list[tuple[EmailMessage, Any]]:
    """Every mail the sink holds, parsed once (the corpus reads the sink hundreds of times)."""
    found = []
    for raw in list(d.smtp.messages):
        if id(raw) not in _parsed:
            _parsed[id(raw)] = email.message_from_bytes(raw.data, policy=email.policy.default)  # type: ignore[assignment]
        found.append((_parsed[id(raw)], raw))
    return found


def about(d: Deployment, number: int, address: str) -> list[EmailMessage]:
    """What ``address`` received about task ``number``, oldest first."""
    return [m for m, raw in received(d) if address in raw.rcpt_tos and f"[#{number}]" in str(m["Subject"])]


def address_of(who: str, number: int) -> str:
    return client_of(number) if who == "client" else STAFF[who]


def staff_reply(d: Deployment, number: int, who: str, body: str) -> bytes:
    answered = about(d, number, STAFF[who])[-1]
    return make_mail(f"Re: {answered['Subject']}", sender=STAFF[who], body=body, to=answered["Reply-To"],
                     headers={"In-Reply-To": answered["Message-ID"], "References": answered["Message-ID"]})


def compose_reply(d: Deployment, number: int, case: dict[str, Any]) -> bytes:
    sender = address_of(case["by"], number)
    answered = about(d, number, sender)[-1]
    return build(answered, sender, case, d.user)


def follow_up(d: Deployment, number: int, case: dict[str, Any]) -> bytes:
    sender = address_of(case["by"], number)
    answered = about(d, number, sender)[0 if case.get("then_answers") == "first" else -1]
    return build(answered, sender, {"body": case["then"] + "\n\n{quoted}"}, d.user)


def build(answered: EmailMessage, sender: str, case: dict[str, Any], intake: str) -> bytes:
    values = placeholders(answered)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = intake if case.get("to") == "intake" else answered["Reply-To"]
    message["Subject"] = fill(case.get("subject", "Re: {subject}"), values)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Date"] = format_datetime(localtime())
    if case.get("thread", True):
        message["In-Reply-To"] = answered["Message-ID"]
        message["References"] = answered["Message-ID"]
    if case.get("to") == "intake":
        message["Authentication-Results"] = DKIM.format(domain=sender.rpartition("@")[2])
    body, markup = case.get("body"), case.get("html")
    if body is not None:
        message.set_content(fill(body, values))
        if markup is not None:
            message.add_alternative(fill(markup, values), subtype="html")
    else:
        message.set_content(fill(markup or "", values), subtype="html")
    return message.as_bytes()


def placeholders(answered: EmailMessage) -> dict[str, str]:
    text = answered.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    part = answered.get_body(("html",))
    original_html = part.get_content() if part is not None else f"<pre>{htmllib.escape(text)}</pre>"  # type: ignore[union-attr]
    return {"subject": str(answered["Subject"]), "from": str(answered["From"]), "date": "Thu, 3 Dec 2026 10:00",
            "original": text.strip(), "quoted": "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines()),
            "original_html": original_html}


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def outcome(d: Deployment, number: int, since: int) -> Outcome:
    with d.session() as session:
        task = session.get(Task, number)
        assert task is not None
        events = list(session.exec(select(TaskEvent).where(TaskEvent.task_id == number)).all())
    new = [(m, raw) for m, raw in received(d)[since:] if f"[#{number}]" in str(m["Subject"])]
    recipients: dict[str, list[str]] = {}
    for message, raw in new:
        for address in raw.rcpt_tos:
            who = next((name for name, staff in STAFF.items() if staff == address), "client")
            recipients.setdefault(who, []).append(str(message["Subject"]))
    return Outcome(task, events, [m for m, _ in new], recipients)


def check(case_id: str, result: Outcome, expect: dict[str, Any]) -> None:
    task = result.task
    if "status" in expect:
        assert task.status == expect["status"], f"{case_id}: status"
    for name in ("assignee", "priority"):
        if name in expect:
            wanted = STAFF.get(expect[name], expect[name])
            assert getattr(task, name) == wanted, f"{case_id}: {name}"
    comments = [e.detail for e in result.events if e.kind in ("comment", "unverified_comment")]
    if "stored" in expect:
        if expect["stored"]:
            assert any(expect["stored"] in c for c in comments), f"{case_id}: stored {comments}"
        else:
            assert not [c for c in comments if c != "(empty reply)"], f"{case_id}: nothing stored {comments}"
    if "told" in expect:
        assert sorted(result.recipients) == sorted(expect["told"]), f"{case_id}: told {result.recipients}"
    if "question" in expect:
        asked = [m for m in result.mail if "Did you mean" in str(m["Subject"])]
        assert asked and f'"{expect["question"]}"' in str(asked[0]["Subject"]), f"{case_id}: question"
    elif "told" in expect:
        assert not any("Did you mean" in str(m["Subject"]) for m in result.mail), f"{case_id}: no question"
    if "subject" in expect:
        answer = [s for who, subjects in result.recipients.items() for s in subjects if expect["subject"] in s]
        assert answer, f"{case_id}: answer subject {result.recipients}"
    if "not_in_answer" in expect:
        for message in result.mail:
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert expect["not_in_answer"] not in text, f"{case_id}: {expect['not_in_answer']!r} in {message['Subject']}"


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_reply(corpus: dict[str, tuple[Outcome, Outcome | None]], case: dict[str, Any]) -> None:
    first, second = corpus[case["id"]]
    check(case["id"], first, case["expect"])
    if "after" in case:
        assert second is not None
        check(case["id"] + " (after the follow-up)", second, case["after"])


def test_the_corpus_is_broad() -> None:
    assert len(CASES) >= 60
    assert {c["by"] for c in CASES} == {"ana", "ben", "client"}
    assert {c.get("lang", "en") for c in CASES} >= {"en", "de", "fr", "es"}
    assert any("html" in c and "body" not in c for c in CASES) and any("html" in c and "body" in c for c in CASES)
