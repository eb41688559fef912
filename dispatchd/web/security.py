"""What every response carries, and the CSRF check every form POST goes through.

Headers: a Content-Security-Policy without ``unsafe-inline`` (no inline script or style can
run, whatever a hostile subject smuggles into a page), ``X-Frame-Options: DENY``, ``nosniff``,
``Referrer-Policy: no-referrer`` (client links carry their token in the path; it must not leak
to another site through the Referer header) and ``Cache-Control: no-store`` on pages.

CSRF: a signed double submit. A random nonce lives in an HttpOnly, SameSite=Strict cookie; each
form carries HMAC(secret, nonce) in a hidden field. Another site can neither read the cookie
nor compute the field, and a cookie planted by a sibling subdomain fails without the secret.
Every POST route is declared with ``form_post``, which checks the token before the handler
runs (``tests/integration/test_web_security.py`` checks that no POST route goes without it).
"""

from __future__ import annotations

import base64
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "dispatchd_csrf"
CSRF_FIELD = "csrf"
_NEW_NONCE = "csrf_new_nonce"  # key in the request's state: a nonce the response must set

CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every response, the CSRF cookie when a page
    made a new nonce, and a refusal of unsafe methods whose Origin is another site."""

    def __init__(self, app: ASGIApp, secure_cookies: bool = False, hsts: bool = False):
        self.app = app
        self.secure_cookies = secure_cookies
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and not _same_origin(scope):
            await Response("Cross-site request refused.", 403, media_type="text/plain")(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                for name, value in self._headers(scope["path"]):
                    if name not in present:
                        headers.append((name, value))
                nonce = state.get(_NEW_NONCE)
                if nonce:
                    headers.append((b"set-cookie", _cookie(nonce, self.secure_cookies)))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                   (b"x-frame-options", b"DENY"),
                   (b"x-content-type-options", b"nosniff"),
                   (b"referrer-policy", b"no-referrer"),
                   (b"cross-origin-opener-policy", b"same-origin"),
                   (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                   (b"cache-control", b"public, max-age=3600" if path.startswith("/static/") else b"no-store")]
        if self.hsts:
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        return headers


def _same_origin(scope: Scope) -> bool:
    """An Origin header, when the browser sends one, must name this host (behind a proxy the
    scheme may differ, so only the host and port are compared)."""
    headers = dict(scope["headers"])
    origin = headers.get(b"origin")
    # None: older browsers and non-browser clients. "null": what a browser sends with a form POST
    # from a page whose Referrer-Policy is no-referrer (ours), by the Fetch standard. The CSRF token
    # still decides for both.
    if origin is None or origin == b"null":
        return True
    host = headers.get(b"x-forwarded-host") or headers.get(b"host") or b""
    return urlsplit(origin.decode("latin-1")).netloc.lower() == host.decode("latin-1").lower()


def _cookie(nonce: str, secure: bool) -> bytes:
    flags = "; Secure" if secure else ""
    return f"{CSRF_COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict{flags}".encode()


def _sign(secret: bytes, nonce: str) -> str:
    digest = hmac.digest(secret, f"csrf:{nonce}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest[:18]).decode()


def csrf_token(request: Request, secret: bytes) -> str:
    """The token this page's forms carry; makes (and has the response set) a nonce if the
    browser has none yet."""
    state = request.scope.setdefault("state", {})
    nonce = request.cookies.get(CSRF_COOKIE) or state.get(_NEW_NONCE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(16)
        state[_NEW_NONCE] = nonce
    return _sign(secret, nonce)


def csrf_valid(request: Request, secret: bytes, submitted: object) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(submitted.encode(), _sign(secret, nonce).encode())


FormHandler = Callable[[Request, FormData], Any]


def form_post(handler: FormHandler, secret: Callable[[], bytes], max_files: Callable[[], int] = lambda: 0,
              ) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for a POST form: parse the form, refuse it (403) without a valid CSRF
    token, then run ``handler(request, form)`` (in a worker thread when it is a plain function:
    handlers call flows, which talk to the database)."""

    async def endpoint(request: Request) -> Response:
        async with request.form(max_files=max_files(), max_fields=100) as form:
            if not csrf_valid(request, secret(), form.get(CSRF_FIELD)):
                raise HTTPException(403, "This form has expired. Go back, reload the page and send it again.")
            if inspect.iscoroutinefunction(handler):
                return await handler(request, form)
            return await run_in_threadpool(handler, request, form)

    endpoint.csrf_checked = True  # type: ignore[attr-defined]
    endpoint.__name__ = getattr(handler, "__name__", "form_post")
    return endpoint


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (413), by Content-Length before reading and by
    counting while reading (a chunked upload has no length)."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await Response("Too large.", 413, media_type="text/plain")(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, "Too large.")
            return message

        await self.app(scope, counted, send)
