"""The IMAP edge: log in, read after the cursor, acknowledge after commit, wait for new mail.

Blocking (imapclient); the daemon runs it in a worker thread. Every protocol or socket fault
is raised as MailServerError so the caller has one thing to back off on.
"""

from __future__ import annotations

import imaplib
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from dispatchd.config import MailboxConfig
from dispatchd.domain.models import RawMail
from dispatchd.errors import MailServerError
from dispatchd.mail.diagnose import imap_failure
from dispatchd.mail.imap_idle import (
    PROTOCOL_ERRORS, StopFlag, count_after, read_waiting, start_idle, take_filed_responses,
    wait_readable,
)
from dispatchd.oauth import TokenSource

log = structlog.get_logger("dispatchd.imap")
PROCESSED_KEYWORD = "$Dispatched"
IMAP_ERRORS = (IMAPClientError, *PROTOCOL_ERRORS, ssl.SSLError)


@dataclass(frozen=True)
class Envelope:
    """A message as the server files it, without its body: enough to record it and find it again."""

    uid: int
    arrived: datetime  # INTERNALDATE, aware
    size: int
    header: bytes  # Message-ID, From, Subject, Date


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


class ImapSource:
    def __init__(self, config: MailboxConfig, max_message_bytes: int = 25 * 1024 * 1024):
        self.config = config
        self.max_message_bytes = max_message_bytes
        self.tokens = TokenSource(config.oauth2) if config.oauth2 else None
        self.client: IMAPClient | None = None
        self._count = 0  # messages in the selected folder, as the server last told us
        self._mail_waiting = False  # the server announced mail the last SEARCH did not cover
        self.keywords_kept = True  # keyword mode: the server stores $Dispatched (see _note_keywords)

    def connect(self) -> None:
        """Log in and make sure the folders we move mail into exist."""
        self.close()
        cfg = self.config
        client = None
        try:
            client = IMAPClient(cfg.host, port=cfg.port, ssl=cfg.tls == "ssl", timeout=30)
            if cfg.tls == "starttls":
                client.starttls(ssl.create_default_context())
            self._login(client)
            for folder in (cfg.processed_folder, cfg.quarantine_folder):
                if folder and not client.folder_exists(folder):
                    client.create_folder(folder)
        except (*IMAP_ERRORS, MailServerError) as exc:
            if client is not None:
                try:
                    client.shutdown()  # a refused login must not leak its socket
                except IMAP_ERRORS:
                    pass
            if isinstance(exc, MailServerError):
                raise
            raise MailServerError(imap_failure(cfg, exc)) from exc  # a sentence naming the setting
        self.client = client
        log.info("imap.connected", host=cfg.host, port=cfg.port, user=cfg.username,
                 idle=client.has_capability("IDLE"))

    def _login(self, client: IMAPClient) -> None:
        cfg = self.config
        if self.tokens is None:
            client.login(cfg.username, cfg.password.reveal() or "")
            return
        try:
            client.oauth2_login(cfg.username, self.tokens.get())
        except LoginError:
            # The cached token may have been revoked or expired early: one fresh try.
            client.oauth2_login(cfg.username, self.tokens.get(fresh=True))

    def close(self) -> None:
        if self.client is None:
            return
        client, self.client = self.client, None
        try:
            client.logout()
        except IMAP_ERRORS:
            try:
                client.shutdown()
            except IMAP_ERRORS:
                pass

    @property
    def connected(self) -> bool:
        return self.client is not None

    def _require(self) -> IMAPClient:
        if self.client is None:
            raise MailServerError("not connected to IMAP")
        return self.client

    def _call(self, what: str, func, *args, refusable: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        """``refusable``: a NO or BAD answer is raised as ImapRefused and the connection kept (it
        is fine; the server said no to this command)."""
        client = self._require()
        try:
            result = func(*args, **kwargs)
        except IMAP_ERRORS as exc:
            if refusable and _is_answer(exc):
                raise ImapRefused(f"IMAP {what}: {exc}") from exc
            self.client = None  # the connection is in an unknown state: start again
            raise MailServerError(f"IMAP {what}: {exc}") from exc
        # Any command may carry news of the folder (EXISTS, EXPUNGE): count it as it comes.
        self._absorb(take_filed_responses(client))
        return result

    def select(self, folder: str) -> FolderState:
        info = self._call("select", self._require().select_folder, folder)
        state = FolderState(int(info[b"UIDVALIDITY"]), info.get(b"UIDNEXT"), int(info.get(b"EXISTS", 0)))
        self._count, self._mail_waiting = state.exists, False
        self._note_keywords(info.get(b"PERMANENTFLAGS"))
        return state

    def _note_keywords(self, permanent: tuple[bytes, ...] | None) -> None:
        """Keyword mode needs a server that keeps keywords: PERMANENTFLAGS with \\* (any new one)
        or $Dispatched itself. Microsoft 365 keeps neither; there processed mail stays unmarked and
        the cursor alone says what was read (flagging would do nothing, and the UNKEYWORD search
        would find every message ever read, on every pass)."""
        if self.config.processed_folder is not None:
            return
        flags = {flag.lower() for flag in permanent or ()}
        kept = permanent is None or b"\\*" in flags or PROCESSED_KEYWORD.lower().encode() in flags
        if not kept and self.keywords_kept:
            log.warning("imap.keywords_unsupported", mailbox=self.config.name, permanent_flags=sorted(
                f.decode(errors="replace") for f in flags), consequence="processed mail stays unmarked in the folder; "
                "the cursor alone records what was read (set processed_folder to move it instead)")
        self.keywords_kept = kept

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs greater than ``last_uid``, ascending (``n:*`` may return the last one; drop it).
        Mail announced before this SEARCH is in its answer; only what is announced after it is
        news for ``wait_for_mail``."""
        self._mail_waiting = False
        found = self._call("search", self._require().search, ["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def unacknowledged_up_to(self, last_uid: int, after: int = 0) -> list[int]:
        """Processed UIDs still waiting in the folder (a crash between commit and move); those up
        to ``after`` were there before go-live and are not ours to move."""
        if last_uid <= after:
            return []
        criteria: list[str] = ["UID", f"{after + 1}:{last_uid}"]
        if self.config.processed_folder is None:
            if not self.keywords_kept:
                return []  # nothing was marked, so nothing is left to mark
            criteria += ["UNKEYWORD", PROCESSED_KEYWORD]
        found = self._call("search", self._require().search, criteria)
        return sorted(uid for uid in found if after < uid <= last_uid)

    def arrived_before(self, day: date) -> list[int]:
        """UIDs whose arrival (INTERNALDATE) is before ``day`` by the server's calendar."""
        return sorted(self._call("search", self._require().search, ["BEFORE", day]))

    def envelopes(self, uids: list[int]) -> Iterator[Envelope]:
        """Arrival time, size and identifying headers of ``uids``, in batches, bodies untouched."""
        part = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT DATE)]"
        for start in range(0, len(uids), self.config.fetch_batch):
            chunk = uids[start:start + self.config.fetch_batch]
            response = self._call("fetch", self._require().fetch, chunk, ["INTERNALDATE", "RFC822.SIZE", part])
            for uid in chunk:
                item = response.get(uid)
                if item is None:
                    continue  # expunged meanwhile
                header = next((bytes(v) for k, v in item.items() if k.startswith(b"BODY[HEADER")), b"")
                arrived = item[b"INTERNALDATE"]
                # IMAPClient gives local time without a zone unless told otherwise.
                arrived = arrived.astimezone(timezone.utc)
                yield Envelope(uid, arrived, int(item.get(b"RFC822.SIZE", 0)), header)

    def fetch(self, folder: str, uidvalidity: int, uids: list[int]) -> Iterator[RawMail]:
        """Fetch without setting \\Seen (people read this mailbox too), in chunks of at most
        ``fetch_batch`` messages and ``fetch_budget_mb`` of mail (by RFC822.SIZE, asked first):
        what is held at once is bounded by configuration, not by what clients attach."""
        # Never more than the size limit (+1 byte to see it is exceeded) of any one message.
        part = f"BODY.PEEK[]<0.{self.max_message_bytes + 1}>"
        for chunk in self._chunks(uids):
            response = self._call("fetch", self._require().fetch, chunk, ["RFC822.SIZE", part])
            for uid in chunk:
                item = response.pop(uid, {})  # let each message go once the run has it
                data = item.get(b"BODY[]<0>", item.get(b"BODY[]"))
                if data is None:
                    log.warning("imap.vanished", uid=uid, folder=folder)
                    continue
                yield RawMail(folder, uidvalidity, uid, bytes(data), int(item.get(b"RFC822.SIZE", len(data))))

    def _chunks(self, uids: list[int]) -> Iterator[list[int]]:
        if len(uids) <= 1:  # the usual case under IDLE: nothing to plan, no extra round trip
            yield from ([uids] if uids else [])
            return
        batch, budget = self.config.fetch_batch, int(self.config.fetch_budget_mb * 1024 * 1024)
        for start in range(0, len(uids), batch):
            wanted = uids[start:start + batch]
            sizes = self._call("fetch", self._require().fetch, wanted, ["RFC822.SIZE"])
            listed = [(uid, min(int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0)), self.max_message_bytes))
                      for uid in wanted]
            yield from size_chunks(listed, budget)

    def acknowledge(self, uids: list[int], target: str | None) -> dict[int, str]:
        """Move processed messages to ``target``, or mark them with a keyword if there is none.
        Returns the UIDs the server refused to move or mark, with its answer; when it refuses a
        batch, each message is tried alone, so one bad message does not hold back the others."""
        if not uids:
            return {}
        try:
            self._acknowledge(uids, target)
            return {}
        except ImapRefused as exc:
            if len(uids) == 1:
                return {uids[0]: str(exc)}
        refused: dict[int, str] = {}
        for uid in uids:
            try:
                self._acknowledge([uid], target)
            except ImapRefused as exc:
                refused[uid] = str(exc)
        return refused

    def _acknowledge(self, uids: list[int], target: str | None) -> None:
        client = self._require()
        if target is None and not self.keywords_kept:
            return
        if target is None:
            self._call("store", client.add_flags, uids, [PROCESSED_KEYWORD], refusable=True)
        elif client.has_capability("MOVE"):
            self._call("move", client.move, uids, target, refusable=True)
        else:
            self._call("copy", client.copy, uids, target, refusable=True)
            self._call("delete", client.delete_messages, uids, refusable=True)
            if client.has_capability("UIDPLUS"):
                self._call("expunge", client.uid_expunge, uids, refusable=True)
            else:
                self._call("expunge", client.expunge, refusable=True)

    def wait_for_mail(self, stop: StopFlag) -> bool:
        """Block until the server announces new mail (True), or the IDLE period (poll: the poll
        interval) ends or ``stop`` is set (False). Mail announced during the pass, after its
        SEARCH, counts too: it returns True at once. Nothing else is sent: in ``idle`` mode one
        IDLE (and its DONE) per call, in ``poll`` mode one NOOP."""
        client = self._require()
        if self._mail_waiting:
            self._mail_waiting = False
            return True
        cfg = self.config
        if cfg.mode == "poll" or not client.has_capability("IDLE"):
            if stop.wait(cfg.poll_interval):
                return False
            self._call("noop", client.noop)
            return self._take_news()
        self._call("idle", start_idle, client)
        try:
            self._absorb(read_waiting(client))  # arrived in one packet with "+ idling"
            deadline = time.monotonic() + cfg.idle_timeout
            while not self._mail_waiting and wait_readable(client, stop, deadline - time.monotonic()):
                responses = read_waiting(client)
                if not responses:
                    # poll() said readable and there was nothing to read: the peer is gone.
                    raise MailServerError("IMAP connection closed during IDLE")
                self._absorb(responses)
        except IMAP_ERRORS as exc:
            self.client = None
            raise MailServerError(f"IMAP idle: {exc}") from exc
        except MailServerError:
            self.client = None
            raise
        self._call("idle_done", client.idle_done)
        return self._take_news()

    def _absorb(self, responses: list) -> None:  # type: ignore[type-arg]
        self._count, grew = count_after(self._count, responses)
        self._mail_waiting = self._mail_waiting or grew

    def _take_news(self) -> bool:
        news, self._mail_waiting = self._mail_waiting, False
        return news


class ImapRefused(MailServerError):
    """The server answered NO or BAD to one command; the connection is fine."""


def _is_answer(exc: BaseException) -> bool:
    """A tagged NO/BAD (IMAPClientError, imaplib's error) rather than a lost connection (abort, OSError)."""
    return isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort)


def size_chunks(sized: list[tuple[int, int]], budget: int) -> list[list[int]]:
    """(uid, size) in order -> runs of UIDs whose sizes add up to at most ``budget`` bytes; a
    message larger than the budget is a chunk of its own."""
    chunks: list[list[int]] = []
    current: list[int] = []
    total = 0
    for uid, size in sized:
        if current and total + size > budget:
            chunks.append(current)
            current, total = [], 0
        current.append(uid)
        total += size
    if current:
        chunks.append(current)
    return chunks
