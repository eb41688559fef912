"""Who may follow a task: the client's own addresses only, whoever asks."""

import pytest

from dispatchd.config import Client, Staff
from dispatchd.domain.commands import parse_reply
from dispatchd.domain.followers import MAX_FOLLOWERS, follow_refusal, followers_from_recipients
from dispatchd.domain.intake import Directory

DIRECTORY = Directory((Client("Acme", ("*@acme.test", "bob@gmail.test")), Client("Globex", ("*@globex.test",))),
                      (Staff("Ana", "ana@agency.test"),))
OURS = frozenset({"requests@agency.test"})


@pytest.mark.parametrize("address, client, refused", [
    ("carol@acme.test", "Acme", None),
    ("bob@gmail.test", "Acme", None),                                  # a listed private address
    ("eve@gmail.test", "Acme", "eve@gmail.test is not one of Acme's addresses"),
    ("carol@globex.test", "Acme", "carol@globex.test is not one of Acme's addresses"),   # another client
    ("carol@acme.test.evil.test", "Acme", "carol@acme.test.evil.test is not one of Acme's addresses"),
    ("ana@agency.test", "Acme", "ana@agency.test is on our team and sees the task anyway"),
    ("requests+t1.abcdefghijklmnop@agency.test", "Acme", "requests+t1.abcdefghijklmnop@agency.test is our own address"),
    ("carol@acme.test", None, "this request has no confirmed client yet, so it can have no followers"),
    ("carol", "Acme", "'carol' is not an email address"),
    ("a@b@acme.test", "Acme", "'a@b@acme.test' is not an email address"),
])
def test_follow_refusal(address: str, client: str | None, refused: str | None) -> None:
    assert follow_refusal(address, client, DIRECTORY, OURS) == refused


def test_only_the_clients_colleagues_cc_d_on_a_request_follow_it() -> None:
    recipients = ("requests@agency.test", "Carol@Acme.test", "bob@acme.test", "pr@agency-partner.test",
                  "dan@globex.test", "ana@agency.test", "carol@acme.test", "erin@acme.test")
    assert followers_from_recipients(recipients, "bob@acme.test", "Acme", DIRECTORY, OURS) == [
        "carol@acme.test", "erin@acme.test"]
    assert followers_from_recipients(recipients, "bob@acme.test", None, DIRECTORY, OURS) == []


def test_a_whole_company_in_cc_is_capped() -> None:
    recipients = [f"person{n}@acme.test" for n in range(100)]
    assert len(followers_from_recipients(recipients, "bob@acme.test", "Acme", DIRECTORY, OURS)) == MAX_FOLLOWERS


@pytest.mark.parametrize("text, expected", [
    ("add follower carol@acme.test", [("follow", "carol@acme.test")]),
    ("Add followers: carol@acme.test, dan@acme.test.", [("follow", "carol@acme.test, dan@acme.test")]),
    ("remove follower carol@acme.test", [("unfollow", "carol@acme.test")]),
    ("Unfollow", [("unfollow", "")]),
    ("add follower", []),  # a problem, not a command: it needs an address
])
def test_follower_grammar(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(c.name, c.argument) for c in parse_reply(text).commands] == expected


def test_configured_followers_must_be_the_clients_own(tmp_path: object) -> None:
    from pathlib import Path

    from dispatchd.config import load_config
    from dispatchd.errors import ConfigError
    from tests.conftest import write_config

    good = write_config(Path(str(tmp_path)), extra="")
    text = good.read_text().replace('aliases = ["ACME Corp"]', 'aliases = ["ACME Corp"]\nfollowers = ["pm@acme.test"]')
    good.write_text(text)
    assert load_config(good, credentials=False).clients[0].followers == ("pm@acme.test",)
    good.write_text(text.replace('followers = ["pm@acme.test"]', 'followers = ["pm@outside.test"]'))
    with pytest.raises(ConfigError, match="pm@outside.test is not one of Acme's addresses; add it to contacts first"):
        load_config(good, credentials=False)
