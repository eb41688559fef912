"""Data that lasts and data that goes: ``backup``, ``verify-backup``, ``restore``, ``prune``, ``forget``,
``export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dispatchd.cli.common import EXIT_CONFIG, EXIT_NOT_FOUND, emit, engine
from dispatchd.config import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    backup = sub.add_parser("backup", parents=[common], help="a consistent copy of the running database and blobs",
                            description="copy the database (as of one commit, while the daemon runs) and the "
                                        "blobs it names into DEST/snapshots/<time>/, with a manifest; blobs "
                                        "DEST already has are not copied again")
    backup.add_argument("dest", type=Path, help="backup directory (e.g. the [backup] dir)")
    backup.add_argument("--keep", type=int, help="then delete all but the newest KEEP snapshots")
    backup.add_argument("--json", action="store_true")
    backup.set_defaults(handler=_backup, read_only=True)
    verify = sub.add_parser("verify-backup", parents=[common], help="check a backup against its manifest",
                            description="checksums, integrity_check, rows per table and every blob of a "
                                        "snapshot (SRC: a snapshot, or a backup directory for its newest)")
    verify.add_argument("src", type=Path)
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify, read_only=True)
    restore = sub.add_parser("restore", parents=[common], help="restore a backup into an empty data directory",
                             description="verify SRC, then copy its blobs into [storage] dir and its database "
                                         "to [database] url; refuses an existing database or a non-empty "
                                         "data directory")
    restore.add_argument("src", type=Path)
    restore.set_defaults(handler=_restore, read_only=True)
    prune = sub.add_parser("prune", parents=[common], help="remove what is past its [retention] period",
                           description="remove raw mail, attachments, closed tasks, quarantined mail and sent "
                                       "mail's bytes past their [retention] periods, in small batches; open "
                                       "tasks are never pruned (also the nightly job 'prune')")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, change nothing")
    prune.add_argument("--json", action="store_true")
    prune.set_defaults(handler=_prune, read_only=True)
    forget = sub.add_parser("forget", parents=[common], help="erase a person's (or a client's people's) personal data",
                            description="erase an address's personal data (or, given a client's name, that of "
                                        "every address its tasks came from): address, names, bodies, attachments, "
                                        "raw mail; keeps dates, types, queues and SLA outcomes under a pseudonym")
    forget.add_argument("who", metavar="ADDRESS|CLIENT")
    forget.add_argument("--dry-run", action="store_true", help="count the rows it would change, change nothing")
    forget.add_argument("--json", action="store_true")
    forget.set_defaults(handler=_forget, read_only=True)
    export = sub.add_parser("export", parents=[common], help="a person's data as JSON and .eml (access requests)",
                            description="write everything kept about ADDRESS into a directory: person.json, "
                                        "mail/*.eml, attachments/")
    export.add_argument("address")
    export.add_argument("--out", type=Path, help="directory to write (default: ./export-ADDRESS)")
    export.set_defaults(handler=_export, read_only=True)


def _backup(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows.backup import backup
    from dispatchd.store.blobs import BlobStore

    report = backup(engine(config), BlobStore(config.data_dir / "blobs"), args.dest, SystemClock().now(), args.keep)
    if args.json:
        emit({"snapshot": str(report.snapshot), "counts": report.counts, "blobs": report.blobs,
              "blobs_copied": report.blobs_copied, "bytes_copied": report.bytes_copied,
              "seconds": round(report.seconds, 3), "missing_blobs": list(report.missing_blobs),
              "rotated": [str(p) for p in report.rotated]}, True)
    else:
        print(f"{report.snapshot}: {report.counts.get('task', 0)} tasks, {report.blobs} blobs "
              f"({report.blobs_copied} new, {report.bytes_copied / 1e6:.1f} MB copied) in {report.seconds:.1f} s")
        if report.rotated:
            print(f"deleted {len(report.rotated)} older snapshot(s), {report.blobs_removed} blob(s) no longer needed")
    if report.missing_blobs:
        print(f"dispatchd: {len(report.missing_blobs)} blob(s) the database names were already missing from "
              f"{config.data_dir / 'blobs'} (listed in the manifest)", file=sys.stderr)
    if report.postgres_guidance:
        print(report.postgres_guidance, file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.flows.restore import verify_backup

    result = verify_backup(args.src)
    if args.json:
        emit({"snapshot": str(result.snapshot), "ok": result.ok, "problems": list(result.problems),
              "counts": result.counts, "blobs": result.blobs}, True)
    elif result.ok:
        print(f"{result.snapshot}: ok ({result.counts.get('task', 0)} tasks, {result.blobs} blobs"
              f"{'; the PostgreSQL dump is checked by pg_restore --list' if result.kind == 'postgresql' else ''})")
    else:
        print(f"{result.snapshot}: {len(result.problems)} problem(s)", file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem}", file=sys.stderr)
    return 0 if result.ok else EXIT_NOT_FOUND


def _restore(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.flows.restore import restore
    from dispatchd.store.snapshot import sqlite_file

    database = sqlite_file(config.database_url)
    if database is None and not config.database_url.startswith(("postgres", "postgresql")):
        print("dispatchd: restore needs a database file or PostgreSQL", file=sys.stderr)
        return EXIT_CONFIG
    done = restore(args.src, database, config.data_dir)
    print(f"restored {done.snapshot}: {done.counts.get('task', 0)} tasks, {done.blobs} blobs into {config.data_dir}"
          + (f", database {done.database}" if done.database else ""))
    if done.database is None:
        print(f"the database is PostgreSQL: pg_restore --dbname=… {done.snapshot}/dispatchd.pgdump", file=sys.stderr)
    return 0


def _prune(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows.retention import prune
    from dispatchd.store.blobs import BlobStore

    if not config.retention.anything:
        print("dispatchd: every [retention] period is \"never\": nothing to prune", file=sys.stderr)
        return 0
    report = prune(engine(config), BlobStore(config.data_dir / "blobs"), config.retention, SystemClock().now(),
                   args.dry_run)
    rows = [{"kind": kind, "rows": report.counts[kind], "bytes": report.bytes[kind]}
            for kind in config.retention.KINDS if getattr(config.retention, kind) is not None]
    if args.json:
        emit({"dry_run": report.dry_run, "kinds": rows, "blobs_removed": report.blobs_removed,
              "blobs_waiting": report.blobs_waiting, "bytes_freed": report.bytes_freed}, True)
        return 0
    emit(rows, False, ["kind", "rows", "bytes"])
    if report.dry_run:
        print(f"dry run: about {report.bytes_freed / 1e6:.1f} MB would be freed; nothing was changed", file=sys.stderr)
    else:
        print(f"{report.blobs_removed} blob file(s) removed, {report.bytes_freed / 1e6:.1f} MB freed"
              + (f"; {report.blobs_waiting} wait for the next run (stored again moments ago)"
                 if report.blobs_waiting else ""), file=sys.stderr)
    return 0


def _forget(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows.erasure import addresses_of, erasure_secret, forget
    from dispatchd.store.blobs import BlobStore

    database = engine(config)
    addresses = addresses_of(database, args.who)
    if not addresses:
        print(f"dispatchd: nothing recorded from {args.who!r} (an address, or a client with tasks)", file=sys.stderr)
        return EXIT_NOT_FOUND
    secret, blobs, now = erasure_secret(database), BlobStore(config.data_dir / "blobs"), SystemClock().now()
    done = [forget(database, blobs, address, secret, now, args.dry_run, config.retention.batch) for address in addresses]
    if args.json:
        emit([{"address": e.address, "pseudonym": e.pseudonym, "tasks": e.tasks, "rows": dict(e.rows),
               "blobs_removed": e.blobs_removed, "blobs_waiting": e.blobs_waiting, "wal_emptied": e.wal_emptied,
               "dry_run": args.dry_run} for e in done], True)
        return 0
    for erasure in done:
        verb = "would erase" if args.dry_run else "erased"
        rows = ", ".join(f"{table} {count}" for table, count in sorted(erasure.rows.items()) if count)
        print(f"{erasure.address} -> {erasure.pseudonym}: {verb} {erasure.tasks} task(s); rows: {rows or 'none'}")
        if not args.dry_run:
            print(f"  {erasure.blobs_removed} blob file(s) removed"
                  + (f", {erasure.blobs_waiting} stored moments ago: removed by the next prune or forget"
                     if erasure.blobs_waiting else ""))
            if erasure.wal_emptied is False:
                print("  the WAL is still in use: its old pages are overwritten at the next checkpoint", file=sys.stderr)
    if not args.dry_run:
        print("Backups made earlier still hold this data until they are rotated out ([backup] keep); "
              "addresses in config.toml ([[clients]] senders, contacts) are yours to remove.", file=sys.stderr)
        if not config.database_url.startswith("sqlite"):
            print("PostgreSQL keeps old row versions until VACUUM: run VACUUM on the database.", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace, config: Config) -> int:
    from dispatchd.clock import SystemClock
    from dispatchd.flows.export import export
    from dispatchd.store.blobs import BlobStore

    directory = args.out or Path(f"export-{args.address.strip().lower()}")
    if directory.exists() and any(directory.iterdir()):
        print(f"dispatchd: {directory} is not empty", file=sys.stderr)
        return EXIT_CONFIG
    done = export(engine(config), BlobStore(config.data_dir / "blobs"), args.address, directory, SystemClock().now())
    if not any(done.rows.values()):
        print(f"dispatchd: nothing recorded about {args.address}", file=sys.stderr)
        return EXIT_NOT_FOUND
    rows = ", ".join(f"{table} {count}" for table, count in sorted(done.rows.items()) if count)
    print(f"{directory}: person.json ({rows}), {done.emails} email(s), {done.files} attachment(s)")
    return 0
