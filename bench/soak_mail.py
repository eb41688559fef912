"""The soak's steady mix of inbound mail (``bench.soak``), and what it reads back from the sink.

Requests come from a pool of addresses per client with a unique detail in every body, so that
the loop breaker's per-sender and same-text caps (domain/loops_budget) never count them as a
robot: a real agency's clients are many people writing different things. Replies answer what
the daemon actually sent (staff to their 'new task' notice, clients to their confirmation),
bounces are RFC 3464 reports addressed to the VERP envelope sender of one of our emails.
"""

from __future__ import annotations

import email.utils
import itertools
import random
import json
import re
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path

from dispatchd.demo import INTAKE

TOPICS = ("topic clusters", "the spring sale", "our new pricing page", "the Q3 webinar", "holiday opening hours",
          "the product launch", "customer stories", "the careers page", "our newsletter", "the trade fair")
CONVENTION = (("Acme", "acme.test", "Content", "Blog post about {topic}"),
              ("Acme", "acme.test", "Design", "Banner for {topic}"),
              ("Globex", "globex.test", "Technical", "Form on {topic} page sends no mail"),
              ("Globex", "globex.test", "Strategy", "Planning call about {topic}"),
              ("Tyler", "tyler-seo.test", "Content", "Landing page copy for {topic}"))
PLAIN = (("globex.test", "New banner", "Hi Ben,\n\ncould we get a new banner for {topic}? 1200x400 and a square "
                                       "one for Instagram, colours as last time (ref {n}).\n\nBest,\n{name}"),
         ("acme.test", "text needed", "Hello Ana,\n\nwe need about {words} words on {topic} for the blog, "
                                      "reference {n}.\n\nThanks,\n{name}"),
         ("globex.test", "website problem", "Hi,\n\nsince this morning the page about {topic} shows an error "
                                            "500 (ticket {n}). Can you have a look?\n\n{name}"),
         ("acme.test", "Texte", "Hallo zusammen,\n\nwir brauchen {words} Wörter zu {topic} für die Website "
                                "(Nr. {n}).\n\nGrüße\n{name}"))
NAMES = ("Bob", "Carla", "Jon", "Hans", "Dana", "Mia", "Leo", "Ines", "Omar", "Zoe")
STAFF_ANSWERS = ("start", "reply: Hi, thanks, a first draft will be with you on Thursday.", "note: checked with the team",
                 "start\n\nOn it!", "done")
# A lead in every queue (bench/soak.py's config) who cancels each task a minute or more after it
# came: the open backlog then stays level, as in an agency in its steady state, and memory is
# judged against steady data, not against job working sets that grow with a backlog.
CLOSER = "lee@agency.test"
CLOSE_AFTER = 60.0  # seconds
NEW_TASK = re.compile(r"^\[#\d+\] New \S+ in ")  # a staff member's 'new task' notice
CONFIRMATION = re.compile(r"^\[#(\d+)\] Received( \(a tip for next time\))?:")


@dataclass(frozen=True)
class Sent:
    """One email the daemon handed to the sink, headers only."""

    at: float  # perf_counter when the sink accepted it
    envelope_from: str
    rcpt: tuple[str, ...]
    headers: dict[str, str]


@dataclass
class Mix:
    """Builds the next inbound email and remembers what it needs to answer later."""

    seed: int = 1
    ledger: Path | None = None  # every email and confirmation as a JSON line, for bench.soak_verdict DIR
    requests: dict[str, tuple[float, str]] = field(default_factory=dict)  # Message-ID -> (append time, kind)
    answers: dict[str, list[float]] = field(default_factory=dict)  # request Message-ID -> confirmation times
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.serial = itertools.count(1)
        self.staff_notices: deque[Sent] = deque(maxlen=50)
        self.to_close: deque[Sent] = deque()  # the closer's notices, oldest first
        self.confirmations: deque[Sent] = deque(maxlen=50)
        self.bounceable: deque[Sent] = deque(maxlen=50)
        self.seen = 0

    # -- reading what the sink received --------------------------------------------------------
    def read_sink(self, messages: list) -> list[float]:  # type: ignore[type-arg]
        """Take in the sink's new messages; the APPEND→confirmation latencies among them."""
        latencies = []
        parser = BytesHeaderParser(policy=default_policy)
        while self.seen < len(messages):
            received = messages[self.seen]
            self.seen += 1
            parsed = parser.parsebytes(received.data)
            headers = {k: str(v) for k, v in parsed.items()}
            sent = Sent(received.at, received.mail_from, tuple(received.rcpt_tos), headers)
            subject, in_reply_to = headers.get("Subject", ""), headers.get("In-Reply-To", "").strip()
            if CONFIRMATION.match(subject) and in_reply_to in self.requests:
                self.answers.setdefault(in_reply_to, []).append(received.at)
                self._note({"answer": in_reply_to, "at": received.at})
                latencies.append(received.at - self.requests[in_reply_to][0])
                self.confirmations.append(sent)
            elif NEW_TASK.match(subject) and sent.rcpt[0] == CLOSER:
                self.to_close.append(sent)
            elif NEW_TASK.match(subject) and sent.rcpt[0].endswith("@agency.test"):
                self.staff_notices.append(sent)
            if "X-Dispatchd-Task" in headers and not any(r.endswith("agency.test") for r in sent.rcpt):
                self.bounceable.append(sent)
        return latencies

    # -- the next inbound email -----------------------------------------------------------------
    def next_mail(self, now: float) -> bytes:
        """One email of the mix; requests are remembered with ``now`` (the APPEND's start)."""
        closable = bool(self.to_close) and now - self.to_close[0].at > CLOSE_AFTER
        weights = {"request-convention": 0.25, "request-plain": 0.15, "close-out": 0.40 if closable else 0,
                   "staff-reply": 0.08 if self.staff_notices else 0, "client-reply": 0.05 if self.confirmations else 0,
                   "auto-reply": 0.03 if self.confirmations else 0, "bounce": 0.02 if self.bounceable else 0,
                   "list": 0.02}
        kind = self.random.choices(list(weights), list(weights.values()))[0]
        message_id = None
        if kind == "request-convention":
            raw, message_id = self._convention()
        elif kind == "request-plain":
            raw, message_id = self._plain()
        elif kind == "close-out":
            words = f"cancel: the client withdrew it on the phone ({next(self.serial)})"
            raw = self._command(self.to_close.popleft(), words)
        elif kind == "staff-reply":
            raw = self._command(self.staff_notices.popleft(), self.random.choice(STAFF_ANSWERS))
        elif kind in ("client-reply", "auto-reply"):
            raw = self._client_reply(auto=kind == "auto-reply")
        elif kind == "bounce":
            raw = self._bounce()
        else:
            raw = self._list_mail()
        if message_id is not None:
            self.requests[message_id] = (now, kind)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self._note({"mail": kind, "request": message_id, "at": now})
        return raw

    def _note(self, line: dict[str, object]) -> None:
        if self.ledger is not None:
            with open(self.ledger, "a") as handle:
                handle.write(json.dumps(line) + "\n")

    def _sender(self, domain: str) -> tuple[str, str]:
        name = self.random.choice(NAMES)
        return name, f"{name} <{name.lower()}{self.random.randrange(60)}@{domain}>"

    def _message_id(self, domain: str) -> str:
        return f"<soak-{next(self.serial)}-{self.random.getrandbits(32):08x}@{domain}>"

    def _headers(self, sender: str, to: str, subject: str, message_id: str, **extra: str) -> list[tuple[str, str]]:
        fields = [("From", sender), ("To", to), ("Subject", subject), ("Message-ID", message_id),
                  ("Date", email.utils.format_datetime(email.utils.localtime()))]
        return fields + [(k.replace("_", "-"), v) for k, v in extra.items()]

    def _convention(self) -> tuple[bytes, str]:
        client, domain, kind, description = self.random.choice(CONVENTION)
        n = next(self.serial)
        _, sender = self._sender(domain)
        message_id = self._message_id(domain)
        subject = f"[{client}] - {kind} - {description.format(topic=self.random.choice(TOPICS))} {n}"
        body = f"Hi team,\n\nplease see the subject; details for job {n} follow in a call.\n\nThanks"
        return _build(self._headers(sender, INTAKE, subject, message_id), body), message_id

    def _plain(self) -> tuple[bytes, str]:
        domain, subject, body = self.random.choice(PLAIN)
        name, sender = self._sender(domain)
        message_id = self._message_id(domain)
        text = body.format(topic=self.random.choice(TOPICS), n=next(self.serial), name=name,
                           words=self.random.choice((300, 500, 800, 1200)))
        return _build(self._headers(sender, INTAKE, subject, message_id), text), message_id

    def _command(self, notice: Sent, words: str) -> bytes:
        """A staff member's answer to their 'new task' notice, the notice quoted below."""
        headers = notice.headers
        body = f"{words}\n\nOn {headers.get('Date')}, {headers.get('From')} wrote:\n> {headers.get('Subject')}\n"
        fields = self._headers(notice.rcpt[0], headers.get("Reply-To") or headers.get("From", INTAKE),
                               f"Re: {headers.get('Subject', '')}", self._message_id("agency.test"),
                               In_Reply_To=headers.get("Message-ID", ""), References=headers.get("Message-ID", ""))
        return _build(fields, body)

    def _client_reply(self, auto: bool) -> bytes:
        confirmation = self.random.choice(self.confirmations)
        client = confirmation.rcpt[0]
        headers = confirmation.headers
        domain = client.rpartition("@")[2]
        thread = dict(In_Reply_To=headers.get("Message-ID", ""), References=headers.get("Message-ID", ""))
        to = headers.get("Reply-To") or INTAKE
        if auto:
            fields = self._headers(client, to, f"Automatic reply: {headers.get('Subject', '')}",
                                   self._message_id(domain), Auto_Submitted="auto-replied", **thread)
            return _build(fields, f"I am out of the office until {self.random.randrange(1, 28)} March.")
        fields = self._headers(client, to, f"Re: {headers.get('Subject', '')}", self._message_id(domain), **thread)
        return _build(fields, f"Thanks! One more detail: please use the new logo (file {next(self.serial)}).\n\n"
                              f"> {headers.get('Subject')}\n")

    def _bounce(self) -> bytes:
        original = self.bounceable.popleft()
        recipient = original.rcpt[0]
        domain = recipient.rpartition("@")[2]
        boundary = f"bounce-{next(self.serial)}"
        fields = self._headers(f"Mail Delivery System <MAILER-DAEMON@mx.{domain}>", original.envelope_from,
                               "Undelivered Mail Returned to Sender", self._message_id(f"mx.{domain}"),
                               Auto_Submitted="auto-replied", MIME_Version="1.0",
                               Content_Type=f'multipart/report; report-type=delivery-status; boundary="{boundary}"')
        quoted = "".join(f"{k}: {v}\r\n" for k, v in original.headers.items()
                         if k in ("From", "To", "Subject", "Message-ID", "Date"))
        body = (f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nThe mail to {recipient} could not be delivered.\r\n"
                f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{domain}\r\n\r\n"
                f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                f"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
                f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{quoted}\r\n--{boundary}--\r\n")
        return _header_bytes(fields) + body.encode()

    def _list_mail(self) -> bytes:
        n = next(self.serial)
        fields = self._headers("News <news@list.example>", "subscribers@list.example", f"Weekly marketing digest {n}",
                               self._message_id("list.example"), List_Id="<news.list.example>", Precedence="list")
        return _build(fields, f"Top {n % 10 + 3} tips for your campaign, issue {n}.")


def _header_bytes(fields: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in fields).encode()


def _build(fields: list[tuple[str, str]], body: str) -> bytes:
    head = _header_bytes([*fields, ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
                          ("Content-Transfer-Encoding", "8bit")])
    return head + b"\r\n" + body.replace("\n", "\r\n").encode() + b"\r\n"


def read_ledger(path: Path) -> Mix:
    """What a run's ledger says was sent and answered (``Mix`` without its random state in use)."""
    mix = Mix()
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if "mail" in entry:
            mix.counts[entry["mail"]] = mix.counts.get(entry["mail"], 0) + 1
            if entry["request"]:
                mix.requests[entry["request"]] = (entry["at"], entry["mail"])
        else:
            mix.answers.setdefault(entry["answer"], []).append(entry["at"])
    return mix
