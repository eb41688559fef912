"""The ``dispatchd`` command: parses arguments, calls flows, prints. Nothing else.

One module per group of commands, each with a ``register(sub, common)`` that adds its
subcommands; ``COMMAND_GROUPS`` lists them in the order ``--help`` shows them.

Exit codes: 0 ok; 1 not found; 2 usage, refused configuration or already running;
3 a mail server or the database could not be reached; 75 run --once left mail to retry later.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.exc import OperationalError

from dispatchd import __version__
from dispatchd.cli import assign, backlog, integrations, lifecycle, outbox, service, triage, views, web
from dispatchd.cli.common import EXIT_CONFIG, EXIT_SERVER, emit
from dispatchd.config import load_config
from dispatchd.errors import ConfigError, DispatchdError, MailServerError
from dispatchd.logging import configure_logging
from dispatchd.store.db import close_engines

COMMAND_GROUPS = (service, views, assign, outbox, integrations, backlog, triage, web, lifecycle)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    if args.command == "demo":
        from dispatchd.demo import run_demo

        return run_demo(keep=args.keep)
    if args.command == "events":  # the shipped schema: no config needed
        return integrations.print_schema(args)
    if args.command == "init":
        return service.init(args)
    try:
        config = load_config(_config_path(args), credentials=_needs_credentials(args))
        configure_logging(args.log_level or config.log_level, config.log_format)
        return args.handler(args, config)
    except ConfigError as exc:
        if getattr(args, "json", False):
            emit({"ok": False, "problems": [{"file": str(p.file), "line": p.line, "key": p.key,
                                             "reason": p.reason} for p in exc.problems]}, True)
            return EXIT_CONFIG
        print("dispatchd: configuration refused:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except MailServerError as exc:
        print(f"dispatchd: {exc}", file=sys.stderr)
        return EXIT_SERVER
    except OperationalError as exc:
        print(f"dispatchd: database unavailable, nothing was lost, try again: {exc.orig}", file=sys.stderr)
        return EXIT_SERVER
    except BrokenPipeError:
        # `dispatchd tasks | head`: the reader has what it wanted. Point stdout at /dev/null so
        # the interpreter's final flush does not complain, and end quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"dispatchd: {exc.strerror or exc}: nothing was lost, try again", file=sys.stderr)
        return EXIT_SERVER
    except DispatchdError as exc:
        print(f"dispatchd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        close_engines()


def _needs_credentials(args: argparse.Namespace) -> bool:
    """Read-only views need only the database, not the mail passwords (least privilege)."""
    if args.command == "check":
        return args.explain is None or args.connect
    return not getattr(args, "read_only", False)


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("DISPATCHD_CONFIG") or "config.toml")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispatchd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dispatchd {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="config file (default: $DISPATCHD_CONFIG or ./config.toml)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub, common)
    return parser


if __name__ == "__main__":
    sys.exit(main())
