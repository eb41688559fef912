"""The pure middle stays pure: domain/ imports no I/O layer and never reads the clock."""

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "dispatchd" / "domain"
FORBIDDEN = ("dispatchd.mail", "dispatchd.store", "dispatchd.flows", "dispatchd.daemon", "sqlmodel", "sqlalchemy",
             "imapclient", "aiosmtplib", "socket", "asyncio", "mailparser")


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today"):
            pytest.fail(f"{path.name}:{node.lineno} reads the clock")
