"""Every crafted email in tests/data/corpus through the whole pipeline, and generated ones through
parse -> route: never crash, never lose, always explain, never let input reach our headers."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.models import RawMail
from dispatchd.domain.routing import route
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.mail.parse import parse_mail
from dispatchd.rulebook import load_rulebook
from dispatchd.store.tables import InboundMessage, Outbox
from tests.conftest import write_config

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "corpus").glob("*.eml"))
PROJECT = Path(__file__).resolve().parents[2]
RULES = load_rulebook(PROJECT / "rules")
ALLOWED_HEADERS = {"from", "to", "subject", "date", "message-id", "reply-to", "in-reply-to", "references",
                   "auto-submitted", "x-auto-response-suppress", "x-dispatchd-task", "mime-version", "content-type",
                   "content-transfer-encoding"}


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 100


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> IntakeDeps:
    root = tmp_path_factory.mktemp("corpus")
    import os

    from dispatchd.devservers import PASSWORD

    os.environ.setdefault("DISPATCHD_TEST_PASSWORD", PASSWORD)
    config = load_config(write_config(root, mailbox="requests@agency.test",
                                      extra="[intake]\nmax_message_mb = 0.5\nmax_replies_per_sender_per_hour = 1000\n"))
    from datetime import datetime, timezone

    return build_deps(config, clock=FrozenClock(datetime(2026, 11, 24, 10, tzinfo=timezone.utc)))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_mail_is_processed_and_explained(path: Path, deps: IntakeDeps) -> None:
    raw = path.read_bytes()
    uid = CORPUS.index(path) + 1
    with Session(deps.engine) as session:
        before = max(session.exec(select(Outbox.id)).all() or [0])
    outcome = ingest(RawMail("INBOX", 1, uid, raw, len(raw)), deps)
    assert outcome.disposition.value in {"task", "triage", "automated", "duplicate", "bounce", "rejected", "reply"}, \
        outcome  # quarantine would mean a bug: every one of these has a defined outcome
    with Session(deps.engine) as session:
        row = session.exec(select(InboundMessage).where(InboundMessage.uid == uid)).one()
        assert row.disposition == outcome.disposition.value
        if outcome.disposition.value in ("automated", "rejected", "duplicate", "bounce"):
            assert row.reason, "always explain"
        outgoing = session.exec(select(Outbox).where(Outbox.id > before)).all()  # type: ignore[operator]
    if path.stem.startswith("size-big") or path.stem == "size-long-line-body":
        assert outcome.disposition.value == "rejected"
    for sent in outgoing:
        parsed = email.message_from_bytes(sent.raw, policy=email.policy.default)
        names = {name.lower() for name in parsed.keys()}
        assert names <= ALLOWED_HEADERS, names - ALLOWED_HEADERS
        assert "victim@x.test" not in str(parsed["To"]) and parsed["Bcc"] is None
        for part in parsed.walk():
            if part.get_content_type() == "text/html":
                html = part.get_content()
                assert "<script" not in html and "onerror=" not in html.replace("onerror=alert", "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(max_size=200),
    sender=st.one_of(st.emails(), st.text(max_size=40)),
    body=st.text(max_size=2000),
    headers=st.lists(st.tuples(st.sampled_from(["Auto-Submitted", "Precedence", "List-Id", "Content-Type",
                                                "Content-Transfer-Encoding", "In-Reply-To", "References", "Date",
                                                "X-Random"]), st.text(max_size=80)), max_size=6),
    noise=st.binary(max_size=300),
)
def test_generated_messages_parse_and_route(subject: str, sender: str, body: str,
                                            headers: list[tuple[str, str]], noise: bytes) -> None:
    lines = [f"From: {sender}", f"Subject: {subject}", *(f"{k}: {v}" for k, v in headers)]
    raw = "\r\n".join(line.replace("\r", " ").replace("\n", " ") for line in lines).encode("utf-8", "replace")
    raw += b"\r\n\r\n" + body.encode("utf-8", "replace") + noise
    mail = parse_mail(raw)
    request = read_request(mail, Directory((), ()), RULES)
    decision = route(request, RULES)
    assert decision.queue and "\n" not in mail.subject
