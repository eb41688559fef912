import pytest

from dispatchd.domain.bounces import classify, worst
from dispatchd.domain.loops_budget import RecentActivity, ReplyLimits, body_fingerprint, breaker_reason
from dispatchd.domain.models import DeliveryReport
from dispatchd.domain.tokens import BouncedEmail, _signature, bounce_address, find_bounced_email


@pytest.mark.parametrize("status, action, kind, permanent", [
    ("5.1.1", "failed", "no_such_user", True),
    ("5.1.10", "failed", "no_such_user", True),
    ("5.2.2", "failed", "mailbox_unavailable", True),
    ("5.7.1", "failed", "policy", True),
    ("5.7.26", "failed", "policy", True),
    ("5.0.0", "failed", "permanent", True),
    ("4.4.7", "delayed", "delayed", False),
    ("4.2.2", "failed", "delayed", False),
    ("2.0.0", "delivered", "delivered", False),
])
def test_dsn_status_classes(status: str, action: str, kind: str, permanent: bool) -> None:
    verdict = classify(DeliveryReport("bob@acme.test", action, status))
    assert (verdict.kind, verdict.permanent) == (kind, permanent)


def test_worst_report_wins() -> None:
    reports = (DeliveryReport("a@x.test", "delayed", "4.4.1"), DeliveryReport("b@x.test", "failed", "5.1.1"))
    report, verdict = worst(reports)  # type: ignore[misc]
    assert report.recipient == "b@x.test" and verdict.kind == "no_such_user"
    assert worst(()) is None


def test_verp_addresses_are_signed() -> None:
    address = bounce_address("requests@agency.test", "<dispatchd.42.0123456789abcdef0123@agency.test>", b"s" * 32)
    assert address.startswith("requests+m42.0123456789ab.")
    assert find_bounced_email((address,), "requests@agency.test", b"s" * 32) == BouncedEmail(42, "0123456789ab")
    assert find_bounced_email((address,), "requests@agency.test", b"other") is None
    assert find_bounced_email((address.replace("m42", "m43"),), "requests@agency.test", b"s" * 32) is None
    no_task = bounce_address("requests@agency.test", "<dispatchd.0.fedcba9876543210fedc@agency.test>", b"s" * 32)
    assert find_bounced_email((no_task,), "requests@agency.test", b"s" * 32) == BouncedEmail(None, "fedcba987654")


def test_verp_addresses_of_older_releases_still_name_their_email() -> None:
    signature = _signature(b"s" * 32, 42, "bounce")[:8]
    found = find_bounced_email((f"requests+b42.{signature}@agency.test",), "requests@agency.test", b"s" * 32)
    assert found == BouncedEmail(outbox_id=42)
    assert find_bounced_email((f"requests+b43.{signature}@agency.test",), "requests@agency.test", b"s" * 32) is None


LIMITS = ReplyLimits(per_sender_per_hour=3, per_thread_per_hour=2, per_hour=10, same_body_senders=3)


@pytest.mark.parametrize("activity, tripped", [
    (RecentActivity(0, 0, 0, 1), None),
    (RecentActivity(3, 0, 3, 1), "to this sender"),
    (RecentActivity(0, 2, 2, 1), "in this thread"),
    (RecentActivity(0, 0, 10, 1), "global cap"),
    (RecentActivity(0, 0, 0, 3), "from 3 addresses"),
])
def test_breaker(activity: RecentActivity, tripped: str | None) -> None:
    reason = breaker_reason(activity, LIMITS)
    assert (reason is None) if tripped is None else (reason is not None and tripped in reason)


def test_body_fingerprint_ignores_noise() -> None:
    text = "I am away from the office until 12 May.\n> quoted"
    assert body_fingerprint(text) == body_fingerprint("i am  AWAY from the office until 3 May. quoted")
    assert body_fingerprint(text) != body_fingerprint("I am in the office until 12 May, ask me anything.")
    assert body_fingerprint("Thanks, see attached!") is None, "short texts are repeated by people"
