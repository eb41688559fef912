"""The database schema. Timestamps are stored in UTC; the schema version lives in ``meta``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class Meta(SQLModel, table=True):
    key: str = Field(primary_key=True)
    value: str


class Task(SQLModel, table=True):
    # Assignment counts each member's active tasks for every new task.
    # Round robin asks who in a queue was given work last; `next` reads unassigned work in rank order.
    __table_args__ = (Index("ix_task_assignee_status", "assignee", "status"),
                      Index("ix_task_queue_assigned", "queue", "assigned_at"),
                      Index("ix_task_waiting", "assignee", "priority", "due_at"))
    id: int | None = Field(default=None, primary_key=True)
    client: str | None = Field(default=None, index=True)
    type: str | None = None
    queue: str = Field(index=True)
    priority: str
    status: str = Field(index=True)
    description: str
    subject: str
    sender: str
    sender_name: str = ""
    assignee: str | None = None
    producer: str | None = None
    sla: str
    due_at: datetime | None = None
    due_explanation: str = ""
    message_id: str = Field(index=True)
    tags: str = ""
    created_at: datetime
    updated_at: datetime
    mailbox: str | None = None  # the [[mailbox]] name it came in through
    # The client the subject named when the sender is not on that client's list: shown to
    # whoever triages ("claims to be Acme"), never used to decide who sees the task.
    claimed_client: str | None = None
    # What the rules ask of whoever takes it: required skills and preferences, written
    # "shopify wordpress | prefer: Ben" ("" = nothing special); the client's language and
    # region are read from config when it is assigned.
    needs: str = ""
    assigned_at: datetime | None = None  # when the current assignee got it (for max_per_day)


class TaskEvent(SQLModel, table=True):
    """Append-only audit log: every change to a task, who made it, when and why."""

    __tablename__ = "task_event"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    at: datetime
    actor: str
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    message_id: str | None = None
    detail: str = ""


class InboundMessage(SQLModel, table=True):
    """Every message fetched, whatever became of it; (folder, UIDVALIDITY, UID) is unique."""

    __tablename__ = "inbound_message"
    __table_args__ = (UniqueConstraint("account", "folder", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str
    folder: str
    uidvalidity: int
    uid: int
    mailbox_address: str
    message_id: str = Field(index=True)
    # Message-ID + receiving address; NULL for duplicates so they can still be recorded.
    dedup_key: str | None = Field(default=None, unique=True)
    sender: str = ""
    subject: str = ""
    received_at: datetime
    disposition: str = Field(index=True)
    reason: str = ""
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    raw_sha256: str
    size: int
    acknowledged: bool = False
    body_hash: str | None = Field(default=None, index=True)
    # The server refused to move (or flag) it after it was processed: left where it is, listed by
    # `dispatchd quarantine`, not tried again until `quarantine retry`.
    unmovable: str | None = None


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    inbound_id: int = Field(foreign_key="inbound_message.id")
    filename: str
    content_type: str
    size: int
    sha256: str


class Outbox(SQLModel, table=True):
    """Rendered mail waiting to be sent; written in the transaction that caused it."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    kind: str
    envelope_from: str
    recipients: str
    subject: str
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    next_attempt_at: datetime
    claimed_at: datetime | None = None
    claimed_by: str | None = None  # the instance sending it (see store.coordination)
    sent_at: datetime | None = None
    last_error: str = ""
    created_at: datetime


class ReplyTally(SQLModel, table=True):
    """Automatic replies per minute, for the loop breaker's hourly caps: summing at most sixty
    rows per scope costs the same in a quiet hour and in a flood, where counting outbox rows
    grew with every reply. Each writer (process and thread) has its own rows, so concurrent
    transactions never wait for each other's counter."""

    __tablename__ = "reply_tally"
    scope: str = Field(primary_key=True)  # "all", "to:<address>" or "task:<id>"
    minute: datetime = Field(primary_key=True)
    writer: str = Field(primary_key=True)
    count: int = 0


class MailboxCursor(SQLModel, table=True):
    """How far a folder has been read: the heart of exactly-once intake."""

    __tablename__ = "mailbox_cursor"
    __table_args__ = (UniqueConstraint("account", "folder"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str
    folder: str
    uidvalidity: int
    last_uid: int = 0


class SlaNotice(SQLModel, table=True):
    """One row per (task, clock, level) warning sent: each threshold is announced once."""

    __tablename__ = "sla_notice"
    __table_args__ = (UniqueConstraint("task_id", "clock", "level"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    clock: str
    level: str
    sent_at: datetime


class JobRun(SQLModel, table=True):
    """A periodic mail (a digest, a health report) that went out for a period: never twice."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "period", "recipient"),)
    id: int | None = Field(default=None, primary_key=True)
    job: str
    period: str
    recipient: str
    ran_at: datetime


class StaffAway(SQLModel, table=True):
    """'away until <date>' as sent by a staff member; work they hold is redispatched."""

    __tablename__ = "staff_away"
    email: str = Field(primary_key=True)
    until: datetime
    set_at: datetime


class RequestText(SQLModel, table=True):
    """What the triage model reads of a new task, kept at intake (the body with quoted text cut,
    at most 4,000 characters): every typed task is a labelled example, and a correction of a
    model-routed one is a recorded model error."""

    __tablename__ = "request_text"
    task_id: int = Field(primary_key=True, foreign_key="task.id")
    client: str | None = None
    subject: str = ""
    body: str = ""
    type_word: str | None = None      # an unknown type word of a well-formed subject
    origin: str = "subject"           # subject (typed by the client) | model (routed by it) | triage
    predicted: str | None = None      # the model's best guess at intake
    confidence: float | None = None
    model_version: int | None = None
    corrected: bool = False           # a person set the type or queue afterwards
    created_at: datetime = Field(index=True)


class TriageModelRow(SQLModel, table=True):
    """One trained triage model: its arrays as a NumPy .npz (no pickle) and what it was measured
    at. Exactly one row is ``active``; the ones it replaced are kept and can be restored."""

    __tablename__ = "triage_model"
    id: int | None = Field(default=None, primary_key=True)   # the model's version
    trained_at: datetime
    examples: int
    accuracy: float
    measured_on: int                  # held-back (or cross-validated) examples
    active: bool = Field(default=False, index=True)
    summary: str = ""                 # JSON: examples per type, confusion matrix, notes
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TaskFollower(SQLModel, table=True):
    """Someone of the task's client who hears of its progress besides its sender: cc'd on the
    request, or added by a reply ('add follower …'). Only the client's own addresses
    (``domain/followers``)."""

    __tablename__ = "task_follower"
    __table_args__ = (UniqueConstraint("task_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    address: str
    added_by: str
    added_at: datetime


class StaffSignIn(SQLModel, table=True):
    """A sign-in link emailed to a staff member: single use, short-lived. Only the token's hash
    is kept, so the table leaks no working link; the rows also count requests for the rate limit."""

    __tablename__ = "staff_signin"
    token_hash: str = Field(primary_key=True)
    email: str = Field(index=True)
    created_at: datetime = Field(index=True)
    expires_at: datetime
    used_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    """A signed-in staff browser (the cookie holds the token; the row its hash). Ends at
    ``expires_at``, on sign-out, or when the person is no longer [[staff]]."""

    __tablename__ = "staff_session"
    token_hash: str = Field(primary_key=True)
    email: str = Field(index=True)
    created_at: datetime
    expires_at: datetime


class IntegrationEvent(SQLModel, table=True):
    """An event for webhooks, Slack and Teams (``domain/events``), written with the audit entry
    that caused it, in the same transaction. ``body`` is the event's JSON: it names the task's
    requester (personal data), and it is the only table that keeps it: erasing a task's rows
    here (by ``task_id``) erases what integrations hold of it. ``fanned_out``: the sender has
    made its deliveries (one per destination that wants it)."""

    __tablename__ = "integration_event"
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    task_id: int | None = Field(default=None, foreign_key="task.id", index=True)
    type: str
    internal: bool = False
    client: str | None = None
    queue: str | None = None
    at: datetime
    body: str
    fanned_out: bool = Field(default=False, index=True)


class IntegrationDelivery(SQLModel, table=True):
    """One event to one destination: claimed, sent, backed off or parked like an outbox row.
    A task's deliveries to a destination go in id order (``claim_deliveries``)."""

    __tablename__ = "integration_delivery"
    __table_args__ = (UniqueConstraint("event_row", "destination"),
                      Index("ix_delivery_lane", "destination", "task_id", "status", "id"),
                      Index("ix_delivery_due", "destination", "status", "next_attempt_at"))
    id: int | None = Field(default=None, primary_key=True)
    event_row: int = Field(foreign_key="integration_event.id")
    destination: str
    task_id: int | None = None
    status: str = "pending"  # pending | sending | sent | parked
    attempts: int = 0
    next_attempt_at: datetime
    claimed_at: datetime | None = None
    claimed_by: str | None = None
    sent_at: datetime | None = None
    response: int | None = None  # the last HTTP status
    last_error: str = ""


class IntegrationDestination(SQLModel, table=True):
    """What the sender learned about a destination: gone (410, disabled until `integrations
    retry NAME`), and when its owners were last told of trouble (once, until a retry)."""

    __tablename__ = "integration_destination"
    name: str = Field(primary_key=True)
    disabled: str | None = None
    disabled_at: datetime | None = None
    owners_told_at: datetime | None = None


class LifecycleRun(SQLModel, table=True):
    """One run of pruning (retention) or one erasure of a person: what it removed, as counts.
    The audit of data that went; ``finished_at`` is empty while it runs (or if it was killed)."""

    __tablename__ = "lifecycle_run"
    id: int | None = Field(default=None, primary_key=True)
    kind: str                            # prune | forget
    subject: str = ""                    # forget: the pseudonym (never the address)
    started_at: datetime = Field(index=True)
    finished_at: datetime | None = None
    counts: str = "{}"                   # JSON: rows changed or removed per kind
    bytes_freed: int = 0


class BlobRelease(SQLModel, table=True):
    """A blob that rows stopped naming, written in the transaction that let go of it; the file is
    removed after the commit if no row names it then. A crash in between leaves this row, and
    the next run (prune, forget) finishes the removal."""

    __tablename__ = "blob_release"
    digest: str = Field(primary_key=True)
    released_at: datetime


class CallBooking(SQLModel, table=True):
    """A call for a task: proposed, picked, booked in the attendees' calendars, reminded.

    ``state``: wanted (times to propose) → proposed → picked (the client's choice, kept in the
    transaction of their reply) → holding (the slot claimed here, being put in the calendars)
    → booked; withdrawing (taken out of the calendars, then ``after_withdraw``: wanted or
    cancelled). The calendar work happens in the booking job, never inside intake's
    transaction; ``next_attempt_at`` is when it is tried (again). ``uid`` stays the same
    through reschedules, ``sequence`` grows with each invitation or cancellation mailed."""

    __tablename__ = "call_booking"
    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    uid: str = Field(unique=True)
    state: str = Field(index=True)
    duration_minutes: int
    attend: str                 # who must attend: "assignee", "queue" or staff names, comma-separated
    client_zone: str
    offered: str = ""           # ISO instants (UTC) in the order shown, comma-separated
    refused: str = ""           # instants offered before and turned down ("none of these")
    start: datetime | None = None
    end: datetime | None = None
    sequence: int = 0
    rounds: int = 0             # how many sets of times were mailed
    note: str = ""              # why new times are proposed (shown to the client)
    after_withdraw: str = ""
    next_attempt_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0
    last_error: str = ""
    client_told_delay: bool = False
    reminded: bool = False
    created_at: datetime
    updated_at: datetime


class CallAttendee(SQLModel, table=True):
    """Who takes part in a call: the staff whose calendars hold it and the client's address
    (personal data: keyed by task for ``dispatchd forget``). ``partstat``: their calendar's
    answer to the invitation (ACCEPTED, DECLINED, TENTATIVE) once one arrived."""

    __tablename__ = "call_attendee"
    __table_args__ = (UniqueConstraint("booking_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(foreign_key="call_booking.id", index=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    address: str = Field(index=True)
    role: str                   # staff | client
    partstat: str = "NEEDS-ACTION"
    answered_at: datetime | None = None
