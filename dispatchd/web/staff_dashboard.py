"""The staff dashboard page: queues and their colours, WIP, the SLA forecast, and the period's
charts drawn as SVG on the server (``dispatchd/charts.py``)."""

from __future__ import annotations

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dispatchd.charts import Bar, Series, bar_chart, line_chart
from dispatchd.domain.metrics import age_words
from dispatchd.flows.dashboard import Dashboard, dashboard
from dispatchd.web.app import Web
from dispatchd.web.staff_auth import staff_page

PERIODS = (7, 14, 30)
COLOURS = {"green": "#1e7a3d", "yellow": "#a86400", "red": "#b3261e"}


def charts(board: Dashboard) -> dict[str, Markup]:
    """The dashboard's four charts, as markup safe to place in the page (the chart module escapes)."""
    labels = [f"{day.day} {day:%b}" for day in (f.day for f in board.flow)]
    attainment = [Bar(queue, round(rate * 100), COLOURS["green" if rate >= 0.95 else "yellow" if rate >= 0.9
                                                        else "red"])
                  for queue, rate in board.attainment.items()]
    durations = [Bar(name, round(value, 1))
                 for name, value in (("response p50", board.first_response.p50),
                                     ("response p90", board.first_response.p90),
                                     ("resolution p50", board.resolution.p50),
                                     ("resolution p90", board.resolution.p90)) if value is not None]
    return {
        "flow": Markup(line_chart("flow", f"Arrivals and completions per day, last {board.period_days} days",
                                  labels, [Series("arrivals", [f.arrivals for f in board.flow]),
                                           Series("completions", [f.completions for f in board.flow])])),
        "backlog": Markup(line_chart("backlog", "Backlog (not yet delivered) at the end of each day", labels,
                                     [Series("backlog", [f.backlog for f in board.flow])])),
        "attainment": Markup(bar_chart("attainment", f"SLA attainment per queue, last {board.period_days} days",
                                       attainment, "%", maximum=100)),
        "durations": Markup(bar_chart("durations", "Hours to first response and to resolution (p50, p90)",
                                      durations, " h")),
    }


def routes(web: Web) -> list[BaseRoute]:
    def show(request: Request, email: str) -> Response:
        try:
            days = int(request.query_params.get("days", "14"))
        except ValueError:
            days = 14
        days = days if days in PERIODS else 14
        board = dashboard(web.deps, days)
        return web.page(request, "staff-dashboard", me=email, board=board, charts=charts(board), periods=PERIODS,
                        age_words=age_words, section="dashboard")

    return [Route("/staff", staff_page(web, show), name="staff_dashboard")]
