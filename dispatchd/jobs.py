"""Scheduler wiring only: which job runs when. The jobs themselves live in flows/.

Every job is also runnable once with ``dispatchd job NAME``. Schedules are crontab lines in
``[schedule]`` of config.toml, read in the business calendar's time zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from functools import partial

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from dispatchd.flows.backup import backup_job
from dispatchd.flows.booking import book_calls
from dispatchd.flows.digests import client_digests, health_reports, staff_digests
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.redispatch import redispatch
from dispatchd.flows.retention import prune_job
from dispatchd.flows.second_opinion import second_opinion_job
from dispatchd.flows.sla import check_slas
from dispatchd.flows.training import train_job

log = structlog.get_logger("dispatchd.jobs")

JOBS: dict[str, Callable[[IntakeDeps], Counter[str]]] = {
    "sla": check_slas,
    "redispatch": redispatch,
    "digest": client_digests,
    "staff-digest": staff_digests,
    "health": health_reports,
    "train": train_job,
    "backup": backup_job,
    "prune": prune_job,
    "booking": book_calls,
    "second-opinion": second_opinion_job,
}


def build_scheduler(current: Callable[[], IntakeDeps], after_job: Callable[[], None]) -> AsyncIOScheduler:
    """An AsyncIOScheduler on the running loop with one cron job per configured schedule.

    ``current`` gives the dependencies at run time, so a reload (SIGHUP) reaches the jobs.
    """
    deps = current()
    zone = deps.config.calendar.timezone
    scheduler = AsyncIOScheduler(timezone=zone)
    for name, crontab in deps.config.schedule.items():
        if name == "booking" and deps.config.booking is None:
            continue  # no calendars: nothing to book, and an idle daemon wakes for nothing
        if name == "second-opinion" and deps.config.second_opinion is None:
            continue  # off by default: nobody to ask
        scheduler.add_job(_runner(name, current, after_job), CronTrigger.from_crontab(crontab, timezone=zone),
                          id=name, name=name, coalesce=True, max_instances=1, misfire_grace_time=3600)
    if _untrained(deps):
        # Day one: a model from the rules' examples now, not at the first nightly run, so that
        # plain-words mail is read from the first hour (in a thread: intake goes on meanwhile).
        scheduler.add_job(_runner("train", current, after_job), id=FIRST_TRAINING, name=FIRST_TRAINING,
                          max_instances=1, misfire_grace_time=None)
    return scheduler


FIRST_TRAINING = "train-first"


def _untrained(deps: IntakeDeps) -> bool:
    """Training is scheduled, the rules use the model, and there is none to use yet."""
    return ("train" in deps.config.schedule and deps.rulebook.triage_model.enabled
            and deps.triage.current() is None)


def run_job(name: str, deps: IntakeDeps) -> Counter[str] | None:
    """Run a job unless another instance is running it (None then). Every instance schedules
    every job; what one run sends is recorded, so the next run, wherever, does not repeat it."""
    with deps.coordinator.exclusive(f"job:{name}") as ours:
        if not ours:
            log.info("job.skipped", job=name, reason="running on another instance")
            return None
        return JOBS[name](deps)


# Jobs a stopping daemon need not wait for: training writes its model in one transaction at
# its end, so one cut short leaves nothing behind (and it can take minutes on a busy machine);
# the second opinion may be waiting for a chat model, applies each answer in a transaction of
# its own, and asks again next time about a request whose answer it did not get to record.
ABANDONED_AT_STOP = frozenset({"train", "second-opinion"})


def _runner(name: str, current: Callable[[], IntakeDeps], after_job: Callable[[], None]):  # type: ignore[no-untyped-def]
    async def run() -> None:
        try:
            if name in ABANDONED_AT_STOP:
                result = await _in_daemon_thread(run_job, name, current())
            else:
                result = await asyncio.to_thread(run_job, name, current())
        except Exception:  # a failing job must not stop the scheduler; it runs again next time
            log.exception("job.failed", job=name)
            return
        if result is not None:
            log.info("job.done", job=name, **result)
            after_job()
    return run


async def _in_daemon_thread(job: Callable[[str, IntakeDeps], Counter[str] | None], name: str,
                            deps: IntakeDeps) -> Counter[str] | None:
    """``asyncio.to_thread`` in a daemon thread: the event loop's executor would hold the
    process at exit until the job is done."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Counter[str] | None] = loop.create_future()

    def work() -> None:
        try:
            outcome = partial(_settle, done, job(name, deps), None)
        except BaseException as exc:  # handed to the awaiting coroutine, which logs it
            outcome = partial(_settle, done, None, exc)
        with contextlib.suppress(RuntimeError):  # the loop has closed: the daemon stopped meanwhile
            loop.call_soon_threadsafe(outcome)

    threading.Thread(target=work, name=f"job-{name}", daemon=True).start()
    return await done


def _settle(future: asyncio.Future[Counter[str] | None], result: Counter[str] | None,
            error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
