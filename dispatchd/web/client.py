"""The client side: a client's requests through their personal link, and the request form.

Every page under ``/c/<token>`` first opens the link (``flows/portal.open_link``): a link that
is not ours shows nothing about anyone; an expired one offers a fresh link by email; a task of
another client is "not found". Handlers are plain functions (Starlette runs them in worker
threads): they read and write the database through flows.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from sqlmodel import Session

from dispatchd.domain.links import LinkState
from dispatchd.domain.models import MailAttachment
from dispatchd.flows.client_actions import RequestForm, client_act, send_fresh_link, submit_request
from dispatchd.flows.client_portal import client_file, client_request, client_requests
from dispatchd.flows.labels import STATUS_LABELS
from dispatchd.flows.portal import OpenedLink, open_link
from dispatchd.web.app import Web
from dispatchd.web.files import download

_LINK_WORDS = {
    LinkState.EXPIRED: "This link has expired.",
    LinkState.REVOKED: "This link was withdrawn.",
    LinkState.INVALID: "This link does not work.",
}


def routes(web: Web) -> list[BaseRoute]:
    def home(request: Request) -> Response:
        return web.page(request, "home")

    def opened(request: Request) -> OpenedLink:
        deps = web.deps
        with Session(deps.engine) as session:
            return open_link(session, deps.config, deps.web_secret, request.path_params["token"],
                             deps.clock.now())

    def refused(request: Request, link: OpenedLink) -> Response:
        return web.page(request, "link", status=403, state=link.state.value, words=_LINK_WORDS[link.state],
                        token=request.path_params["token"], sent=None)

    def requests(request: Request) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        before = request.query_params.get("before", "")
        rows, next_before, total = client_requests(web.deps, link.client, int(before) if before.isdigit() else None)
        return web.page(request, "requests", client=link.client.name, rows=rows, next_before=next_before,
                        total=total, token=request.path_params["token"])

    def one_request(request: Request, result: object = None, status: int = 200) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        page = client_request(web.deps, link.client, request.path_params["task_id"])
        if page is None:
            raise HTTPException(404, "There is no such request among yours.")
        return web.page(request, "request", status=status, client=link.client.name, page=page, result=result,
                        status_labels=STATUS_LABELS,
                        token=request.path_params["token"], key=secrets.token_urlsafe(16))

    def file(request: Request) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        found = client_file(web.deps, link.client, request.path_params["file_id"])
        if found is None:
            raise HTTPException(404, "There is no such file among yours.")
        return download(*found)

    def act(request: Request, form: FormData) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        result = client_act(web.deps, link.client, link.link.contact, request.path_params["task_id"],
                            str(form.get("action", "")), str(form.get("words", "")), str(form.get("key", "")))
        if result.ok:
            web.wake()
        return one_request(request, result, 200 if result.ok else 400)

    def new_form(request: Request) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        return _form_page(request, link, {}, [])

    def _form_page(request: Request, link: OpenedLink, values: dict[str, object], problems: list[str],
                   status: int = 200) -> Response:
        deps = web.deps
        return web.page(request, "new", status=status, client=link.client.name,
                        types=[t.name for t in deps.rulebook.types], values=values, problems=problems,
                        token=request.path_params["token"], key=values.get("key") or secrets.token_urlsafe(16),
                        max_mb=deps.config.web.max_upload_bytes // (1024 * 1024),
                        max_files=deps.config.web.max_files)

    def submit(request: Request, form: FormData) -> Response:
        link = opened(request)
        if not link.valid:
            return refused(request, link)
        files = tuple(MailAttachment(f.filename or "file", f.content_type or "application/octet-stream",
                                     f.file.read())
                      for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename)
        values = {"type": str(form.get("type", "")), "description": str(form.get("description", "")),
                  "details": str(form.get("details", "")), "urgent": form.get("urgent") == "yes",
                  "key": str(form.get("key", ""))}
        submitted = submit_request(web.deps, link.client, link.link.contact, RequestForm(files=files, **values))
        if submitted.problems:
            return _form_page(request, link, values, list(submitted.problems), status=400)
        web.wake()
        return web.page(request, "submitted", client=link.client.name, task_id=submitted.task_id,
                        again=submitted.again, token=request.path_params["token"])

    def renew(request: Request, form: FormData) -> Response:
        link = opened(request)
        if link.state is not LinkState.EXPIRED:
            return refused(request, link)
        sent = send_fresh_link(web.deps, link.client, link.link.contact)
        if sent:
            web.wake()
        return web.page(request, "link", status=200, state=link.state.value, words=_LINK_WORDS[link.state],
                        token=request.path_params["token"], sent=sent)

    return [
        Route("/", home, name="home"),
        Route("/c/{token}", requests, name="client_requests"),
        Route("/c/{token}/r/{task_id:int}", one_request, name="client_request"),
        web.form("/c/{token}/r/{task_id:int}", act, name="client_act"),
        Route("/c/{token}/files/{file_id:int}", file, name="client_file"),
        Route("/c/{token}/new", new_form, name="client_new"),
        web.form("/c/{token}/new", submit, name="client_submit"),
        web.form("/c/{token}/renew", renew, name="client_renew"),
    ]
