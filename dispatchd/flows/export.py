"""``dispatchd export ADDRESS``: everything kept about a person, for an access request.

The rows are found as erasure finds them (``store/personal.PERSONAL_DATA``); they are written
as ``person.json``, the mail they sent and the mail sent to them as ``.eml`` files, and their
attachments as files.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine

from dispatchd.flows.erasure import person_condition, owned_ids
from dispatchd.store.blobs import BlobStore
from dispatchd.store.lifecycle import table
from dispatchd.store.personal import PERSONAL_DATA


@dataclass(frozen=True)
class Export:
    directory: Path
    rows: dict[str, int]
    emails: int
    files: int


def export(engine: Engine, blobs: BlobStore, address: str, directory: Path, now: datetime) -> Export:
    """Write ``address``'s data into ``directory`` (created; must not hold an export already)."""
    names = (address.strip().lower(),)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mail").mkdir(exist_ok=True)
    (directory / "attachments").mkdir(exist_ok=True)
    found: dict[str, list[dict[str, object]]] = {}
    emails = files = 0
    with engine.connect() as connection:
        owned = owned_ids(connection, names)
        for entry in PERSONAL_DATA:
            condition = person_condition(entry, names, owned, connection.dialect.name)
            if condition is None:
                continue
            target = table(entry.table)
            rows = [dict(r._mapping) for r in connection.execute(select(target).where(condition))]
            for row in rows:
                emails += _write_mail(entry.table, row, blobs, directory)
                files += _write_attachment(entry.table, row, blobs, directory)
            found[entry.table] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    document = {"address": names[0], "exported_at": now.isoformat(), "tables": found,
                "notes": "mail/in-*.eml: messages received from or about this person; mail/out-*.eml: sent; "
                         "attachments/: files they sent. Empty blob names: removed by retention."}
    (directory / "person.json").write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    return Export(directory, {k: len(v) for k, v in found.items()}, emails, files)


def _write_mail(name: str, row: dict[str, object], blobs: BlobStore, directory: Path) -> int:
    if name == "inbound_message" and row.get("raw_sha256") and blobs.path_of(str(row["raw_sha256"])).exists():
        (directory / "mail" / f"in-{row['id']}.eml").write_bytes(blobs.get(str(row["raw_sha256"])))
        return 1
    if name == "outbox" and row.get("raw"):
        (directory / "mail" / f"out-{row['id']}.eml").write_bytes(bytes(row["raw"]))  # type: ignore[arg-type]
        return 1
    return 0


def _write_attachment(name: str, row: dict[str, object], blobs: BlobStore, directory: Path) -> int:
    if name != "attachment" or not row.get("sha256") or not blobs.path_of(str(row["sha256"])).exists():
        return 0
    safe = re.sub(r"[^\w.\- ]", "_", str(row["filename"]))[:100] or "file"
    (directory / "attachments" / f"{row['id']}-{safe}").write_bytes(blobs.get(str(row["sha256"])))
    return 1


def _plain(value: object) -> object:
    """JSON for a column: times in ISO 8601, bytes (mail) by reference to its .eml."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return f"<{len(value)} bytes>" if len(value) > 200 else base64.b64encode(bytes(value)).decode()
    return value
