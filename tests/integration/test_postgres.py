"""PostgreSQL and several instances: a real PostgreSQL cluster, real Dovecot, real SMTP.

Two daemon processes share one database; mailboxes are owned through advisory locks, the
outbox is claimed with SKIP LOCKED, jobs run on one instance at a time.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from dispatchd.clock import as_utc
from dispatchd.devservers import Dovecot, SmtpCapture
from dispatchd.store import queries
from dispatchd.store.coordination import PostgresCoordinator
from dispatchd.store.db import SCHEMA_VERSION, migrate, open_engine, schema_version
from dispatchd.store.tables import Outbox, TaskEvent
from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import Deployment, make_mail, stop_process, wait_for

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 9, tzinfo=timezone.utc)
NO_REPLY_CAP = "[intake]\nmax_replies_per_hour = 100000\nmax_replies_per_sender_per_hour = 100000\n"


def pg_count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            return int(connection.execute(sql).fetchone()[0])  # type: ignore[index]
    except psycopg.errors.UndefinedTable:  # the schema is not there yet
        return 0


def log_events(path: Path, event: str) -> list[dict[str, object]]:
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if f'"event": "{event}"' in line]


def outbox_row(n: int) -> Outbox:
    return Outbox(message_id=f"<m{n}@x>", kind="client-received", envelope_from="a@x", recipients="b@y",
                  subject="s", raw=b"raw", next_attempt_at=NOW, created_at=NOW)


@pytest.fixture
def pg_deployment(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture, postgres_url: str) -> Deployment:
    user = f"pg{random.randrange(10**9)}@agency.test"
    write_config(tmp_path, dovecot.port, smtp.port, mailbox=user, database_url=postgres_url, extra=NO_REPLY_CAP)
    return Deployment(tmp_path, dovecot, smtp, user, postgres_url)


def test_instances_starting_together_migrate_once(postgres_url: str) -> None:
    engines = [open_engine(postgres_url) for _ in range(3)]
    applied: list[int] = []
    threads = [threading.Thread(target=lambda e=engine: applied.append(migrate(e))) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(applied) == [0, 0, SCHEMA_VERSION], "one instance migrates, the others find it done"
    assert schema_version(engines[0]) == SCHEMA_VERSION
    for engine in engines:
        engine.dispose()


def test_intake_and_replies_run_the_same_code_on_postgresql(pg_deployment: Deployment) -> None:
    deployment = pg_deployment
    deployment.deliver(
        make_mail("[Acme] - Content - Blog post on topic clusters", attachments=(("brief.pdf", b"%PDF-1.4"),)),
        make_mail("no convention at all", sender="stranger@nowhere.test"),
        make_mail("[Globex] - Design - New banner [P1]", sender="Gina <gina@globex.test>"))
    assert deployment.run_once() == 0
    tasks = deployment.tasks()
    assert [(t.client, t.queue, t.status) for t in tasks] == [
        ("Acme", "content", "queued"), (None, "triage", "received"), ("Globex", "design", "queued")]
    assert abs(as_utc(tasks[0].created_at) - datetime.now(timezone.utc)) < timedelta(minutes=1), \
        "timestamps are UTC whatever the server's time zone"
    notice = next(m for m in deployment.received_by("ben@agency.test") if m["X-Dispatchd-Task"] == str(tasks[0].id))
    deployment.deliver(make_mail("Re: " + notice["Subject"], sender="ben@agency.test", body="start",
                                 to=notice["Reply-To"], headers={"In-Reply-To": notice["Message-ID"]}))
    assert deployment.run_once() == 0
    assert deployment.tasks()[0].status == "in_progress"
    assert {o.status for o in deployment.outbox()} == {"sent"}


def test_outbox_claims_skip_rows_another_instance_is_claiming(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    with Session(engine) as session, session.begin():
        session.add_all([outbox_row(n) for n in range(10)])
    first = Session(engine, expire_on_commit=False)
    first.begin()
    mine = queries.claim_outbox(first, NOW, NOW, 4, "instance-a")  # not committed: rows stay locked
    with Session(engine, expire_on_commit=False) as second, second.begin():
        theirs = queries.claim_outbox(second, NOW, NOW, 10, "instance-b")
    first.commit()
    first.close()
    engine.dispose()
    assert len(mine) == 4 and len(theirs) == 6
    assert not {r.id for r in mine} & {r.id for r in theirs}


def test_claims_of_a_vanished_instance_go_back_to_the_queue(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    alive, doomed = PostgresCoordinator(engine), PostgresCoordinator(engine)
    with Session(engine) as session, session.begin():
        session.add_all([outbox_row(n) for n in range(4)])
    for coordinator, limit in ((alive, 2), (doomed, 2)):
        with Session(engine) as session, session.begin():
            queries.claim_outbox(session, NOW, NOW, limit, coordinator.instance_id())
    doomed.close()  # as a SIGKILL would: its connection and its backend are gone
    with Session(engine) as session, session.begin():
        live = alive.live_instances(session.connection())
        assert alive.instance_id() in live and queries.release_orphaned_claims(session, live) == 2
    with Session(engine) as session:
        rows = session.exec(select(Outbox)).all()
        assert sorted((r.status, r.claimed_by or "") for r in rows) == sorted(
            [("pending", ""), ("pending", ""), ("sending", alive.instance_id()), ("sending", alive.instance_id())])
    alive.close()
    engine.dispose()


def test_a_mailbox_has_one_reader_and_a_job_runs_on_one_instance(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    first, second = PostgresCoordinator(engine), PostgresCoordinator(engine)
    assert first.try_own("mailbox:requests") and first.still_own("mailbox:requests")
    assert not second.try_own("mailbox:requests")
    assert second.try_own("mailbox:other"), "another mailbox is free"
    with first.exclusive("job:sla") as ours, second.exclusive("job:sla") as theirs:
        assert ours and not theirs
    with second.exclusive("job:sla") as theirs:
        assert theirs, "the job lock is released when the run ends"
    first.close()
    assert wait_for(lambda: second.try_own("mailbox:requests"), timeout=5, what="takeover") < 5
    second.close()
    engine.dispose()


def test_the_reply_secret_is_shared_by_instances(pg_deployment: Deployment, tmp_path: Path) -> None:
    from dispatchd.config import load_config
    from dispatchd.daemon import build_deps

    one = build_deps(load_config(pg_deployment.config))
    other_dir = tmp_path / "elsewhere"
    other_dir.mkdir()
    other = write_config(other_dir, pg_deployment.dovecot.port, pg_deployment.smtp.port, mailbox=pg_deployment.user,
                         database_url=pg_deployment.database_url or "")
    another = build_deps(load_config(other))
    assert another.secret == one.secret, "a token signed by one verifies on the other"
    for deps in (one, another):
        deps.engine.dispose()


@pytest.mark.slow
def test_two_instances_one_mailbox_sigkill_the_reader(pg_deployment: Deployment) -> None:
    """Requests stream in while two daemons run; the one reading is killed with SIGKILL."""
    deployment, url = pg_deployment, pg_deployment.database_url or ""
    total = 300
    daemons = {name: deployment.start_daemon(log_name=f"{name}.log") for name in ("a", "b")}

    def reader() -> str | None:
        return next((n for n in daemons if log_events(deployment.path / f"{n}.log", "mailbox.reading")), None)

    wait_for(lambda: reader() is not None, what="one instance to take the mailbox")
    first = reader()
    assert first is not None
    stream = threading.Thread(target=lambda: [
        (deployment.deliver(*[make_mail(f"[Acme] - Content - Request {n + k}", sender=f"client{(n + k) % 40}@acme.test",
                                        message_id=f"<pg-{n + k}@client.test>") for k in range(10)]), time.sleep(0.1))
        for n in range(0, total, 10)])
    stream.start()
    try:
        wait_for(lambda: pg_count(url, "SELECT count(*) FROM inbound_message") >= 100, timeout=60,
                 what="100 ingested")
        killed_at = time.time()
        stop_process(daemons[first], signal.SIGKILL)
        done_at_kill = pg_count(url, "SELECT count(*) FROM inbound_message")
        survivor = next(n for n in daemons if n != first)
        wait_for(lambda: bool(log_events(deployment.path / f"{survivor}.log", "mailbox.reading")), timeout=15,
                 what="the other instance to take over")
        took_over = datetime.fromisoformat(str(log_events(deployment.path / f"{survivor}.log",
                                                          "mailbox.reading")[0]["timestamp"])).timestamp()
        stream.join()
        wait_for(lambda: pg_count(url, "SELECT count(*) FROM inbound_message") == total
                 and pg_count(url, "SELECT count(*) FROM outbox WHERE status = 'sent'") == 2 * total,
                 timeout=120, what="every request processed and answered")
    finally:
        stream.join()
        codes = [stop_process(d) for d in daemons.values()]
    assert codes.count(-signal.SIGKILL) == 1 and codes.count(0) == 1
    tasks = deployment.tasks()
    assert len(tasks) == total and len({t.message_id for t in tasks}) == total
    confirmations: dict[str, set[str]] = defaultdict(set)
    for mail in deployment.received():
        confirmations[mail["X-Dispatchd-Task"] + mail["To"]].add(mail["Message-ID"])
    assert len(confirmations) == 2 * total, "one confirmation and one staff notice per request"
    assert all(len(ids) == 1 for ids in confirmations.values()), "a resend must reuse its Message-ID"
    assert deployment.folder_count("INBOX") == 0 and deployment.folder_count("Processed") == total
    assert pg_count(url, "SELECT count(*) FROM outbox WHERE status != 'sent'") == 0
    failover = took_over - killed_at
    print(f"\nfailover: killed the reader after {done_at_kill} of {total}; the other instance read the mailbox "
          f"{failover:.2f} s later; {total} tasks, {len(deployment.smtp.messages) - 2 * total} resent with the "
          "same Message-ID, lost 0, duplicates 0")
    assert failover < 5


def test_two_mailboxes_two_instances_and_replies_cross_over(tmp_path: Path, dovecot: Dovecot, smtp: SmtpCapture,
                                                            postgres_url: str) -> None:
    brand_a, brand_b = f"a{random.randrange(10**9)}@agency.test", f"b{random.randrange(10**9)}@brand-b.test"
    tables = (mailbox_table(brand_a, dovecot.port, header="[[mailbox]]", more='name = "brand-a"')
              + mailbox_table(brand_b, dovecot.port, header="[[mailbox]]",
                              more='name = "brand-b"\ndefault_client = "Globex"\nqueue_prefix = "b/"'))
    write_config(tmp_path, dovecot.port, smtp.port, mailbox=brand_a, database_url=postgres_url, mailboxes=tables)
    deployment = Deployment(tmp_path, dovecot, smtp, brand_a, postgres_url)
    daemons = [deployment.start_daemon("--mailbox", "brand-a", log_name="a.log"),
               deployment.start_daemon("--mailbox", "brand-b", log_name="b.log")]
    try:
        dovecot.append(brand_a, [make_mail("[Acme] - Content - For brand A", to=brand_a)])
        dovecot.append(brand_b, [make_mail("Design - For brand B", sender="gina@globex.test", to=brand_b)])
        wait_for(lambda: pg_count(postgres_url, "SELECT count(*) FROM task") == 2
                 and len(deployment.received_by("gina@globex.test")) == 1, timeout=30,
                 what="a task from each mailbox")
        by_mailbox = {t.mailbox: t for t in deployment.tasks()}
        assert (by_mailbox["brand-a"].client, by_mailbox["brand-a"].queue) == ("Acme", "content")
        assert (by_mailbox["brand-b"].client, by_mailbox["brand-b"].queue) == ("Globex", "b/design")
        confirmation = deployment.received_by("gina@globex.test")[0]
        token_address = confirmation["Reply-To"].addresses[0].addr_spec
        assert token_address.startswith(brand_b.split("@")[0] + "+t"), "the task's own mailbox answers"
        # The client replies to brand A's address with the same token: it still reaches the task.
        local, _, _ = token_address.partition("@")
        crossed = brand_a.split("@")[0] + "+" + local.partition("+")[2] + "@" + brand_a.split("@")[1]
        dovecot.append(brand_a, [make_mail("One more detail", sender="gina@globex.test", to=crossed,
                                           body="The banner should be blue.")])
        task_b = by_mailbox["brand-b"].id

        def commented() -> bool:
            with deployment.session() as session:
                return bool(session.exec(select(TaskEvent).where(
                    TaskEvent.task_id == task_b, TaskEvent.kind == "comment")).all())
        wait_for(commented, what="the crossed reply on brand B's task")
    finally:
        codes = [stop_process(d) for d in daemons]
    assert codes == [0, 0]
    assert [e["mailbox"] for e in log_events(tmp_path / "a.log", "mailbox.reading")] == ["brand-a"]
    assert [e["mailbox"] for e in log_events(tmp_path / "b.log", "mailbox.reading")] == ["brand-b"]
    with deployment.session() as session:
        assert session.exec(text("SELECT count(*) FROM task")).one()[0] == 2  # type: ignore[call-overload]
