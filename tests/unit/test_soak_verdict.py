"""The soak's trend verdict (bench/soak_verdict.py): a leak is a second-half slope that is both
out of the noise and larger than the tolerance; noise, a warm-up, or a tiny steady drift are not."""

import random

import pytest

from bench.soak_verdict import percentile, trend


def samples(values: list[float], every: float = 30.0) -> list[dict[str, float]]:
    return [{"elapsed_s": i * every, "daemon_rss_kb": v} for i, v in enumerate(values)]


noise = random.Random(7)


@pytest.mark.parametrize("name, values, rising", [
    ("flat", [200_000.0] * 240, False),
    ("noise around a level", [200_000 + noise.gauss(0, 3000) for _ in range(240)], False),
    ("warm-up in the first half, then flat", [180_000 + min(i, 100) * 200.0 for i in range(240)], False),
    ("steady leak of 100 KB a sample", [200_000 + i * 100.0 for i in range(240)], True),
    ("leak under noise", [200_000 + i * 150 + noise.gauss(0, 3000) for i in range(240)], True),
    ("tiny steady drift, far under 5 %", [200_000 + i * 2.0 for i in range(240)], False),
    ("falling", [200_000 - i * 100.0 for i in range(240)], False),
])
def test_rising_only_when_significant_and_large(name: str, values: list[float], rising: bool) -> None:
    found = trend(samples(values), "daemon_rss_kb")
    assert found is not None and found.rising is rising, (name, found)


def test_too_few_samples_give_no_trend() -> None:
    assert trend(samples([1.0, 2.0, 3.0]), "daemon_rss_kb") is None


@pytest.mark.parametrize("values, pct, expected", [
    ([5.0], 50, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([float(i) for i in range(1, 101)], 99, 99.0),
])
def test_percentile_is_the_nearest_rank(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == expected
