"""Client links: signed, expiring, revocable; a changed letter or another secret is refused."""

from datetime import datetime, timedelta, timezone

import pytest

from dispatchd.domain.links import ClientLink, LinkState, link_state, read_link, sign_link

SECRET = b"k" * 32
ISSUED = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
DAYS = timedelta(days=90)


def test_a_signed_link_reads_back_its_terms() -> None:
    token = sign_link(SECRET, "Acme", "Bob@Acme.test ", ISSUED, DAYS)
    assert read_link(token, SECRET) == ClientLink("Acme", "bob@acme.test", ISSUED, ISSUED + DAYS)
    assert all(c.isalnum() or c in "-_." for c in token), "fits in a URL path as it is"


def test_names_with_any_characters_survive() -> None:
    token = sign_link(SECRET, "Ünïcode & <Co> / \"Ltd\"", "o'neil@x.test", ISSUED, DAYS)
    link = read_link(token, SECRET)
    assert link is not None and link.client == "Ünïcode & <Co> / \"Ltd\""


def _flip(token: str, at: int) -> str:
    letter = token[at]
    return token[:at] + ("A" if letter != "A" else "B") + token[at + 1:]


@pytest.mark.parametrize("change", [
    lambda t: _flip(t, 3),  # the terms (another client or contact)
    lambda t: _flip(t, len(t) - 2),  # the signature
    lambda t: t.replace(".", ""),
    lambda t: t + ".x",
    lambda t: t.split(".")[0] + ".",
    lambda t: "",
    lambda t: "not base64!.???",
    lambda t: t * 10,
])
def test_a_changed_token_is_refused(change) -> None:  # type: ignore[no-untyped-def]
    token = sign_link(SECRET, "Acme", "bob@acme.test", ISSUED, DAYS)
    assert read_link(change(token), SECRET) is None


def test_a_forged_payload_with_its_own_signature_is_refused() -> None:
    theirs = sign_link(b"x" * 32, "Globex", "bob@acme.test", ISSUED, DAYS)
    assert read_link(theirs, SECRET) is None, "signed with another (or a rotated) secret"


@pytest.mark.parametrize("now, revoked, expected", [
    (ISSUED, None, LinkState.VALID),
    (ISSUED + DAYS - timedelta(seconds=1), None, LinkState.VALID),
    (ISSUED + DAYS, None, LinkState.EXPIRED),
    (ISSUED + timedelta(days=1), ISSUED + timedelta(seconds=1), LinkState.REVOKED),
    (ISSUED + timedelta(days=1), ISSUED, LinkState.VALID),  # issued at the revocation: a fresh link
    (ISSUED + timedelta(days=1), ISSUED - timedelta(days=1), LinkState.VALID),
    (ISSUED + DAYS * 2, ISSUED + timedelta(days=1), LinkState.REVOKED),
])
def test_link_state(now: datetime, revoked: datetime | None, expected: LinkState) -> None:
    link = read_link(sign_link(SECRET, "Acme", "bob@acme.test", ISSUED, DAYS), SECRET)
    assert link_state(link, now, revoked) is expected


def test_no_link_is_invalid() -> None:
    assert link_state(None, ISSUED, None) is LinkState.INVALID
