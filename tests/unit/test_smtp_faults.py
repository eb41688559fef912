"""Which SMTP replies stop all sending (and of which kind) and which concern one email."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatchd.flows.outbox import RetryPolicy
from dispatchd.flows.sender_hold import SPACING
from dispatchd.mail.smtp_faults import Fault, Stage, enhanced_status, reply_fault


@pytest.mark.parametrize(("stage", "code", "message", "kind"), [
    # Setting up the session: always the server's, whatever it says.
    (Stage.CONNECT, None, "ConnectionResetError", Fault.UNREACHABLE),
    (Stage.GREETING, 554, "5.3.2 No SMTP service here", Fault.BUSY),
    (Stage.GREETING, 554, "No SMTP service here", Fault.UNREACHABLE),
    (Stage.GREETING, 421, "4.3.2 Service not available", Fault.BUSY),
    (Stage.EHLO, 550, "5.7.1 Go away", Fault.UNREACHABLE),
    (Stage.STARTTLS, None, "SSLCertVerificationError", Fault.UNREACHABLE),
    (Stage.AUTH, 535, "5.7.8 Username and Password not accepted", Fault.LOGIN),
    (Stage.AUTH, 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled", Fault.LOGIN),
    (Stage.AUTH, 454, "4.7.0 Too many login attempts, please try again later", Fault.LOGIN),
    (Stage.AUTH, None, "MailServerError: token endpoint unreachable", Fault.LOGIN),
    # During a transaction: 421, quotas and rate limits are the server's.
    (Stage.MAIL, 421, "4.7.0 Try again later, closing connection.", Fault.BUSY),
    (Stage.DATA, 550, "5.4.5 Daily user sending quota exceeded.", Fault.QUOTA),
    (Stage.DATA, 554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", Fault.QUOTA),
    (Stage.RCPT, 452, "4.5.3 Too many recipients", Fault.QUOTA),
    (Stage.RCPT, 550, "5.1.90 You've reached your daily limit for message recipients", Fault.QUOTA),
    (Stage.MAIL, 454, "Throttling failure: Maximum sending rate exceeded.", Fault.BUSY),
    (Stage.DATA, 451, "4.4.2 Message submission rate for this client has exceeded the configured limit",
     Fault.QUOTA),
    (Stage.MAIL, 530, "5.7.57 Client not authenticated to send mail", Fault.LOGIN),
    (Stage.MAIL, 550, "5.7.60 SMTP; Client does not have permissions to send as this sender", Fault.LOGIN),
    (Stage.MAIL, 553, "5.1.8 Sender address rejected", Fault.LOGIN),  # our envelope sender
    (Stage.SENDING, None, "SMTPServerDisconnected: connection lost", Fault.UNREACHABLE),
    # One email's business: a recipient, its mailbox, its size, a passing refusal.
    (Stage.RCPT, 550, "5.1.1 The email account that you tried to reach does not exist", None),
    (Stage.RCPT, 452, "4.2.2 The recipient's mailbox is over its storage quota", None),
    (Stage.RCPT, 552, "5.2.2 Mailbox full: user is over quota", None),
    (Stage.MAIL, 552, "5.3.4 Message size exceeds fixed limit", None),
    (Stage.DATA, 451, "4.3.0 Mail server temporarily rejected message", None),
    (Stage.DATA, 550, "5.7.1 Message rejected as spam", None),
    (Stage.RCPT, 450, "4.2.0 Greylisted, please try again in 300 seconds", None),
])
def test_reply_fault(stage: Stage, code: int | None, message: str, kind: Fault | None) -> None:
    fault = reply_fault(stage, code, message)
    assert (fault.kind if fault else None) == kind
    if fault:
        assert str(stage) in fault.detail and message in fault.detail


@pytest.mark.parametrize(("message", "status"), [
    ("5.4.5 Daily user sending quota exceeded.", "4.5"), ("4.7.139 x", "7.139"), ("no code here", None),
    ("2.0.0 OK", "0.0"),
])
def test_enhanced_status(message: str, status: str | None) -> None:
    assert enhanced_status(message) == status


@pytest.mark.parametrize(("kind", "failures", "at_least", "at_most"), [
    (Fault.UNREACHABLE, 1, 22.5, 30), (Fault.UNREACHABLE, 2, 45, 60), (Fault.UNREACHABLE, 20, 675, 900),
    (Fault.LOGIN, 1, 225, 300), (Fault.LOGIN, 4, 1800, 2400), (Fault.LOGIN, 50, 2700, 3600),
    (Fault.QUOTA, 1, 225, 300), (Fault.BUSY, 1, 45, 60),
])
def test_probes_back_off_with_jitter_up_to_a_ceiling(kind: Fault, failures: int, at_least: float,
                                                     at_most: float) -> None:
    spacing = SPACING[kind]
    assert spacing.delay(failures, 0.0) == at_most
    assert spacing.delay(failures, 0.999) >= at_least - 0.1


def test_an_email_is_retried_for_days_not_hours() -> None:
    policy = RetryPolicy()
    span, attempts = timedelta(), 0
    while not policy.exhausted(attempts):
        attempts += 1
        span += policy.delay(attempts)
    assert timedelta(days=3) <= span <= timedelta(days=3, hours=2)
    assert max(policy.delay(n) for n in range(1, attempts + 1)) == timedelta(hours=1)
    assert RetryPolicy(max_attempts=5).exhausted(5) and not RetryPolicy(max_attempts=5).exhausted(4)
    assert RetryPolicy(give_up_after=timedelta(hours=1)).exhausted(7)
