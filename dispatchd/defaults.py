"""Where the shipped rules/ and templates/ are: beside the package in a checkout, inside it
(dispatchd._rules, dispatchd._templates) when installed from a wheel."""

from __future__ import annotations

import importlib
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def default_dir(name: str) -> Path:
    """The directory of the shipped ``rules`` or ``templates``."""
    beside = _CHECKOUT / name
    if (beside / ("10-types.toml" if name == "rules" else "client-received.txt.j2")).exists():
        return beside
    # A namespace package (no __init__.py): its one directory is the data.
    return Path(next(iter(importlib.import_module(f"dispatchd._{name}").__path__)))
