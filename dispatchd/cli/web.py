"""The web side: ``dispatchd web`` serves it alone; ``web link`` prints a client contact's link,
``web revoke`` withdraws links, ``web rotate`` replaces the signing secret (ending every link)."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys

from dispatchd.cli.common import EXIT_CONFIG, EXIT_NOT_FOUND
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
    revoke = actions.add_parser("revoke", parents=[common],
                                help="withdraw the links sent so far to one contact or to all of a client's")
    who = revoke.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact", metavar="ADDRESS")
    who.add_argument("--client", metavar="NAME")
    revoke.set_defaults(handler=_revoke)
    link = actions.add_parser("link", parents=[common], help="print a contact's link to their requests")
    link.add_argument("contact", metavar="ADDRESS")
    link.add_argument("--client", metavar="NAME", help="when the address belongs to several clients")
    link.set_defaults(handler=_link)


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


def _revoke(args: argparse.Namespace, config: Config) -> int:
    from sqlmodel import Session

    from dispatchd.cli.common import engine
    from dispatchd.clock import SystemClock
    from dispatchd.flows.portal import revoke
    from dispatchd.store.db import write_turn

    if args.client and not any(c.name == args.client for c in config.clients):
        print(f"dispatchd: no [[clients]] named {args.client!r}", file=sys.stderr)
        return EXIT_NOT_FOUND
    db = engine(config)
    with write_turn(db), Session(db) as session, session.begin():
        revoke(session, SystemClock().now(), contact=args.contact, client=args.client)
    whose = f"to {args.contact}" if args.contact else f"to anyone of {args.client}"
    print(f"links sent so far {whose} no longer open; links in emails sent from now on do")
    return 0


def _link(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.cli.common import engine
    from dispatchd.clock import SystemClock
    from dispatchd.daemon import web_secret
    from dispatchd.flows.portal import client_link_url, clients_named

    if not config.web.base_url:
        print("dispatchd: set [web] base_url first: links are made of it", file=sys.stderr)
        return EXIT_CONFIG
    names = [args.client] if args.client else clients_named(config, args.contact)
    url = client_link_url(config, web_secret(config, engine(config)), args.contact,
                          names[0] if len(names) == 1 else None, SystemClock().now())
    if not url:
        known = f" (it belongs to {', '.join(names)}: name one with --client)" if len(names) > 1 else ""
        print(f"dispatchd: {args.contact} is not one client's address{known}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(url)
    return 0
