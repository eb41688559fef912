"""The pure middle stays pure: domain/ imports no I/O layer and never reads the clock; the web
side is an edge: flows and domain never import it, and no edge imports the CLI."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dispatchd"
DOMAIN = PACKAGE / "domain"
FORBIDDEN = ("dispatchd.mail", "dispatchd.store", "dispatchd.flows", "dispatchd.daemon", "dispatchd.web", "dispatchd.webhooks",
             "dispatchd.llm", "aiohttp", "sqlmodel",
             "sqlalchemy", "imapclient", "aiosmtplib", "socket", "asyncio", "mailparser", "starlette", "uvicorn")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_is_pure(path: Path) -> None:
    for _, name in _imports(path):
        assert not _within(name, FORBIDDEN), f"{path.name} imports {name}"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today"):
            pytest.fail(f"{path.name}:{node.lineno} reads the clock")


@pytest.mark.parametrize("path", sorted((PACKAGE / "flows").glob("*.py")), ids=lambda p: p.name)
def test_flows_never_import_the_web_side(path: Path) -> None:
    for line, name in _imports(path):
        assert not _within(name, ("dispatchd.web", "starlette", "uvicorn")), f"{path.name}:{line} imports {name}"


EDGES = [*(PACKAGE / "web").glob("*.py"), *(PACKAGE / "mail").glob("*.py"), *(PACKAGE / "store").glob("*.py"),
         *(PACKAGE / "llm").glob("*.py")]


@pytest.mark.parametrize("path", sorted(EDGES), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_edges_never_import_the_cli(path: Path) -> None:
    for line, name in _imports(path):
        assert not _within(name, ("dispatchd.cli",)), f"{path.parent.name}/{path.name}:{line} imports {name}"
