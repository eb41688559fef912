"""The staff pages about tasks: the list with filters and search, one task with its audit trail,
the triage queue, and the buttons, which run the reply commands (``flows/staff_actions.act``)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dispatchd.domain.models import Status
from dispatchd.flows.staff_actions import WEB_COMMANDS, act, staff_actor
from dispatchd.flows.staff_views import MOVES, offered, task_page, task_record, triage_queue
from dispatchd.store.queries import TaskFilter
from dispatchd.web.app import Web
from dispatchd.web.staff_auth import staff_form, staff_page

FILTERS = ("queue", "status", "client", "assignee", "q")
PAGE_SIZE = 50


def _filter(request: Request) -> tuple[TaskFilter, dict[str, str]]:
    """The list's filter from the query string; unknown values simply match nothing."""
    given = {k: request.query_params.get(k, "").strip()[:200] for k in FILTERS}
    before = request.query_params.get("before", "")
    wanted = TaskFilter(queue=given["queue"] or None, status=given["status"] or None,
                        client=given["client"] or None,
                        assignee="" if given["assignee"] == "nobody" else (given["assignee"] or None),
                        text=given["q"] or None, before=int(before) if before.isdigit() else None)
    return wanted, given


def _choices(web: Web) -> dict[str, list[str]]:
    deps = web.deps
    queues = sorted({*deps.rulebook.queues, deps.rulebook.triage_queue, *(q for s in deps.config.staff
                                                                           for q in s.queues)})
    return {"queue": queues, "status": [s.value for s in Status], "client": sorted(c.name for c in deps.config.clients),
            "assignee": [s.email for s in deps.config.staff], "type": [t.name for t in deps.rulebook.types],
            "staff": [s.name for s in deps.config.staff]}


def routes(web: Web) -> list[BaseRoute]:
    def tasks(request: Request, email: str) -> Response:
        wanted, given = _filter(request)
        page = task_page(web.deps, wanted, PAGE_SIZE)
        query = {k: v for k, v in given.items() if v}
        more = f"?{urlencode({**query, 'before': page.next_before})}" if page.next_before else None
        return web.page(request, "staff-tasks", me=email, page=page, given=given, choices=_choices(web), more=more,
                        section="tasks")

    def one(request: Request, email: str, message: str = "", ok: bool = True, status: int = 200) -> Response:
        record = task_record(web.deps, request.path_params["task_id"])
        if record is None:
            raise HTTPException(404, "No such task.")
        actor = staff_actor(web.deps, email)
        done = request.query_params.get("done", "")
        if not message and done in WEB_COMMANDS:  # only our own words: the name of a command that ran
            message = f"Done: {done}."
        return web.page(request, "staff-task", status=status, me=email, record=record, message=message, ok=ok,
                        offered=offered(actor, record.task) if actor else set(), moves=MOVES,
                        choices=_choices(web), section="tasks")

    def triage(request: Request, email: str) -> Response:
        items, total = triage_queue(web.deps)
        actor = staff_actor(web.deps, email)
        done = request.query_params.get("done", "")
        message = f"Done: task #{done} routed." if done.isdigit() else ""
        return web.page(request, "staff-triage", me=email, items=items, total=total, choices=_choices(web),
                        offered={i.task.id: offered(actor, i.task) for i in items} if actor else {},
                        message=message, section="triage")

    def action(request: Request, form: FormData, email: str) -> Response:
        task_id = request.path_params["task_id"]
        name = str(form.get("command", ""))
        result = act(web.deps, email, task_id, name, str(form.get("argument", ""))[:2000])
        if not result.ok:
            return one(request, email, f"Not done: {result.text}", ok=False, status=409)
        web.wake()  # the change's emails are in the outbox
        if form.get("back") == "triage":
            return RedirectResponse(f"/staff/triage?done={task_id}", 303)
        return RedirectResponse(f"/staff/tasks/{task_id}?done={name}", 303)

    return [Route("/staff/tasks", staff_page(web, tasks), name="staff_tasks"),
            Route("/staff/tasks/{task_id:int}", staff_page(web, one), name="staff_task"),
            Route("/staff/triage", staff_page(web, triage), name="staff_triage"),
            web.form("/staff/tasks/{task_id:int}/act", staff_form(web, action), name="staff_act")]
