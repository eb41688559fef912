"""The trust rules: whose words count, and which are not kept at all."""

from __future__ import annotations

import pytest

from dispatchd.config import Client
from dispatchd.domain.trust import Evidence, Party, digest_recipients, is_clients_task, judge, may_receive, party_of

TOKEN, THREAD, AUTH, NONE = (Evidence(signed_reply_address=True), Evidence(our_thread=True),
                             Evidence(authenticated=True), Evidence())


@pytest.mark.parametrize("sender, staff, task_client, sender_clients, task_sender, party", [
    ("ana@agency.test", True, "Acme", (), "bob@acme.test", Party.STAFF),
    ("alice@acme.test", False, "Acme", ("Acme",), "bob@acme.test", Party.CLIENT),
    ("carla@globex.test", False, "Acme", ("Globex",), "bob@acme.test", Party.STRANGER),
    ("PR@brightmedia.test", False, None, (), "pr@brightmedia.test", Party.REQUESTER),
    ("eve@evil.test", False, None, (), "pr@brightmedia.test", Party.STRANGER),
    ("eve@evil.test", False, "Acme", (), "bob@acme.test", Party.STRANGER),
    ("", False, None, (), "", Party.STRANGER),
])
def test_party_of(sender: str, staff: bool, task_client: str | None, sender_clients: tuple[str, ...],
                  task_sender: str, party: Party) -> None:
    assert party_of(sender, is_staff=staff, task_client=task_client, sender_clients=sender_clients,
                    task_sender=task_sender) is party


@pytest.mark.parametrize("party, evidence, verified, stored", [
    (Party.CLIENT, TOKEN, True, True),
    (Party.CLIENT, THREAD, True, True),
    (Party.CLIENT, AUTH, True, True),
    (Party.CLIENT, NONE, False, True),  # the forged From: kept, marked, never the client's words
    (Party.STAFF, NONE, False, True),
    (Party.STAFF, AUTH, True, True),
    (Party.REQUESTER, THREAD, True, True),
    (Party.REQUESTER, NONE, False, True),
    (Party.STRANGER, NONE, False, False),  # a guessed task number: nothing kept on the task
    (Party.STRANGER, AUTH, False, False),  # their domain proves who they are, not that it is their task
    (Party.STRANGER, TOKEN, True, True),  # dispatchd wrote to this address about this task
    (Party.STRANGER, THREAD, True, True),
])
def test_judge(party: Party, evidence: Evidence, verified: bool, stored: bool) -> None:
    verdict = judge(party, evidence)
    assert (verdict.verified, verdict.stored, verdict.party) == (verified, stored, party)
    assert verdict.reason


def test_the_reason_names_the_evidence() -> None:
    assert judge(Party.CLIENT, Evidence(True, False, True)).reason == "signed reply address; DKIM/SPF/DMARC pass"
    assert "no signed reply address" in judge(Party.CLIENT, NONE).reason


ACME = Client("Acme", ("*@acme.test", "bob@gmail.test"), contacts=("pm@acme-group.test",))
TYLER = Client("Tyler", ("tyler@tyler-seo.test",))


@pytest.mark.parametrize("client, recent, recipients", [
    (ACME, ["bob@acme.test", "pr@brightmedia.test", "BOB@gmail.test"],
     ("bob@acme.test", "bob@gmail.test", "pm@acme-group.test")),
    (TYLER, ["tyler@tyler-seo.test", "intern@tyler-seo.test"], ("tyler@tyler-seo.test",)),
    (Client("Acme", ("*@acme.test",), digest_to=("reports@acme.test",)), ["bob@acme.test"], ("reports@acme.test",)),
    (TYLER, [], ()),
])
def test_digest_recipients_are_the_clients_own(client: Client, recent: list[str], recipients: tuple[str, ...]) -> None:
    assert digest_recipients(client, recent) == recipients


@pytest.mark.parametrize("address, client, sender, allowed", [
    ("bob@acme.test", ACME, "bob@acme.test", True),
    ("pm@acme-group.test", ACME, "bob@acme.test", True),  # a contact
    ("pr@brightmedia.test", ACME, "pr@brightmedia.test", False),  # a person moved the outsider's task to Acme
    ("pr@brightmedia.test", None, "pr@brightmedia.test", True),  # their own request, no client
    ("eve@evil.test", None, "pr@brightmedia.test", False),
    ("intern@tyler-seo.test", TYLER, "intern@tyler-seo.test", False),
])
def test_may_receive(address: str, client: Client | None, sender: str, allowed: bool) -> None:
    assert may_receive(address, client, sender) is allowed


def test_what_clients_read_instead_of_internal_names(config_file) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from dispatchd.config import load_config
    from dispatchd.flows.labels import assignee_label, queue_label
    from dispatchd.rulebook import load_rulebook

    config = load_config(config_file(extra='[[queues]]\nname = "design"\ndisplay_name = "Studio"\n'
                                           '[[staff]]\nname = "Dina Petrova"\nemail = "dina@agency.test"\n'
                                           'display_name = "Di"\n'))
    book = load_rulebook(Path(__file__).resolve().parents[2] / "rules", config)
    labels = [queue_label(q, config, book) for q in ("design", "dev", "b/content", "triage", "somewhere")]
    assert labels == ["Studio", "Technical", "Content", "our team", "our team"]
    assert [assignee_label(a, config) for a in ("ana@agency.test", "dina@agency.test", "gone@agency.test", None)] \
        == ["Ana", "Di", "", ""]


@pytest.mark.parametrize("sender, staff, routed, listed", [
    ("bob@acme.test", False, False, True),
    ("ana@agency.test", True, False, True),  # staff filed it for the client
    ("pr@brightmedia.test", False, True, True),  # a person gave it to the client in triage
    ("pr@brightmedia.test", False, False, False),  # stored from a claim before the upgrade
])
def test_which_stored_tasks_a_clients_digest_lists(sender: str, staff: bool, routed: bool, listed: bool) -> None:
    assert is_clients_task(sender, ACME, staff, routed) is listed
