"""The staff dashboard: queues, people's WIP, the SLA forecast and the figures over a period.

Reads only (one session); the store's aggregate queries gather the facts, ``domain/metrics`` turns
them into figures, the health thresholds colour them. Same definitions as the health report where
they overlap (open tasks, the forecast); see ``domain/metrics`` for the rest.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from dispatchd.domain import metrics
from dispatchd.domain.metrics import DayFlow, QueueRow, Spread, WipRow
from dispatchd.flows.assignment import active_counts, away_among
from dispatchd.flows.history import PASSIVE
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.reports import queue_forecast
from dispatchd.store import dashboard as store
from dispatchd.store.dashboard import OpenWork


@dataclass(frozen=True)
class LateForecast:
    task_id: int
    queue: str
    finish: str
    due: str
    late_by_hours: float


@dataclass(frozen=True)
class Dashboard:
    generated_at: datetime
    period_days: int
    queues: list[QueueRow]
    wip: list[WipRow]
    flow: list[DayFlow]
    attainment: dict[str, float]
    first_response: Spread
    resolution: Spread
    forecast: list[LateForecast]
    forecast_at: datetime  # when the forecast was simulated (it is kept for FORECAST_SECONDS)
    backlog: int
    triage_waiting: int


# Several people with the dashboard open (or one refreshing it) share its figures for a few
# seconds: computing them is 40-90 ms of this process's CPU at 50,000 tasks, taken from intake.
FIGURES_SECONDS = 10.0
_kept: dict[int, tuple[IntakeDeps, float, Dashboard]] = {}


def dashboard(deps: IntakeDeps, period_days: int = 14) -> Dashboard:
    """Everything the dashboard page shows for the last ``period_days`` local days, as of now or
    at most ``FIGURES_SECONDS`` ago."""
    global _kept
    kept = _kept.get(period_days)
    if kept is not None and kept[0] is deps and time.monotonic() - kept[1] < FIGURES_SECONDS:
        return kept[2]
    board = _figures(deps, period_days)
    _kept = {**{days: k for days, k in _kept.items() if k[0] is deps}, period_days: (deps, time.monotonic(), board)}
    return board


def _figures(deps: IntakeDeps, period_days: int) -> Dashboard:
    now = deps.clock.now()
    zone = deps.calendar.zone
    days = metrics.days_back(now.astimezone(zone).date(), period_days)
    since = datetime.combine(days[0], datetime.min.time(), zone).astimezone(now.tzinfo)
    staff = deps.config.staff
    with Session(deps.engine) as session:
        loads = store.queue_loads(session)
        finished = store.first_deliveries(session, since)
        arrived = store.arrivals(session, since)
        left, back = store.backlog_moves(session, since)
        first_actions = store.first_staff_actions(session, since, [s.email for s in staff], PASSIVE)
        backlog = store.not_done_count(session)
        active = active_counts(session, [s.email for s in staff])
        away = away_among(session, list(staff), now)
        forecast, forecast_at = _cached_forecast(session, deps, now)
        waiting = store.triage_waiting(session, deps.rulebook.triage_queue)
    configured = {*deps.rulebook.queues, *(q for s in staff for q in s.queues)}
    return Dashboard(
        generated_at=now, period_days=period_days,
        queues=metrics.queue_rows(loads, finished, now, configured),
        wip=metrics.wip_rows([(s.name, s.email, s.wip_limit) for s in staff], active, away),
        flow=metrics.daily_flow(days, arrived.values(), [f.delivered for f in finished], left, back, backlog, zone),
        attainment=metrics.attainment(finished),
        first_response=metrics.spread(metrics.response_times(arrived, first_actions)),
        resolution=metrics.spread(metrics.resolution_times(finished)),
        forecast=forecast, forecast_at=forecast_at, backlog=backlog, triage_waiting=waiting)


# The simulation walks every open task through the business calendar (150 ms with 1,500 open): a
# dashboard refreshed by several people reuses it for a minute instead of repeating it each time.
FORECAST_SECONDS = 60.0
_last_forecast: tuple[IntakeDeps, float, datetime, list[LateForecast]] | None = None


def _cached_forecast(session: Session, deps: IntakeDeps, now: datetime) -> tuple[list[LateForecast], datetime]:
    global _last_forecast
    kept = _last_forecast
    if kept is not None and kept[0] is deps and time.monotonic() - kept[1] < FORECAST_SECONDS:
        return kept[3], kept[2]
    late = _forecast(session, store.forecast_candidates(session), deps, now)
    _last_forecast = (deps, time.monotonic(), now, late)
    return late, now


def _forecast(session: Session, candidates: list[OpenWork], deps: IntakeDeps, now: datetime) -> list[LateForecast]:
    """The health report's queue simulation, over each queue's open work: who will finish late."""
    by_queue: dict[str, list[OpenWork]] = defaultdict(list)
    for task in candidates:
        by_queue[task.queue].append(task)
    late = []
    for queue, tasks in sorted(by_queue.items()):
        for item in queue_forecast(session, queue, tasks, deps, now):  # type: ignore[arg-type]  # the columns it reads
            late.append(LateForecast(int(item["task_id"]), queue, str(item["finish"]), str(item["due"]),  # type: ignore[call-overload]
                                     float(item["late_by_hours"])))  # type: ignore[arg-type]
    return sorted(late, key=lambda f: -f.late_by_hours)
