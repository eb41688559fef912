"""Every email dispatchd sends is rendered here, from templates/<audience>-<event>.{txt,html}.j2.

A text template defines ``{% block subject %}`` and ``{% block body %}``; the optional HTML
template defines ``{% block body %}`` and is autoescaped, so nothing a client typed can
become markup. StrictUndefined turns a misspelt variable into an error at ``dispatchd check``
instead of a blank in a customer's inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateNotFound, select_autoescape
from jinja2.runtime import Context

TEMPLATE_NAMES = ("client-received", "client-format-help", "client-status", "client-sla-late", "staff-new-task",
                  "staff-status", "staff-comment", "staff-capacity", "staff-sla", "staff-redispatched", "staff-bounce",
                  "reply-results", "reply-refused", "reply-question", "staff-cancel-request", "client-too-large", "owner-loop", "client-digest", "staff-digest", "owner-health",
                  "client-followed", "client-message", "staff-signin", "client-link", "client-call-options",
                  "client-call-which", "client-call-delayed", "call-invitation", "call-reminder")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None


class Renderer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.env = Environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # A Renderer lives until the next start or SIGHUP, which builds a new one: checking
            # each file's mtime on every email was a tenth of the cost of rendering.
            auto_reload=False,
        )
        self._templates: dict[str, tuple[Template, Template | None]] = {}

    def render(self, name: str, **context: Any) -> RenderedMail:
        """Render template ``name`` (e.g. 'client-received') into subject, text and HTML."""
        text_template, html_template = self._pair(name)
        blocks = text_template.new_context(context)  # one context for both blocks
        subject, body = _block(text_template, "subject", blocks), _block(text_template, "body", blocks)
        html = html_template.render(**context, subject=subject) if html_template is not None else None
        return RenderedMail(" ".join(subject.split()), body.strip() + "\n", html)

    def _pair(self, name: str) -> tuple[Template, Template | None]:
        """The text template and the optional HTML one, looked up once (a missing file too)."""
        pair = self._templates.get(name)
        if pair is None:
            try:
                html: Template | None = self.env.get_template(f"{name}.html.j2")
            except TemplateNotFound:
                html = None
            pair = self._templates[name] = (self.env.get_template(f"{name}.txt.j2"), html)
        return pair


def _block(template: Template, name: str, context: Context) -> str:
    if name not in template.blocks:
        raise KeyError(f"template {template.name} has no {{% block {name} %}}")
    return "".join(template.blocks[name](context))
