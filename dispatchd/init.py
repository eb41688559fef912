"""``dispatchd init DIR``: a commented config.toml, the default rules and templates, ready to edit."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from dispatchd.defaults import default_dir


def example_config() -> str:
    return resources.files("dispatchd").joinpath("config.example.toml").read_text(encoding="utf-8")


def init_directory(target: Path, force: bool = False) -> list[Path]:
    """Write config.toml, rules/ and templates/ into ``target``; refuses to overwrite unless ``force``."""
    written = []
    config = target / "config.toml"
    existing = [p for p in (config, target / "rules", target / "templates") if p.exists()]
    if existing and not force:
        raise FileExistsError(", ".join(str(p) for p in existing))
    target.mkdir(parents=True, exist_ok=True)
    config.write_text(example_config(), encoding="utf-8")
    written.append(config)
    for name in ("rules", "templates"):
        destination = target / name
        shutil.copytree(default_dir(name), destination, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
        written.append(destination)
    return written
