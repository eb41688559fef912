"""Going live on a mailbox that already has mail, through real Dovecot and the SMTP sink:
the first start leaves what is there alone; ``dispatchd import`` takes it in on purpose."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dispatchd.config import load_config
from dispatchd.devservers import Dovecot, SmtpCapture
from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


def _deployment(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, user: str, start_after: str | None) -> Deployment:
    write_config(tmp_path, dovecot.port, smtp.port, mailbox=user,
                 mailboxes=mailbox_table(user, dovecot.port, start_after=start_after))
    return Deployment(tmp_path, dovecot, smtp, user)


def _deliver_dated(deployment: Deployment, dated: list[tuple[datetime, bytes]]) -> None:
    """APPEND with the arrival time (INTERNALDATE) an older mailbox would have."""
    client = deployment.dovecot.client(deployment.user)
    try:
        for arrived, message in dated:
            client.append("INBOX", message, msg_time=arrived)
    finally:
        client.logout()


def test_first_start_dispatches_only_what_arrives_afterwards(tmp_path: Path, dovecot: Dovecot,
                                                             smtp: SmtpCapture, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = _deployment(tmp_path, dovecot, smtp, "golive1@agency.test", start_after=None)
    now = datetime.now(timezone.utc)
    # 500 requests from the last 50 days, ten a day, the newest yesterday
    old = [(now - (50 - i // 10) * DAY + (i % 10) * timedelta(minutes=7),
            make_mail(f"[Acme] - Content - Old request {i}", message_id=f"<old{i}@client.test>"))
           for i in range(500)]
    _deliver_dated(deployment, old)
    capsys.readouterr()

    assert deployment.run_once() == 0
    assert deployment.tasks() == [] and deployment.outbox() == [] and smtp.messages == []
    records = deployment.inbound()
    assert len(records) == 500 and {r.disposition for r in records} == {"before_go_live"}
    assert deployment.folder_count("INBOX") == 500, "old mail is left where it was"
    went_live = [json.loads(line) for line in capsys.readouterr().err.splitlines()
                 if '"mailbox.went_live"' in line]
    assert went_live and went_live[0]["before_go_live"] == 500
    assert "500 earlier messages" in went_live[0]["summary"] and "dispatchd import" in went_live[0]["summary"]

    deployment.deliver(make_mail("[Acme] - Content - First live request", message_id="<live@client.test>"))
    assert deployment.run_once() == 0
    [task] = deployment.tasks()
    assert task.message_id == "<live@client.test>" and len(deployment.received_by("bob@acme.test")) == 1
    assert deployment.folder_count("INBOX") == 500 and deployment.folder_count("Processed") == 1
    assert deployment.run_once() == 0 and len(deployment.tasks()) == 1, "a later start is no first start"

    # Quietly: the last 10 days (100 messages) become tasks, nobody is mailed.
    sent_before = len(smtp.messages)
    since = (now - 10 * DAY).date()
    assert deployment.cli("import", "--since", since.isoformat(), "--quiet") == 0
    imported = [t for t in deployment.tasks() if t.message_id != "<live@client.test>"]
    # --since is a day of the business calendar: midnight in its time zone, not in UTC (run
    # between 22:00 and 24:00 UTC, a UTC date counted the Berlin evening's mail a day early).
    midnight = datetime.combine(since, time(), ZoneInfo(load_config(deployment.config).calendar.timezone))
    expected = sum(1 for arrived, _ in old if arrived >= midnight)
    assert len(imported) == expected and len(smtp.messages) == sent_before
    assert deployment.folder_count("Processed") == 1 + expected
    assert deployment.cli("import", "--since", since.isoformat(), "--quiet") == 0
    assert len(deployment.tasks()) == 1 + expected, "importing twice takes nothing twice"

    # With confirmations: everything else.
    assert deployment.cli("import", "--since", (now - 60 * DAY).date().isoformat()) == 0
    assert len(deployment.tasks()) == 501 and deployment.folder_count("INBOX") == 0
    confirmations = [m for m in deployment.received_by("bob@acme.test") if "Received" in m["Subject"]]
    assert len(confirmations) == 1 + (500 - expected)
    assert not [r for r in deployment.inbound() if r.disposition == "before_go_live"]
    with deployment.session() as session:
        from sqlmodel import select

        from dispatchd.store.tables import TaskEvent
        imported_events = session.exec(select(TaskEvent).where(TaskEvent.kind == "imported")).all()
    assert len(imported_events) == 500
    assert sum("nobody was mailed" in e.detail for e in imported_events) == expected


def test_start_after_pins_the_boundary_to_a_day(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture) -> None:
    deployment = _deployment(tmp_path, dovecot, smtp, "golive2@agency.test", start_after="2026-11-20")
    dated = [(datetime(2026, 11, day, 12, tzinfo=timezone.utc),
              make_mail(f"[Acme] - Content - Request of the {day}th", message_id=f"<nov{day}@client.test>"))
             for day in (18, 19, 20, 21)]
    _deliver_dated(deployment, dated)
    assert deployment.run_once() == 0
    assert sorted(t.message_id for t in deployment.tasks()) == ["<nov20@client.test>", "<nov21@client.test>"]
    waiting = sorted(r.message_id for r in deployment.inbound() if r.disposition == "before_go_live")
    assert waiting == ["<nov18@client.test>", "<nov19@client.test>"]
    assert deployment.folder_count("INBOX") == 2 and deployment.folder_count("Processed") == 2


def test_an_empty_folder_goes_live_once(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture) -> None:
    deployment = _deployment(tmp_path, dovecot, smtp, "golive3@agency.test", start_after=None)
    assert deployment.run_once() == 0
    deployment.deliver(make_mail("[Acme] - Content - After an empty start"))
    assert deployment.run_once() == 0
    assert len(deployment.tasks()) == 1, "mail after an empty first start is live mail"


def test_systemctl_status_says_what_the_first_start_left_alone(tmp_path: Path, dovecot: Dovecot,
                                                                smtp: SmtpCapture) -> None:
    from tests.integration.conftest import stop_process, wait_for
    from tests.integration.test_service import NotifySocket, start_with

    deployment = _deployment(tmp_path, dovecot, smtp, "golive4@agency.test", start_after=None)
    _deliver_dated(deployment, [(datetime(2026, 10, day, 9, tzinfo=timezone.utc), make_mail(f"[Acme] - Content - {day}"))
                                for day in (5, 6, 7)])
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = start_with(deployment, {"NOTIFY_SOCKET": str(notify.path)})
    try:
        wait_for(lambda: notify.saw("READY=1"), what="READY=1")
        # READY=1 comes once the mailbox is reachable; the STATUS= after the first pass says it.
        wait_for(lambda: notify.saw("left alone"), what="STATUS= after the first pass")
        status = next(m for m in notify.messages if "left alone" in m)
        assert "golive4@agency.test: live; 3 earlier messages (2026-10-05 to 2026-10-07) left alone, take them " \
               "in with: dispatchd import --since DAY" in status
    finally:
        assert stop_process(daemon) == 0
        notify.close()
    assert deployment.tasks() == [] and smtp.messages == []
