"""Every email dispatchd sends is rendered here, from templates/<audience>-<event>.{txt,html}.j2.

A text template defines ``{% block subject %}`` and ``{% block body %}``; the optional HTML
template defines ``{% block body %}`` and is autoescaped, so nothing a client typed can
become markup. StrictUndefined turns a misspelt variable into an error at ``dispatchd check``
instead of a blank in a customer's inbox.
"""

from __future__ import annotations

import stat
import threading
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
        self.env = _environment(directory)
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


# One environment (and so one set of compiled templates) per templates directory, for as long as
# its files stay as they are: a start compiled every template twice (the check's sample renders,
# then the renderer), and a reload twice again; compiling is nine tenths of the check's 0.11 s.
_environments: dict[str, tuple[tuple[tuple[str, int, int, int, int], ...], Environment]] = {}
_environments_lock = threading.Lock()
_KEPT_DIRECTORIES = 4


def _environment(directory: Path) -> Environment:
    """The directory's environment, or a new one if a file was added, removed, replaced or edited
    (about a millisecond of stat calls per Renderer)."""
    key, files = str(directory.resolve()), _files(directory)
    with _environments_lock:
        known = _environments.get(key)
        if known is not None and known[0] == files:
            return known[1]
        env = Environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # An environment serves until a file changes, and a Renderer lives until the next
            # start or SIGHUP: checking each file's mtime on every email was a tenth of the cost
            # of rendering.
            auto_reload=False,
        )
        _environments.pop(key, None)
        while len(_environments) >= _KEPT_DIRECTORIES:  # the oldest first (the tests make many)
            _environments.pop(next(iter(_environments)))
        _environments[key] = (files, env)
        return env


def _files(directory: Path) -> tuple[tuple[str, int, int, int, int], ...]:
    """Each file under ``directory``: path, size, inode, and the times of its last write and of
    its last change of any kind (ctime: a copy that keeps the old mtime still changes it)."""
    found = []
    for path in sorted(directory.rglob("*")):
        try:
            status = path.stat()
        except OSError:  # removed meanwhile
            continue
        if stat.S_ISREG(status.st_mode):
            found.append((str(path), status.st_size, status.st_ino, status.st_mtime_ns, status.st_ctime_ns))
    return tuple(found)


def _block(template: Template, name: str, context: Context) -> str:
    if name not in template.blocks:
        raise KeyError(f"template {template.name} has no {{% block {name} %}}")
    return "".join(template.blocks[name](context))
