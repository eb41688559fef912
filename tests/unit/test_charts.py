"""The SVG charts: well-formed, accessible, escaped, honest about missing data."""

import xml.etree.ElementTree as ET

import pytest

from dispatchd.charts import Bar, Series, bar_chart, line_chart, nice_ticks

NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = '<script>alert("x")</script> & "Acme" \u202e'


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_line_chart_is_valid_svg_with_title_desc_and_a_line_per_series() -> None:
    svg = line_chart("flow", "Arrivals and completions", ["1 Dec", "2 Dec", "3 Dec"],
                     [Series("arrivals", [3, 5, 2]), Series("completions", [1, 4, 6])])
    root = parsed(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "flow-title flow-desc"
    assert root.find("svg:title", NS).text == "Arrivals and completions"
    assert root.find("svg:desc", NS).text == "arrivals: 1 Dec 3, 2 Dec 5, 3 Dec 2; completions: 1 Dec 1, 2 Dec 4, 3 Dec 6"
    assert len(root.findall("svg:polyline", NS)) == 2
    assert {"0", "2", "4", "6"} <= set(texts(root))  # y axis ticks
    assert "style" not in svg  # the CSP allows no inline styles


def test_a_missing_value_breaks_the_line_instead_of_drawing_zero() -> None:
    root = parsed(line_chart("p", "p90", ["a", "b", "c", "d", "e"], [Series("p90", [1, 2, None, 4, 5])]))
    lines = root.findall("svg:polyline", NS)
    assert [len(line.get("points").split()) for line in lines] == [2, 2]


def test_a_lone_value_is_a_dot() -> None:
    root = parsed(line_chart("p", "p90", ["a", "b", "c"], [Series("p90", [None, 2, None])]))
    assert len(root.findall("svg:circle", NS)) == 1 and not root.findall("svg:polyline", NS)


def test_bar_chart_scales_to_the_given_maximum_and_labels_each_bar() -> None:
    svg = bar_chart("sla", "SLA attainment", [Bar("design", 50), Bar("content", 100, "#059669")], "%", maximum=100)
    root = parsed(svg)
    rects = root.findall("svg:rect", NS)
    assert len(rects) == 2
    full, half = float(rects[1].get("height")), float(rects[0].get("height"))
    assert half == pytest.approx(full / 2)
    assert rects[1].get("fill") == "#059669"
    assert {"design", "content", "50%", "100%"} <= set(texts(root))


@pytest.mark.parametrize("chart", [
    lambda: line_chart("x", HOSTILE, [HOSTILE], [Series(HOSTILE, [1])]),
    lambda: bar_chart("x", HOSTILE, [Bar(HOSTILE, 3, '"/><script>')], HOSTILE),
])
def test_hostile_labels_are_text_not_markup(chart) -> None:
    svg = chart()
    assert "<script" not in svg
    root = parsed(svg)  # still well-formed
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert root.find("svg:title", NS).text == HOSTILE


def test_the_chart_id_cannot_break_out_of_its_attribute() -> None:
    root = parsed(line_chart('a" onload="x', "t", ["a"], [Series("s", [1])]))
    assert root.get("onload") is None
    assert root.get("aria-labelledby") == "a--onload--x-title a--onload--x-desc"


@pytest.mark.parametrize("chart", [
    lambda: line_chart("e", "Backlog", [], []),
    lambda: line_chart("e", "Backlog", ["a", "b"], [Series("backlog", [None, None])]),
    lambda: bar_chart("e", "Backlog", []),
])
def test_no_data_says_so(chart) -> None:
    root = parsed(chart())
    assert texts(root) == ["No data yet"]
    assert root.find("svg:desc", NS).text == "No data yet."


def test_many_days_show_only_some_x_labels() -> None:
    labels = [f"d{i}" for i in range(30)]
    root = parsed(line_chart("m", "t", labels, [Series("s", list(range(30)))]))
    shown = [t for t in texts(root) if t.startswith("d")]
    assert 4 <= len(shown) <= 8 and shown[0] == "d0"


@pytest.mark.parametrize(("highest", "ticks"), [
    (0, [0, 1]), (1, [0, 0.5, 1]), (7, [0, 2, 4, 6, 8]), (20, [0, 5, 10, 15, 20]), (100, [0, 50, 100]),
    (0.3, [0, 0.1, 0.2, 0.3]), (1234, [0, 500, 1000, 1500]),
])
def test_nice_ticks(highest: float, ticks: list[float]) -> None:
    assert nice_ticks(highest) == pytest.approx(ticks)
