"""``create_app``: the Starlette app around the daemon's dependencies.

Routes are thin: parse the request, call a flow, render a page. Each side of the web app is a
module with ``routes(web) -> list[BaseRoute]`` listed in ``ROUTE_GROUPS``; POST routes are built
with ``Web.form`` so that none goes without the CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.web.pages import Pages
from dispatchd.web.security import BodyLimit, FormHandler, SecurityHeaders, form_post

log = structlog.get_logger("dispatchd.web")
STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 1024 * 1024  # the text fields of a form, beside its files


@dataclass
class Web:
    """What every route needs: the current dependencies (they change on SIGHUP), a way to wake
    the sender after a commit that queued mail, and the page renderer."""

    current: Callable[[], IntakeDeps]
    wake: Callable[[], None] = lambda: None
    _pages: dict[Path, Pages] = field(default_factory=dict)

    @property
    def deps(self) -> IntakeDeps:
        return self.current()

    @property
    def secret(self) -> bytes:
        return self.current().web_secret

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        templates = self.deps.config.templates_dir
        pages = self._pages.get(templates)
        if pages is None:
            pages = self._pages[templates] = Pages(templates)
        zone = self.deps.calendar.zone
        return pages.render(request, name, self.secret, status, when=lambda moment: _when(moment, zone), **context)

    def form(self, path: str, handler: FormHandler, name: str | None = None) -> Route:
        """A POST route for a form, CSRF-checked before ``handler(request, form)`` runs."""
        endpoint = form_post(handler, lambda: self.secret, lambda: self.deps.config.web.max_files)
        return Route(path, endpoint, methods=["POST"], name=name)


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or request.url.path.split("/")[1]


def _when(moment: datetime | None, zone: tzinfo) -> str:
    """A moment as pages show it, in the business calendar's time zone: 'Tue 1 Dec 2026, 14:05'."""
    if moment is None:
        return ""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def _route_groups() -> tuple[Callable[[Web], list[BaseRoute]], ...]:
    from dispatchd.web import client, staff, staff_auth, staff_dashboard

    return (client.routes, staff_auth.routes, staff_dashboard.routes, staff.routes)


def create_app(current: Callable[[], IntakeDeps], wake: Callable[[], None] = lambda: None) -> Starlette:
    """The web app; ``current()`` returns the dependencies in use (the daemon's after a reload)."""
    web = Web(current, wake)
    config = current().config.web
    secure = bool(config.base_url and config.base_url.startswith("https://"))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 500:
            # The path can hold a client's link: log where, not which.
            log.error("web.error", route=_route_name(request), error=f"{type(exc).__name__}: {exc}",
                      exc_info=exc)
        detail = exc.detail if isinstance(exc, HTTPException) else "Something went wrong on our side."
        return web.page(request, "error", status=status, status_code=status, detail=detail)

    routes: list[BaseRoute] = [Route("/healthz", health, name="health"),
                               Mount("/static", StaticFiles(directory=STATIC), name="static")]
    for group in _route_groups():
        routes.extend(group(web))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, secure_cookies=secure, hsts=secure),
                    Middleware(BodyLimit, limit=lambda: web.deps.config.web.max_upload_bytes + FORM_OVERHEAD)],
        exception_handlers={HTTPException: error, Exception: error},
    )
    app.state.web = web
    return app
