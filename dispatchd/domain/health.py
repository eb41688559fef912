"""Queue health colours by the seed's thresholds: the daily health email, `dispatchd report` and
the staff dashboard colour a queue the same way."""

from __future__ import annotations

# (green below, red above) per the seed: depth 10/20, wait 2/5 days, breach 5 %/10 %
THRESHOLDS = {"depth": (10, 20), "avg_wait_days": (2, 5), "breach_rate": (0.05, 0.10)}


def colour(metric: str, value: float) -> str:
    """green below the metric's first threshold, red above its second, yellow between."""
    green, red = THRESHOLDS[metric]
    return "green" if value < green else "red" if value > red else "yellow"


def worst(colours: list[str] | tuple[str, ...]) -> str:
    """The colour of the whole from the colours of its parts: any red is red, any yellow yellow."""
    return "red" if "red" in colours else "yellow" if "yellow" in colours else "green"
