"""Content-addressed files on disk: raw .eml of every message, and attachments.

A blob is named by its SHA-256, written to a temporary file, fsynced and renamed, so a crash
never leaves a half-written file under a real name, and writing the same bytes twice is free.

Blobs are removed (retention, erasure) only when no row names them. Intake stores a blob before
the transaction that names it commits, so ``put`` touches a blob it finds present, and removal
spares a blob touched less than ``INTAKE_MARGIN`` before its last row let go of it (or since):
that row's successor may be on its way. It is removed on a later run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

INTAKE_MARGIN = 120.0  # seconds: far longer than intake takes from storing a blob to committing


class BlobStore:
    def __init__(self, root: Path):
        self.root = root

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its hex SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_of(digest)
        try:
            os.utime(target)  # present: a row will name it again soon, see INTAKE_MARGIN
            return digest
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_of(digest).read_bytes()

    def digests(self) -> Iterator[str]:
        """Every blob stored (not the temporary files of writes in progress)."""
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and len(folder.name) == 2:
                yield from sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))

    def remove_unnamed(self, digest: str, released_at: float, still_named: Callable[[], bool]) -> int | None:
        """Remove a blob whose last row let go of it at ``released_at`` (epoch seconds).
        Returns the bytes freed, 0 if it was gone already, None if it stays for now.

        The file is first renamed aside, so a ``put`` from now on writes a fresh copy; then
        ``still_named()`` asks the database, and the file's time says whether intake stored it
        again around or after ``released_at``: either brings it back."""
        target = self.path_of(digest)
        aside = target.with_name(f".removing-{digest}")
        try:
            os.replace(target, aside)
        except FileNotFoundError:
            return 0
        status = aside.stat()
        if still_named() or status.st_mtime > released_at - INTAKE_MARGIN:
            os.replace(aside, target)  # a put meanwhile wrote the same bytes: either copy will do
            return None
        aside.unlink()
        return status.st_size

    @contextmanager
    def maintenance(self) -> Iterator[None]:
        """Backup, pruning, erasure and restore take turns on the blob store (a blocking lock
        beside it): a backup must not copy a list of blobs that pruning is removing."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.root.parent / "maintenance.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._undo_interrupted_removals()
            yield
        finally:
            os.close(handle)

    def _undo_interrupted_removals(self) -> None:
        """A removal killed between its rename and its decision: put the blob back; the row that
        asked for its removal is still there, so the next run decides again."""
        for aside in self.root.glob("??/.removing-*"):
            target = aside.with_name(aside.name.removeprefix(".removing-"))
            if target.exists():
                aside.unlink()
            else:
                os.replace(aside, target)
