"""Job ``second-opinion``: ask an OpenAI-compatible chat endpoint about the requests the triage
model left in triage, and route those it is sure of as a reviewer's ``type X`` would.

Off without ``[second_opinion]`` in config.toml: no request is then sent anywhere. With it,
each run (every minute by default) takes the oldest waiting tasks (``store/second_opinion``:
a known client's own request, untyped, untouched, no emergency, not yet answered), at most
``max_per_run``, and for each:

1. asks the endpoint, outside any transaction (a call may take ``timeout`` seconds; intake and
   the sender must not wait for it);
2. in one transaction, checks that the task is still untouched in triage and then either
   routes it (``flows.commands.reroute_as``: queue, SLA, assignee, the client and assignee
   told, the audit entry "classified Design (0.86) by second opinion llama3.1:8b"), or leaves
   it in triage with the answer as an audit note ("none", below the threshold, an emergency).

What it never does: guess for a sender who only claims a client, override a type the client
named, or teach the triage model (its routing is no correction: ``mark_corrected`` is not
called, so the model never learns from a chat model's guesses). A failed call (no answer in
time, refused, a 5xx, an answer that is no verdict) leaves the task in triage and is recorded;
the task is asked again on a later run, three calls in all. After three failed calls in a row
the endpoint is left alone for five minutes (``llm/breaker``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import structlog
from sqlmodel import Session

from dispatchd.config import Config, SecondOpinionConfig
from dispatchd.domain.intake import Directory
from dispatchd.domain.models import Priority, Request, Status
from dispatchd.domain.permissions import Actor
from dispatchd.domain.second_opinion import (ANSWERED_EVENT, FAILED_EVENT, MAX_ATTEMPTS, Opinion, Unusable, Verdict,
                                             actor, build_messages, decide, emergency, read_answer)
from dispatchd.errors import ChatEndpointError
from dispatchd.flows.commands import reroute_as
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.outgoing import enqueue
from dispatchd.flows.replies import command_context
from dispatchd.llm.chat import ChatClient
from dispatchd.store import queries
from dispatchd.store import second_opinion as store
from dispatchd.store.db import write_turn
from dispatchd.store.tables import Task

log = structlog.get_logger("dispatchd.second_opinion")
ORIGIN = "second-opinion"  # the audit entries' message_id: no email carried the change
# A run starts no call that could end after this: runs are a minute apart, and APScheduler skips
# (and warns about) a run whose predecessor is still going. A slow model's rest waits a minute.
RUN_SECONDS = 50.0


def second_opinion_job(deps: IntakeDeps) -> Counter[str]:
    """One run: the oldest waiting tasks asked about, one call each; how many ended how."""
    settings = deps.config.second_opinion
    counts: Counter[str] = Counter()
    if settings is None:
        return counts
    breaker = deps.second_opinion_breaker
    if not breaker.allows(deps.clock.now()):
        counts["paused"] += 1
        return counts
    waiting = _pick(deps, settings.max_per_run)
    if not waiting:
        return counts
    client = ChatClient(settings.url, settings.model, settings.timeout, settings.api_key.reveal())
    started = time.monotonic()
    for done, task in enumerate(waiting):
        if not breaker.allows(deps.clock.now()):
            counts["paused"] += 1  # it opened during this run: the rest wait for the next
            break
        if done and time.monotonic() - started + settings.timeout > RUN_SECONDS:
            counts["left_for_next_run"] += len(waiting) - done
            break
        counts[_ask(task, client, settings, deps)] += 1
    return +counts


def triage_queues(deps: IntakeDeps) -> frozenset[str]:
    """The triage queue, and each mailbox's own (``queue_prefix`` + triage)."""
    queue = deps.rulebook.triage_queue
    return frozenset({queue, *(m.queue_prefix + queue for m in deps.config.mailboxes)})


def _pick(deps: IntakeDeps, limit: int) -> list[store.Waiting]:
    picked: list[store.Waiting] = []
    with Session(deps.engine) as session:
        for waiting in store.waiting_for_opinion(session, triage_queues(deps)):
            if _files_for_client(waiting.sender, waiting.client, deps.config):
                picked.append(waiting)
                if len(picked) >= limit:
                    break
    return picked


def _files_for_client(sender: str, client: str, config: Config) -> bool:
    """The sender is one of the client's own and no staff member (whose requests a person
    routes); asked again at each run, since config.toml may have changed since intake."""
    if config.staff_by_email(sender) is not None:
        return False
    return any(c.name == client for c in Directory(config.clients, config.staff).clients_of_sender(sender))


def _ask(waiting: store.Waiting, client: ChatClient, settings: SecondOpinionConfig, deps: IntakeDeps) -> str:
    """Ask about one task and record the outcome; the outcome's name for the job's counts."""
    book = deps.rulebook
    messages = build_messages(book.types, book.triage_model.out_of_scope, waiting.subject, waiting.body)
    try:
        text = asyncio.run(client.complete(messages))
    except ChatEndpointError as exc:
        error = f"{type(exc).__name__}: {exc}"
        return _failed(waiting, error, error, settings, deps)
    answer = read_answer(text, (t.name for t in book.types))
    if isinstance(answer, Unusable):
        # The answer's words may echo the client's mail: kept with the task, not in the log.
        error = f"unusable answer ({answer.why})"
        return _failed(waiting, error, f"{error}: {answer.excerpt!r}", settings, deps)
    if deps.second_opinion_breaker.succeeded():
        log.info("second_opinion.resumed", task_id=waiting.task_id, endpoint=client.endpoint)
    return _settle(waiting, answer, settings, deps)


def _failed(waiting: store.Waiting, error: str, detail: str, settings: SecondOpinionConfig,
            deps: IntakeDeps) -> str:
    """A call that brought no usable answer: recorded on the task (it counts as an attempt), and
    counted by the breaker. An outage is logged when it begins, not at every trial call."""
    breaker = deps.second_opinion_breaker
    now = deps.clock.now()
    trial = breaker.open_until() is not None  # the pause was over: this call tried the endpoint again
    attempt = waiting.failed_calls + 1
    (log.debug if trial else log.warning)("second_opinion.failed", task_id=waiting.task_id, attempt=attempt,
                                          error=error)
    if breaker.failed(now):
        log.warning("second_opinion.paused", task_id=waiting.task_id, error=error,
                    until=(breaker.open_until() or now).isoformat(), failures_in_a_row=breaker.failures)
    last = attempt >= MAX_ATTEMPTS
    note = f"{actor(settings.model)}: no usable answer ({detail}); call {attempt} of {MAX_ATTEMPTS}" + \
        ("; not asked again" if last else "")
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        task = session.get(Task, waiting.task_id)
        if task is not None:
            queries.add_event(session, task, now, actor(settings.model), FAILED_EVENT, note, ORIGIN)
    return "given_up" if last else "failed"


def _settle(waiting: store.Waiting, opinion: Opinion, settings: SecondOpinionConfig, deps: IntakeDeps) -> str:
    """In one transaction: route the task if the answer is sure and the task still waits;
    otherwise keep the answer in its audit log."""
    verdict = decide(opinion, settings.threshold, settings.model)
    who = actor(settings.model)
    now = deps.clock.now()
    with write_turn(deps.engine), Session(deps.engine) as session, session.begin():
        task = session.get(Task, waiting.task_id, with_for_update=True)
        if task is None:
            return "gone"
        overtaken = _changed_since(task, waiting, deps) or (
            "it was answered already" if store.was_answered(session, waiting.task_id) else None)
        if overtaken:
            queries.add_event(session, task, now, who, ANSWERED_EVENT, f"{verdict.note}; not used: {overtaken}",
                              ORIGIN)
            log.info("second_opinion.overtaken", task_id=task.id, answer=str(opinion), why=overtaken)
            return "overtaken"
        if verdict.route_as is not None:
            held = emergency(_request_of(task, waiting), verdict.route_as, deps.rulebook)
            verdict = Verdict(None, f"{who}: {opinion}: {held}") if held else verdict
        if verdict.route_as is None:
            queries.add_event(session, task, now, who, ANSWERED_EVENT, verdict.note, ORIGIN)
            log.info("second_opinion.held", task_id=task.id, answer=str(opinion), note=verdict.note)
            return "held"
        ctx = command_context(session, deps.notices, deps.calendar, now, ORIGIN)
        ctx.actor = Actor(who, "system")
        # reroute_as, not the `type` command: the same routing and emails, but no mark_corrected.
        result = reroute_as(ctx, task, task.client, verdict.route_as, verdict.note, f"type {verdict.route_as}")
        ctx.announce_changes()
        enqueue(session, ctx.notices, deps.notices, now)
    log.info("second_opinion.routed", task_id=waiting.task_id, answer=str(opinion), outcome=result.text)
    return "routed"


def _changed_since(task: Task, waiting: store.Waiting, deps: IntakeDeps) -> str | None:
    """Why the task no longer waits for this answer (a person routed, took or re-prioritised it
    while the endpoint was thinking), or None."""
    if task.status != Status.RECEIVED.value or task.type is not None or task.queue not in triage_queues(deps):
        return "the task was routed meanwhile"
    if task.assignee is not None:
        return f"{task.assignee} took it meanwhile"
    if task.client != waiting.client or task.claimed_client is not None:
        return "its client changed meanwhile"
    if task.priority == Priority.P0.value:
        return "it became an emergency meanwhile"
    return None


def _request_of(task: Task, waiting: store.Waiting) -> Request:
    """The request as the rules see it, with its body (keyword rules read it), for the emergency check."""
    return Request(sender=task.sender, client=task.client, type=None, priority=None, description=task.description,
                   body=waiting.body, subject=task.subject, mailbox=task.mailbox or "")
