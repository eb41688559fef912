"""``dispatchd init DIR``: a commented config.toml, the default rules and templates, ready to edit."""

from __future__ import annotations

import os
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
    _write_private(config, example_config())
    written.append(config)
    for name in ("rules", "templates"):
        destination = target / name
        shutil.copytree(default_dir(name), destination, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
        written.append(destination)
    return written


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` readable by its owner only (0600), atomically: config.toml names the
    mailboxes, the staff and every client's addresses, and may name secret files."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # also when a stale temporary file had other bits
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
