"""The dashboard's figures (domain/metrics.py): table tests over hand-made facts."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dispatchd.domain.metrics import (DayFlow, Finished, QueueLoad, WipRow, age_words, attainment, daily_flow,
                                      days_back, percentile, queue_rows, resolution_times, response_times, spread,
                                      wip_rows)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


def done(queue: str, late: bool, task_id: int = 1, hours: float = 10) -> Finished:
    delivered = NOW - timedelta(days=1)
    due = delivered + timedelta(hours=-1 if late else 1)
    return Finished(task_id, queue, delivered - timedelta(hours=hours), delivered, due)


@pytest.mark.parametrize(("depth", "late", "finished", "colour", "colours"), [
    (0, 0, 0, "green", {"depth": "green", "breach_rate": "green"}),
    (9, 0, 20, "green", {"depth": "green", "breach_rate": "green"}),
    (10, 0, 20, "yellow", {"depth": "yellow", "breach_rate": "green"}),
    (20, 0, 20, "yellow", {"depth": "yellow", "breach_rate": "green"}),
    (21, 0, 20, "red", {"depth": "red", "breach_rate": "green"}),
    (3, 1, 20, "yellow", {"depth": "green", "breach_rate": "yellow"}),   # 5 %: at the line
    (3, 3, 20, "red", {"depth": "green", "breach_rate": "red"}),         # 15 %
])
def test_queue_colour_by_the_seed_thresholds(depth, late, finished, colour, colours) -> None:
    items = [done("design", i < late, i) for i in range(finished)]
    oldest = NOW - timedelta(hours=30)
    [row] = queue_rows([QueueLoad("design", depth, oldest)], items, NOW)
    assert (row.colour, row.colours) == (colour, colours)
    assert row.breach_rate == pytest.approx(late / finished if finished else 0)
    assert row.oldest_age_hours == (pytest.approx(30) if depth else None)


def test_queue_rows_list_every_queue_once_by_name() -> None:
    rows = queue_rows([QueueLoad("web", 2, NOW)], [done("content", False)], NOW, queues=["triage", "web"])
    assert [(r.queue, r.depth, r.finished) for r in rows] == [("content", 0, 1), ("triage", 0, 0), ("web", 2, 0)]


def test_attainment_per_queue() -> None:
    items = [done("a", False), done("a", True), done("a", False), done("a", False), done("b", True)]
    assert attainment(items) == {"a": 0.75, "b": 0.0}


def test_a_task_without_a_due_time_is_never_late() -> None:
    assert not Finished(1, "a", NOW, NOW + timedelta(days=9), None).late


@pytest.mark.parametrize(("active", "limit", "colour"), [(0, 3, "green"), (2, 3, "green"), (3, 3, "yellow"),
                                                         (4, 3, "red"), (0, 0, "yellow"), (1, 0, "red")])
def test_wip_colour(active: int, limit: int, colour: str) -> None:
    assert WipRow("Ana", "ana@x", active, limit, False).colour == colour


def test_wip_rows_fullest_first_with_absences() -> None:
    people = [("Ana", "ana@x", 4), ("Ben", "ben@x", 2), ("Cy", "cy@x", 0), ("Di", "di@x", 3)]
    rows = wip_rows(people, {"ana@x": 1, "ben@x": 2, "cy@x": 1}, away={"di@x"})
    assert [(r.name, r.active, r.away) for r in rows] == [("Cy", 1, False), ("Ben", 2, False), ("Ana", 1, False),
                                                          ("Di", 0, True)]


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def test_daily_flow_walks_the_backlog_back_from_today() -> None:
    days = days_back(date(2026, 12, 4), 4)
    assert days == [date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)]
    flow = daily_flow(days, arrivals=[at(2), at(2), at(3), at(4)], completions=[at(3)],
                      departures=[at(3), at(4)], reopenings=[at(4, 15)], not_done_now=5, zone=UTC)
    # 4 Dec: ends at 5 (+1 arrived, -1 left, +1 back) -> 3 Dec ended at 4; 3 Dec: +1, -1 -> 2 Dec ended at 4;
    # 2 Dec: +2 -> 1 Dec ended at 2
    assert flow == [DayFlow(date(2026, 12, 1), 0, 0, 2), DayFlow(date(2026, 12, 2), 2, 0, 4),
                    DayFlow(date(2026, 12, 3), 1, 1, 4), DayFlow(date(2026, 12, 4), 1, 0, 5)]


def test_days_are_local_days() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 23:30 UTC on 1 Dec is 00:30 on 2 Dec in Berlin
    flow = daily_flow([date(2026, 12, 1), date(2026, 12, 2)], [at(1, 23)], [], [], [], 1, berlin)
    assert [(f.day.day, f.arrivals) for f in flow] == [(1, 0), (2, 1)]


def test_daily_flow_without_days() -> None:
    assert daily_flow([], [at(1)], [], [], [], 3, UTC) == []


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 50, None), ([4.0], 90, 4.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
    ([float(v) for v in range(1, 11)], 90, 9.1), ([1.0, 100.0], 0, 1.0), ([1.0, 100.0], 100, 100.0),
])
def test_percentile(values, p, expected) -> None:
    assert percentile(values, p) == (pytest.approx(expected) if expected is not None else None)


def test_response_and_resolution_spreads_in_hours() -> None:
    arrived = {1: at(1, 9), 2: at(1, 9), 3: at(1, 9)}
    first = {1: at(1, 10), 2: at(1, 13)}  # task 3 has had no answer yet: not counted
    result = spread(response_times(arrived, first))
    assert (result.count, result.p50, result.p90) == (2, pytest.approx(2.5), pytest.approx(3.7))
    assert spread(resolution_times([done("a", False, hours=24)])).p50 == pytest.approx(24)
    assert spread([]).p50 is None


@pytest.mark.parametrize(("hours", "words"), [(None, "-"), (0.25, "15 min"), (5.4, "5 h"), (47, "47 h"),
                                              (72, "3 d")])
def test_age_words(hours, words) -> None:
    assert age_words(hours) == words
