"""Who is signed in on the staff pages, and the sign-in pages themselves.

Two ways in: the link emailed by ``flows/staff_signin`` (its page asks to confirm with a button,
so a mail scanner that opens links does not spend it), or, when ``[web] trusted_header`` is set,
the address a reverse proxy puts in that header (off by default: it is only safe when the proxy
is the only way to reach the app and overwrites the header). The session cookie is HttpOnly,
SameSite=Lax (following a link from an email keeps the session; a cross-site POST does not
carry it) and Secure when ``base_url`` is https. Nothing about a task is served without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dispatchd.flows.staff_signin import SignInPolicy, link_email, redeem_link, request_link, session_email, sign_out
from dispatchd.web.app import Web

SESSION_COOKIE = "dispatchd_staff"
SIGNIN = "/staff/signin"


def policy(web: Web) -> SignInPolicy:
    return SignInPolicy(session_hours=web.deps.config.web.staff_session_hours)


def signed_in(web: Web, request: Request) -> str | None:
    """The staff address this request acts as, or None."""
    deps = web.deps
    header = deps.config.web.trusted_header
    if header:
        claimed = request.headers.get(header, "").strip().lower()
        if claimed and deps.config.staff_by_email(claimed):
            return claimed
    return session_email(deps, request.cookies.get(SESSION_COOKIE))


def staff_page(web: Web, handler: Callable[[Request, str], Any]) -> Callable[[Request], Any]:
    """A GET endpoint for signed-in staff; anyone else is sent to the sign-in page."""

    async def endpoint(request: Request) -> Response:
        email = await run_in_threadpool(signed_in, web, request)
        if email is None:
            return RedirectResponse(SIGNIN, 303)
        return await run_in_threadpool(handler, request, email)

    endpoint.__name__ = getattr(handler, "__name__", "staff_page")
    return endpoint


def staff_form(web: Web, handler: Callable[[Request, FormData, str], Response]) -> Callable[[Request, FormData], Response]:
    """A form handler (CSRF-checked by ``Web.form``) for signed-in staff only: 403 otherwise."""

    def checked(request: Request, form: FormData) -> Response:
        email = signed_in(web, request)
        if email is None:
            raise HTTPException(403, "Sign in first.")
        return handler(request, form, email)

    checked.__name__ = getattr(handler, "__name__", "staff_form")
    return checked


def routes(web: Web) -> list[BaseRoute]:
    def ask(request: Request) -> Response:
        return web.page(request, "staff-signin", sent=False, address="")

    def send(request: Request, form: FormData) -> Response:
        address = str(form.get("email", ""))[:254]
        base = web.deps.config.web.base_url or str(request.base_url).rstrip("/")
        if request_link(web.deps, address, f"{base}{SIGNIN}/", policy(web)) == "sent":
            web.wake()
        # The same answer whatever happened: the page tells nobody who is staff.
        return web.page(request, "staff-signin", sent=True, address=address)

    def confirm(request: Request) -> Response:
        token = request.path_params["token"]
        email = link_email(web.deps, token)
        status = 200 if email else 410
        return web.page(request, "staff-signin-confirm", status=status, email=email, token=token)

    def redeem(request: Request, form: FormData) -> Response:
        opened = redeem_link(web.deps, request.path_params["token"], policy(web))
        if opened is None:
            return web.page(request, "staff-signin-confirm", status=410, email=None, token="")
        response = RedirectResponse("/staff", 303)
        secure = (web.deps.config.web.base_url or "").startswith("https://")
        response.set_cookie(SESSION_COOKIE, opened.token, max_age=policy(web).session_hours * 3600, path="/",
                            secure=secure, httponly=True, samesite="lax")
        return response

    def leave(request: Request, form: FormData) -> Response:
        sign_out(web.deps, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(SIGNIN, 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def ask_page(request: Request) -> Response:
        return ask(request)

    async def confirm_page(request: Request) -> Response:  # reads the database: in a worker thread
        return await run_in_threadpool(confirm, request)

    return [Route(SIGNIN, ask_page, name="staff_signin"),
            web.form(SIGNIN, send, name="staff_signin_send"),
            Route(SIGNIN + "/{token}", confirm_page, name="staff_signin_link"),
            web.form(SIGNIN + "/{token}", redeem, name="staff_signin_redeem"),
            web.form("/staff/signout", leave, name="staff_signout")]
