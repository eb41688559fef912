"""The web side: ``dispatchd web`` serves it alone; ``web rotate`` replaces its signing secret."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys

from dispatchd.cli.common import EXIT_CONFIG
from dispatchd.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    web = sub.add_parser("web", parents=[common],
                         help="serve the web side alone (the daemon serves it too when [web] listen is set)")
    web.add_argument("--listen", metavar="HOST:PORT", help="default: [web] listen, else 127.0.0.1:8025")
    web.set_defaults(handler=_serve)
    actions = web.add_subparsers(dest="web_command", metavar="ACTION")
    rotate = actions.add_parser("rotate", parents=[common],
                                help="replace the generated signing secret: every client link and open form "
                                     "stops working (reload or restart the daemon afterwards)")
    rotate.set_defaults(handler=_rotate)


def _serve(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.daemon import build_deps
    from dispatchd.web.app import create_app
    from dispatchd.web.server import bind, serve

    listen = args.listen or config.web.listen or "127.0.0.1:8025"
    sock = bind(listen)
    deps = build_deps(config)
    print(f"dispatchd web: serving on http://{listen}/", file=sys.stderr, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(create_app(lambda: deps), sock, stop)

    asyncio.run(main())
    deps.coordinator.close()
    return 0


def _rotate(args: argparse.Namespace, config: Config) -> int:
    from sqlalchemy import text

    from dispatchd.cli.common import engine
    from dispatchd.daemon import WEB_SECRET_KEY

    if config.web.secret.env or config.web.secret.file:
        where = config.web.secret.env or config.web.secret.file
        print(f"dispatchd: the signing secret comes from {where}: change it there, then reload", file=sys.stderr)
        return EXIT_CONFIG
    with engine(config).begin() as connection:
        connection.execute(text("DELETE FROM meta WHERE key = :key"), {"key": WEB_SECRET_KEY})
        connection.execute(text("INSERT INTO meta (key, value) VALUES (:key, :value)"),
                           {"key": WEB_SECRET_KEY, "value": secrets.token_hex(32)})
    print("web secret replaced: links sent so far no longer open; reload or restart the daemon "
          "(systemctl reload dispatchd) so that it signs with the new one")
    return 0
