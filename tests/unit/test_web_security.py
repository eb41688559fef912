"""The headers every response carries and the CSRF check of every form POST (in process)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from dispatchd.web.security import CSRF_COOKIE, CSRF_FIELD, BodyLimit, SecurityHeaders, csrf_token, form_post

SECRET = b"s" * 32


def _app(secret: bytes = SECRET) -> Starlette:
    async def page(request: Request) -> Response:
        return HTMLResponse(f'<form><input name="csrf" value="{csrf_token(request, secret)}"></form>')

    def save(request: Request, form: FormData) -> Response:
        return PlainTextResponse(f"saved {form.get('text')}")

    return Starlette(routes=[Route("/", page), Route("/save", form_post(save, lambda: secret), methods=["POST"])],
                     middleware=[Middleware(SecurityHeaders), Middleware(BodyLimit, limit=lambda: 1000)])


class AsgiClient:
    """httpx over the ASGI app in one event loop of its own (Starlette's AsgiClient wants
    another package): keeps cookies between requests like a browser."""

    def __init__(self, app: Starlette):
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        self.cookies = self.http.cookies

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.get(url, **kwargs))

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.post(url, **kwargs))

    def __enter__(self) -> AsgiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture
def client() -> Iterator[AsgiClient]:
    with AsgiClient(_app()) as client:
        yield client


def _token(client: AsgiClient) -> str:
    match = re.search(r'value="([^"]+)"', client.get("/").text)
    assert match
    return match.group(1)


def test_every_response_carries_the_security_headers(client: AsgiClient) -> None:
    for response in (client.get("/"), client.get("/nowhere"), client.post("/save", data={})):
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"


def test_a_page_with_a_form_sets_an_httponly_strict_cookie(client: AsgiClient) -> None:
    response = client.get("/")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "set-cookie" not in client.get("/").headers, "the browser has its nonce: no new one"


def test_a_form_with_its_token_is_accepted(client: AsgiClient) -> None:
    response = client.post("/save", data={CSRF_FIELD: _token(client), "text": "hello"})
    assert (response.status_code, response.text) == (200, "saved hello")


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cookie", "other nonce", "token of other secret"])
def test_a_form_without_a_valid_token_is_refused(client: AsgiClient, case: str) -> None:
    token = _token(client)
    if case == "no token":
        data = {"text": "x"}
    elif case == "wrong token":
        data = {CSRF_FIELD: token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "text": "x"}
    elif case == "token of other secret":
        with AsgiClient(_app(b"t" * 32)) as other:
            client.cookies.set(CSRF_COOKIE, other.get("/").cookies[CSRF_COOKIE])
            data = {CSRF_FIELD: _token(other)}
    else:
        data = {CSRF_FIELD: token, "text": "x"}
        client.cookies.clear()
        if case == "other nonce":
            client.cookies.set(CSRF_COOKIE, "planted-by-a-sibling-subdomain")
    response = client.post("/save", data=data)
    assert response.status_code == 403 and "saved" not in response.text


def test_a_post_from_another_site_is_refused_before_the_form_is_read(client: AsgiClient) -> None:
    token = _token(client)
    response = client.post("/save", data={CSRF_FIELD: token}, headers={"Origin": "https://evil.test"})
    assert response.status_code == 403
    same = client.post("/save", data={CSRF_FIELD: token, "text": "x"}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_origin_null_is_left_to_the_csrf_token(client: AsgiClient) -> None:
    """A browser posts a form with 'Origin: null' from a page whose Referrer-Policy is no-referrer
    (ours): refusing it refused every form in a real Chromium."""
    token = _token(client)
    assert client.post("/save", data={CSRF_FIELD: token, "text": "x"}, headers={"Origin": "null"}).status_code == 200
    assert client.post("/save", data={CSRF_FIELD: "forged"}, headers={"Origin": "null"}).status_code == 403


def test_a_body_over_the_limit_is_refused(client: AsgiClient) -> None:
    response = client.post("/save", data={CSRF_FIELD: _token(client), "text": "x" * 2000})
    assert response.status_code == 413


def test_every_post_route_of_the_app_checks_csrf(tmp_path: Path) -> None:
    from dispatchd.config import load_config
    from dispatchd.daemon import build_deps
    from dispatchd.web.app import create_app
    from tests.conftest import write_config

    deps = build_deps(load_config(write_config(tmp_path), credentials=False))
    try:
        app = create_app(lambda: deps)
        posts = [r for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
        for route in posts:
            assert getattr(route.endpoint, "csrf_checked", False), f"{route.path} takes a POST without the CSRF check"
    finally:
        deps.engine.dispose()
