from dispatchd.domain.authres import passing_domains, sender_authenticated
from dispatchd.domain.tokens import ReplyToken, bounce_address, find_token, reply_address, verify

SECRET = b"k" * 32
INTAKE = "requests@agency.test"


def test_round_trip() -> None:
    address = reply_address(INTAKE, 42, "Bob@Acme.test", SECRET)
    assert address.startswith("requests+t42.") and address.endswith("@agency.test")
    token = find_token(("someone@else.test", address.upper()), {INTAKE})
    assert token is not None and token.task_id == 42
    assert verify(token, "bob@acme.test", SECRET)


def test_addresses_issued_by_earlier_releases_keep_their_form() -> None:
    """Replies and bounces arrive long after the email went out, maybe after an upgrade."""
    assert reply_address(INTAKE, 42, "ben@agency.test", b"secret") == "requests+t42.l73avx7mzdypodvf@agency.test"
    assert bounce_address(INTAKE, "<dispatchd.42.0123456789abcdef@agency.test>", b"secret") == \
        "requests+m42.0123456789ab.kc6v22i5@agency.test"


def test_token_is_bound_to_recipient_task_and_secret() -> None:
    token = find_token((reply_address(INTAKE, 42, "bob@acme.test", SECRET),), {INTAKE})
    assert token is not None
    assert not verify(token, "eve@evil.test", SECRET)
    assert not verify(ReplyToken(43, token.signature), "bob@acme.test", SECRET)
    assert not verify(token, "bob@acme.test", b"other secret")


def test_only_our_plus_addresses_count() -> None:
    good = reply_address(INTAKE, 7, "bob@acme.test", SECRET)
    assert find_token((good.replace("agency.test", "evil.test"),), {INTAKE}) is None
    assert find_token(("requests+hello@agency.test",), {INTAKE}) is None
    assert find_token((INTAKE,), {INTAKE}) is None


AR = ("mx.agency.test; dkim=pass header.d=acme.test header.s=s1; spf=fail smtp.mailfrom=x@evil.test; "
      "dmarc=pass header.from=acme.test")


def test_authentication_results_from_trusted_server_only() -> None:
    assert passing_domains((AR,), "mx.agency.test") == {"acme.test"}
    assert passing_domains((AR,), "mx.other.test") == set()
    assert passing_domains((AR,), None) == set()
    assert sender_authenticated("bob@acme.test", (AR,), "mx.agency.test")
    assert not sender_authenticated("x@evil.test", (AR,), "mx.agency.test")
    forged = "evil.test; dkim=pass header.d=agency.test"
    assert not sender_authenticated("ana@agency.test", (forged,), "mx.agency.test")
