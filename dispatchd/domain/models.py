"""Values passed between the pipeline stages. Frozen, no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Priority(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class Status(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    REVISIONS_NEEDED = "revisions_needed"
    READY_FOR_DELIVERY = "ready_for_delivery"
    DELIVERED = "delivered"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Disposition(StrEnum):
    """What became of one inbound message; every fetched UID ends in exactly one of these."""

    TASK = "task"
    TRIAGE = "triage"
    REPLY = "reply"
    COMMAND = "command"
    BOUNCE = "bounce"
    REJECTED = "rejected"
    AUTOMATED = "automated"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    # In the folder before its first start: recorded (no task, no mail), left where it is on the
    # server until ``dispatchd import`` takes it in.
    BEFORE_GO_LIVE = "before_go_live"


@dataclass(frozen=True)
class RawMail:
    """Bytes as fetched, with where they came from on the server."""

    folder: str
    uidvalidity: int
    uid: int
    data: bytes
    size: int = -1  # the full size on the server; larger than len(data) when cut at the limit


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True)
class DeliveryReport:
    """One recipient's line of a delivery status notification (RFC 3464)."""

    recipient: str
    action: str
    status: str
    diagnostic: str = ""


@dataclass(frozen=True)
class InboundMail:
    """One parsed email; what the rest of the pipeline knows of the MIME."""

    message_id: str
    sender: str
    sender_name: str
    recipients: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    in_reply_to: str | None
    references: tuple[str, ...]
    headers: dict[str, tuple[str, ...]]
    attachments: tuple[MailAttachment, ...] = ()
    parse_problems: tuple[str, ...] = ()
    html_only: bool = False
    delivery_reports: tuple[DeliveryReport, ...] = ()
    bounced_message_id: str | None = None

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class ParsedSubject:
    client_label: str
    type_label: str
    description: str
    priority: Priority | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubjectError:
    reason: str


@dataclass(frozen=True)
class Request:
    """An inbound mail read as a request; ``problems`` non-empty means it needs triage."""

    sender: str
    client: str | None
    type: str | None
    priority: Priority | None
    description: str
    body: str
    subject: str
    tags: tuple[str, ...] = ()
    attachment_names: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    from_staff: bool = False
    mailbox: str = ""  # the [[mailbox]] name it arrived through
    claimed_client: str | None = None  # the client the subject named, when that is not ``client``

    @property
    def needs_triage(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class RouteDecision:
    """Where a request goes and why; ``reasons`` are stored in the audit log."""

    queue: str
    priority: Priority
    sla: str
    assignee: str | None = None
    notify: tuple[str, ...] = ()
    notify_client: bool = True
    reasons: tuple[str, ...] = field(default_factory=tuple)
    triage: bool = False
    require: tuple[str, ...] = ()  # skills whoever takes it must have (types' and rules' `require`)
    prefer: tuple[str, ...] = ()   # staff names or skills that win when loads are equal
