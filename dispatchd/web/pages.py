"""Pages: ``templates/web/<name>.html.j2`` rendered into a response, every one autoescaped.

A deployment's own templates directory may carry a ``web/`` of its own; what it lacks comes
from the shipped templates (an older ``dispatchd init`` copy has no web pages at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dispatchd.defaults import default_dir
from dispatchd.web.security import CSRF_FIELD, csrf_token


class Pages:
    def __init__(self, templates_dir: Path):
        directories = [templates_dir / "web", default_dir("templates") / "web"]
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in dict.fromkeys(directories)]),
            undefined=StrictUndefined,
            autoescape=True,  # every page: subjects and bodies are hostile until shown otherwise
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def render(self, request: Request, name: str, secret: bytes, status: int = 200, **context: Any) -> HTMLResponse:
        """Page ``name`` with ``context``; every page gets ``request`` and ``csrf_token()``
        (called by the ``csrf`` macro of ``_forms.html.j2``, so only pages with a form set
        the CSRF cookie)."""
        html = self.env.get_template(f"{name}.html.j2").render(
            request=request, csrf_token=lambda: csrf_token(request, secret), csrf_field_name=CSRF_FIELD,
            **context)
        return HTMLResponse(html, status_code=status)
