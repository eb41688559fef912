"""The client side: a client's requests through their personal link, and the request form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dispatchd.web.app import Web


def routes(web: Web) -> list[BaseRoute]:
    async def home(request: Request) -> Response:
        return web.page(request, "home")

    return [Route("/", home, name="home")]
