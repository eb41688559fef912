"""The staff side over HTTP (httpx in process, the real app around a real SQLite database): sign-in
links, sessions and their cookie, CSRF, the permission matrix of the buttons, hostile content."""

from __future__ import annotations

import email
import itertools
import re
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from dispatchd.clock import FrozenClock
from dispatchd.config import load_config
from dispatchd.daemon import build_deps
from dispatchd.domain.models import RawMail
from dispatchd.flows.ingest import IntakeDeps, ingest
from dispatchd.store.tables import Outbox, Task, TaskEvent
from dispatchd.web.app import create_app
from dispatchd.web.staff_auth import SESSION_COOKIE
from tests.conftest import write_config
from tests.unit.test_web_security import AsgiClient

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data" / "corpus").glob("*.eml"))
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"> "quoted" & more'
STAFF_PAGES = ("/staff", "/staff/tasks", "/staff/tasks/1", "/staff/triage", "/staff/tasks?q=script")
_uids = itertools.count(1)


def make_deps(tmp_path: Path, web: str = "") -> IntakeDeps:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(tmp_path, mailbox="requests@agency.test", extra=web))
    return build_deps(config, clock=FrozenClock(datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/Berlin"))))


@pytest.fixture
def deps(tmp_path: Path) -> IntakeDeps:
    return make_deps(tmp_path)


@pytest.fixture
def http(deps: IntakeDeps) -> Iterator[AsgiClient]:
    with AsgiClient(create_app(lambda: deps)) as client:
        yield client


def submit(deps: IntakeDeps, subject: str, body: str = "Please.", sender: str = "bob@acme.test") -> int:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "requests@agency.test", subject
    uid = next(_uids)
    message["Message-ID"] = f"<staff-web-{uid}@client.test>"
    message.set_content(body)
    outcome = ingest(RawMail("INBOX", 1, uid, message.as_bytes()), deps)
    assert outcome.task_id is not None
    return outcome.task_id


def csrf(http: AsgiClient, page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', http.get(page).text)
    assert match, f"no form on {page}"
    return match.group(1)


def signin_links(deps: IntakeDeps) -> list[str]:
    with Session(deps.engine) as session:
        rows = session.exec(select(Outbox).where(Outbox.kind == "staff-signin").order_by(col(Outbox.id))).all()
    texts = [email.message_from_bytes(r.raw, policy=default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
             for r in rows]
    return [re.search(r"http\S+/staff/signin/(\S+)", t).group(1) for t in texts]  # type: ignore[union-attr]


def sign_in(http: AsgiClient, deps: IntakeDeps, address: str) -> None:
    http.post("/staff/signin", data={"email": address, "csrf": csrf(http, "/staff/signin")})
    token = signin_links(deps)[-1]
    page = http.get(f"/staff/signin/{token}")
    assert page.status_code == 200 and f"Sign in as {address}" in page.text
    done = http.post(f"/staff/signin/{token}", data={"csrf": csrf(http, f"/staff/signin/{token}")})
    assert done.status_code == 303 and done.headers["location"] == "/staff"


def act(http: AsgiClient, task_id: int, command: str, argument: str = "") -> tuple[int, str]:
    token = csrf(http, f"/staff/tasks/{task_id}")
    response = http.post(f"/staff/tasks/{task_id}/act", data={"command": command, "argument": argument, "csrf": token})
    return response.status_code, response.text


def task(deps: IntakeDeps, task_id: int) -> Task:
    with Session(deps.engine) as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def test_nothing_about_a_task_without_signing_in(deps: IntakeDeps, http: AsgiClient) -> None:
    submit(deps, "[Acme] - Content - Secret launch plan")
    for page in STAFF_PAGES:
        response = http.get(page)
        assert response.status_code == 303 and response.headers["location"] == "/staff/signin", page
        assert "Secret launch" not in response.text
    token = csrf(http, "/staff/signin")
    refused = http.post("/staff/tasks/1/act", data={"command": "take", "csrf": token})
    assert refused.status_code == 403 and task(deps, 1).assignee is None


def test_sign_in_with_the_emailed_link_once(deps: IntakeDeps, http: AsgiClient) -> None:
    submit(deps, "[Acme] - Content - Secret launch plan")
    sign_in(http, deps, "ana@agency.test")
    cookie = next(c for c in http.cookies.jar if c.name == SESSION_COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "lax"
    assert not cookie.secure, "http base_url: a Secure cookie would never come back"
    assert "Secret launch plan" in http.get("/staff/tasks").text
    [token] = signin_links(deps)
    assert http.get(f"/staff/signin/{token}").status_code == 410
    again = http.post(f"/staff/signin/{token}", data={"csrf": csrf(http, "/staff/signin")})
    assert again.status_code == 410 and "no longer works" in again.text
    http.post("/staff/signout", data={"csrf": csrf(http, "/staff")})
    assert http.get("/staff").status_code == 303


def test_the_answer_is_the_same_for_strangers_and_limits_hold(deps: IntakeDeps, http: AsgiClient) -> None:
    pages = [http.post("/staff/signin", data={"email": address, "csrf": csrf(http, "/staff/signin")}).text
             for address in ("mallory@evil.test", "ana@agency.test")]
    assert [p.replace("mallory@evil.test", "X").replace("ana@agency.test", "X") for p in pages][0] == \
        [p.replace("mallory@evil.test", "X").replace("ana@agency.test", "X") for p in pages][1]
    for _ in range(6):
        http.post("/staff/signin", data={"email": "ana@agency.test", "csrf": csrf(http, "/staff/signin")})
    assert len(signin_links(deps)) == 5, "five links an hour to one address"


def test_an_expired_link_is_refused(deps: IntakeDeps, http: AsgiClient) -> None:
    http.post("/staff/signin", data={"email": "ana@agency.test", "csrf": csrf(http, "/staff/signin")})
    [token] = signin_links(deps)
    deps.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert http.get(f"/staff/signin/{token}").status_code == 410
    assert http.post(f"/staff/signin/{token}", data={"csrf": csrf(http, "/staff/signin")}).status_code == 410
    assert http.get("/staff").status_code == 303


def test_the_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    deps = make_deps(tmp_path, '[web]\nbase_url = "https://desk.agency.test"\n')
    with AsgiClient(create_app(lambda: deps)) as http:
        http.http.base_url = "https://testserver"  # Secure cookies (the CSRF one too) only go back over https
        http.post("/staff/signin", data={"email": "ana@agency.test", "csrf": csrf(http, "/staff/signin")})
        [token] = signin_links(deps)
        done = http.post(f"/staff/signin/{token}", data={"csrf": csrf(http, f"/staff/signin/{token}")})
    assert "Secure" in done.headers["set-cookie"] and "HttpOnly" in done.headers["set-cookie"]


def test_a_form_without_its_csrf_token_is_refused(deps: IntakeDeps, http: AsgiClient) -> None:
    task_id = submit(deps, "[Acme] - Content - Post")
    sign_in(http, deps, "ana@agency.test")
    for data in ({"command": "take"}, {"command": "take", "csrf": "forged"}):
        assert http.post(f"/staff/tasks/{task_id}/act", data=data).status_code == 403
    assert task(deps, task_id).assignee is None


# who, command, argument on a triage task (queue triage) or a content task; allowed?
MATRIX = [
    ("ana@agency.test", "triage", "type", "Content", False),    # a producer may not route
    ("ben@agency.test", "triage", "type", "Content", False),    # a lead, but triage is not his queue
    ("morgan@agency.test", "triage", "type", "Content", True),  # a manager
    ("ana@agency.test", "content", "take", "", True),
    ("ana@agency.test", "content", "assign", "Ben", False),     # a producer may not assign
    ("ben@agency.test", "content", "assign", "Ana", True),
    ("ana@agency.test", "content", "cancel", "no longer needed", False),
    ("ben@agency.test", "content", "cancel", "no longer needed", True),
    ("ana@agency.test", "content", "approve", "", False),       # a producer may not approve
    ("ana@agency.test", "content", "review", "", False),        # the ladder: not started yet
]


@pytest.mark.parametrize(("who", "kind", "command", "argument", "allowed"), MATRIX)
def test_permission_matrix(deps: IntakeDeps, http: AsgiClient, who: str, kind: str, command: str, argument: str,
                           allowed: bool) -> None:
    task_id = submit(deps, "[Acme] - Mystery - odd" if kind == "triage" else "[Acme] - Content - Post")
    sign_in(http, deps, who)
    before = task(deps, task_id).model_dump()
    status, text = act(http, task_id, command, argument)
    with Session(deps.engine) as session:
        last = session.exec(select(TaskEvent).where(TaskEvent.task_id == task_id)
                            .order_by(col(TaskEvent.id).desc())).first()
    if allowed:
        assert status == 303, text
        assert last is not None and last.actor == who and last.message_id == "web"
    else:
        assert status == 409 and "Not done:" in text
        assert task(deps, task_id).model_dump() == before


def test_the_triage_page_routes_with_the_models_suggestion(deps: IntakeDeps, http: AsgiClient) -> None:
    task_id = submit(deps, "[Acme] - Mystery - odd")
    sign_in(http, deps, "morgan@agency.test")
    page = http.get("/staff/triage")
    assert f'id="task-{task_id}"' in page.text and "1 of 1 waiting" in page.text
    token = csrf(http, "/staff/triage")
    done = http.post(f"/staff/tasks/{task_id}/act",
                     data={"command": "queue", "argument": "design", "back": "triage", "csrf": token})
    assert done.status_code == 303 and done.headers["location"] == f"/staff/triage?done={task_id}"
    assert task(deps, task_id).queue == "design"
    page = http.get(done.headers["location"])
    assert "Nothing waits for triage." in page.text and f"task #{task_id} routed" in page.text


def test_dashboard_and_list_with_n_of_m(deps: IntakeDeps, http: AsgiClient) -> None:
    for n in range(3):
        submit(deps, f"[Acme] - Content - Post {n}")
    submit(deps, "[Acme] - Design - Logo")
    sign_in(http, deps, "ben@agency.test")
    board = http.get("/staff")
    assert board.status_code == 200 and board.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == 4
    assert "<title" in board.text and "Backlog" in board.text
    listed = http.get("/staff/tasks", params={"queue": "content"})
    assert "3 of 3 shown" in listed.text
    searched = http.get("/staff/tasks", params={"q": "logo"})
    assert "1 of 1 shown" in searched.text and "Logo" in searched.text
    # The task view says who could take it and why not (issue 16): design is least loaded, Ben has the logo.
    who = http.get("/staff/tasks/4").text
    assert "Who could take it" in who and "Needs: nothing special" in who
    assert "<td>Ben</td><td>yes</td><td>eligible, 1 of 3 active</td>" in who


def test_the_trusted_header_signs_staff_in_only_when_configured(tmp_path: Path) -> None:
    with_header = make_deps(tmp_path / "a", '[web]\ntrusted_header = "X-Remote-User"\n')
    without = make_deps(tmp_path / "b")
    with AsgiClient(create_app(lambda: with_header)) as http:
        assert http.get("/staff", headers={"X-Remote-User": "Ana@agency.test"}).status_code == 200
        assert http.get("/staff", headers={"X-Remote-User": "bob@acme.test"}).status_code == 303
    with AsgiClient(create_app(lambda: without)) as http:
        assert http.get("/staff", headers={"X-Remote-User": "ana@agency.test"}).status_code == 303


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "img"):
            self.bad.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.bad.append(f"{tag} {name}={value}")


def test_hostile_content_is_text_on_every_page(deps: IntakeDeps, http: AsgiClient) -> None:
    hostile = submit(deps, f"[Acme] - Content - {HOSTILE}", body=HOSTILE)
    triage = submit(deps, f"[Acme] - {HOSTILE} - odd", body=HOSTILE)
    for path in CORPUS:
        ingest(RawMail("INBOX", 1, next(_uids), path.read_bytes()), deps)
    sign_in(http, deps, "morgan@agency.test")
    pages = [*STAFF_PAGES, f"/staff/tasks/{hostile}", f"/staff/tasks/{triage}", "/staff/tasks?status=received"]
    with Session(deps.engine) as session:
        pages += [f"/staff/tasks/{i}" for i in session.exec(select(Task.id))]
    for page in pages:
        response = http.get(page)
        assert response.status_code == 200, page
        parser = _Tags()
        parser.feed(response.text)
        assert parser.bad == [], page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in http.get(f"/staff/tasks/{hostile}").text
