"""The client side over HTTP against the real daemon (Dovecot, the SMTP sink, uvicorn): links
from real emails, the permission matrix, CSRF, hostile content escaped, actions, the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlmodel import select

from dispatchd.devservers import Dovecot
from dispatchd.domain.links import sign_link
from dispatchd.store.tables import Attachment
from tests.integration.conftest import wait_for
from tests.integration.websites import SECRET, Site, client_site

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot) -> Iterator[Site]:
    with client_site(tmp_path_factory.mktemp("web-client"), dovecot) as site:
        yield site


@pytest.fixture
def http(site: Site) -> Iterator[httpx.Client]:
    with site.server.client() as client:
        yield client


def _path(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


def _form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form on ``page`` that carries ``action``."""
    form = next(f for f in re.findall(r"<form.*?</form>", page, re.S) if f'value="{action}"' in f)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_the_link_in_a_confirmation_opens_that_clients_requests_only(site: Site, http: httpx.Client) -> None:
    bob = site.link_in(site.mails_to("bob@acme.test")[0])
    assert bob.startswith(site.url + "/c/")
    page = http.get(_path(bob))
    assert page.status_code == 200
    assert "Blog post about spring" in page.text and "Globex" not in page.text
    gina = http.get(_path(site.link_in(site.mails_to("gina@globex.test")[0])))
    assert "Globex secret launch plan" in gina.text and "Blog post" not in gina.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    staff_mail = [m for m in site.deployment.received() if "agency.test" in str(m["To"])]
    assert staff_mail and not any("All your requests" in m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
                                  for m in staff_mail), "links are for clients only"


def test_a_link_never_shows_another_clients_task(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    globex_task = site.task("Globex secret launch plan").id
    acme_task = site.task("Blog post about spring").id
    assert http.get(f"{bob}/r/{acme_task}").status_code == 200
    theirs = http.get(f"{bob}/r/{globex_task}")
    assert theirs.status_code == 404 and "Globex" not in theirs.text
    missing = http.get(f"{bob}/r/999999")
    assert missing.status_code == 404 and missing.text == theirs.text, "no way to tell 'not yours' from 'none'"


def _tampered(path: str) -> str:
    head, _, token = path.rpartition("/")
    at = 5
    return f"{head}/{token[:at]}{'A' if token[at] != 'A' else 'B'}{token[at + 1:]}"


@pytest.mark.parametrize("make", ["tampered", "other secret", "other client", "expired", "staff", "garbage"])
def test_bad_links_are_refused_and_show_nothing(site: Site, http: httpx.Client, make: str) -> None:
    now = datetime.now(timezone.utc)
    good = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    paths = {
        "tampered": _tampered(good),
        "other secret": "/c/" + sign_link(b"another secret", "Acme", "bob@acme.test", now, timedelta(days=9)),
        # Signed by us, but bob is not one of Globex's addresses.
        "other client": "/c/" + sign_link(SECRET.encode(), "Globex", "bob@acme.test", now, timedelta(days=9)),
        "expired": "/c/" + sign_link(SECRET.encode(), "Acme", "bob@acme.test", now - timedelta(days=91),
                                     timedelta(days=90)),
        "staff": "/c/" + sign_link(SECRET.encode(), "Acme", "ana@agency.test", now, timedelta(days=9)),
        "garbage": "/c/%3Cscript%3E",
    }
    task_id = site.task("Blog post about spring").id
    for path in (paths[make], f"{paths[make]}/r/{task_id}", f"{paths[make]}/new"):
        response = http.get(path)
        assert response.status_code == 403, path
        assert "Blog post" not in response.text and "Globex" not in response.text
    expected = "This link has expired." if make == "expired" else "This link does not work."
    assert expected in http.get(paths[make]).text
    assert ("Send me a fresh link" in http.get(paths[make]).text) == (make == "expired")


def test_a_revoked_link_is_refused_and_links_sent_later_open(site: Site, http: httpx.Client) -> None:
    issued = datetime.now(timezone.utc) - timedelta(minutes=5)
    carol = "/c/" + sign_link(SECRET.encode(), "Acme", "carol@acme.test", issued, timedelta(days=9))
    assert http.get(carol).status_code == 200
    assert site.deployment.cli("web", "revoke", "--contact", "carol@acme.test") == 0
    refused = http.get(carol)
    assert refused.status_code == 403 and "This link was withdrawn." in refused.text
    later = "/c/" + sign_link(SECRET.encode(), "Acme", "carol@acme.test", datetime.now(timezone.utc) + timedelta(
        seconds=1), timedelta(days=9))
    assert http.get(later).status_code == 200
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    assert http.get(bob).status_code == 200, "another contact's links stay open"


def test_hostile_subjects_and_bodies_are_escaped(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    listing = http.get(bob).text
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in listing
    hostile = http.get(f"{bob}/r/{site.task('onerror').id}").text
    assert "Body &lt;script&gt;alert(&#34;subject&#34;)" in hostile, "the body, in the emails exchanged"
    for task in site.deployment.tasks():
        if task.client == "Acme":
            page = http.get(f"{bob}/r/{task.id}").text
            assert "<script" not in page and "<img" not in page, task.description
    assert "<script" not in listing and "<img" not in listing


def test_a_form_post_without_its_csrf_token_changes_nothing(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    task_id = site.task("Blog post about spring").id
    fields = _form(http.get(f"{bob}/r/{task_id}").text, "comment")
    before = len(site.events(task_id))
    for data, headers in (({**fields, "csrf": "", "words": "forged"}, {}),
                          ({k: v for k, v in fields.items() if k != "csrf"} | {"words": "forged"}, {}),
                          ({**fields, "words": "forged"}, {"Origin": "https://evil.test"})):
        response = http.post(f"{bob}/r/{task_id}", data=data, headers=headers)
        assert response.status_code == 403
    with site.server.client() as stranger:  # a browser without the cookie, with a token copied from the page
        assert stranger.post(f"{bob}/r/{task_id}", data={**fields, "words": "forged"}).status_code == 403
    assert len(site.events(task_id)) == before


def test_a_comment_goes_through_the_reply_path_once(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    task_id = site.task("Blog post about spring").id
    fields = _form(http.get(f"{bob}/r/{task_id}").text, "comment")
    for _ in range(2):  # sent twice (a flaky connection): kept once
        response = http.post(f"{bob}/r/{task_id}", data={**fields, "words": "Please use the <b>blue</b> logo"})
        assert response.status_code == 200
    comments = [e for e in site.events(task_id) if e.kind == "comment"]
    assert [(e.actor, e.detail) for e in comments] == [("bob@acme.test", "Please use the <b>blue</b> logo")]
    assert "Please use the &lt;b&gt;blue&lt;/b&gt; logo" in response.text and "You wrote:" in response.text


def test_asking_for_changes_before_delivery_is_feedback_as_by_email(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    task = site.task("Blog post about spring")
    fields = _form(http.get(f"{bob}/r/{task.id}").text, "comment")
    response = http.post(f"{bob}/r/{task.id}", data={**fields, "action": "revise", "words": "shorter please"})
    assert response.status_code == 200 and "feedback" in response.text
    assert site.task("Blog post about spring").status == task.status, "nothing delivered: nothing changes"
    wait_for(lambda: any("feedback" in m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
                         for m in site.mails_to("bob@acme.test")[3:]), what="the result email")


def test_the_request_form_files_one_task_however_often_it_is_sent(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    page = http.get(f"{bob}/new").text
    assert '<option value="Content">Content</option>' in page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    data = {**fields, "type": "Content", "description": "Newsletter for March", "details": "Two pages.",
            "urgent": "yes"}
    files = {"files": ("brief.txt", b"the brief", "text/plain")}
    tasks_before = len(site.deployment.tasks())
    first = http.post(f"{bob}/new", data=data, files=files)
    again = http.post(f"{bob}/new", data=data, files=files)
    assert first.status_code == again.status_code == 200
    task = site.task("Newsletter for March")
    assert len(site.deployment.tasks()) == tasks_before + 1
    assert f"#{task.id}" in first.text and "We already had this request" in again.text
    assert (task.client, task.type, task.priority, task.sender) == ("Acme", "Content", "P1", "bob@acme.test")
    wait_for(lambda: any(f"[#{task.id}] Received" in str(m["Subject"]) for m in site.mails_to("bob@acme.test")),
             what="the confirmation of the web request")
    with site.deployment.session() as session:
        stored = session.exec(select(Attachment).where(Attachment.task_id == task.id)).all()
    assert [(a.filename, a.size) for a in stored] == [("brief.txt", 9)], "in the content-addressed store"
    assert (site.deployment.path / "data" / "blobs").is_dir()


def test_the_form_refuses_what_intake_would_not_take(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', http.get(f"{bob}/new").text))
    empty = http.post(f"{bob}/new", data={**fields, "type": "Content", "description": " "})
    assert empty.status_code == 400 and "what you need" in empty.text
    unknown = http.post(f"{bob}/new", data={**fields, "type": "<b>Hacking</b>", "description": "x"})
    assert unknown.status_code == 400 and "choose a type" in unknown.text
    huge = http.post(f"{bob}/new", data={**fields, "description": "x"},
                     files={"files": ("big.bin", b"x" * (21 * 1024 * 1024 + 1), "application/octet-stream")})
    assert huge.status_code == 413


def test_an_expired_link_sends_a_fresh_one_that_opens(site: Site, http: httpx.Client) -> None:
    old = "/c/" + sign_link(SECRET.encode(), "Acme", "dave@acme.test", datetime.now(timezone.utc) - timedelta(days=100),
                            timedelta(days=90))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', http.get(old).text))
    sent = http.post(f"{old}/renew", data=fields)
    assert sent.status_code == 200 and "We sent a new link" in sent.text
    wait_for(lambda: site.mails_to("dave@acme.test"), what="the fresh link")
    fresh = site.link_in(site.mails_to("dave@acme.test")[0])
    assert http.get(_path(fresh)).status_code == 200
    tampered = _tampered(old)
    assert http.post(f"{tampered}/renew", data=fields).status_code == 403, "only genuine links renew"


def test_files_download_as_files_and_only_to_their_client(site: Site, http: httpx.Client) -> None:
    bob = _path(site.link_in(site.mails_to("bob@acme.test")[0]))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', http.get(f"{bob}/new").text))
    evil = b"<html><script>fetch('/c/').then(r => r.text())</script></html>"
    sent = http.post(f"{bob}/new", data={**fields, "type": "Design", "description": "Banner with a page"},
                     files=[("files", ("évil page.html", evil, "text/html")), ("files", ("logo.svg", b"<svg/>", "image/svg+xml"))])
    task_id = int(re.search(r"request\s+<a href=\"[^\"]+\">#(\d+)", sent.text).group(1))  # type: ignore[union-attr]
    page = http.get(f"{bob}/r/{task_id}").text
    links = re.findall(r'href="(/c/[^"]+/files/\d+)">([^<]+)<', page)
    assert [name for _, name in links] == ["évil page.html", "logo.svg"]
    response = http.get(links[0][0])
    assert response.status_code == 200 and response.content == evil
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith('attachment; filename="_vil page.html"')
    assert "filename*=UTF-8''%C3%A9vil%20page.html" in response.headers["content-disposition"]
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"
    file_path = links[0][0].rpartition("/files/")[2]
    gina = _path(site.link_in(site.mails_to("gina@globex.test")[0]))
    assert http.get(f"{gina}/files/{file_path}").status_code == 404, "another client's link gets nothing"
    assert http.get(f"{_tampered(bob)}/files/{file_path}").status_code == 403
