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

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

TEMPLATE_NAMES = ("client-received", "client-format-help", "client-status", "client-sla-late", "staff-new-task",
                  "staff-status", "staff-comment", "staff-capacity", "staff-sla", "staff-redispatched", "staff-bounce",
                  "reply-results", "reply-refused", "client-too-large", "owner-loop", "client-digest", "staff-digest", "owner-health")


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
        )

    def render(self, name: str, **context: Any) -> RenderedMail:
        """Render template ``name`` (e.g. 'client-received') into subject, text and HTML."""
        text_template = self.env.get_template(f"{name}.txt.j2")
        subject = _block(text_template, "subject", context)
        body = _block(text_template, "body", context)
        try:
            html_template = self.env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            html = None
        else:
            html = html_template.render(**context, subject=subject)
        return RenderedMail(" ".join(subject.split()), body.strip() + "\n", html)


def _block(template: Any, name: str, context: dict[str, Any]) -> str:
    if name not in template.blocks:
        raise KeyError(f"template {template.name} has no {{% block {name} %}}")
    return "".join(template.blocks[name](template.new_context(context)))
