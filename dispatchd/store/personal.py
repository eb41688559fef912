"""Where personal data lives: one entry per table, read by erasure (``flows/erasure.py``) and
by export (``flows/export.py``). A new table that keeps an address, a name or someone's words
adds one ``PersonalData`` entry here (``tests/unit/test_personal_registry.py`` fails until it does
for a table with an address-like column).

A row is the person's own when one of its ``equals`` columns is their address or its
``belongs`` column points at a row of theirs (a task of theirs, a message of theirs): erasure
deletes it (``delete``) or replaces the address by the pseudonym in ``replace`` columns, sets
``erase`` columns to fixed values and lets go of the ``blobs`` it names. A row that only
``mentions`` them (someone else's mail that lists them, an event that names them) keeps its
content with their address and names redacted in those columns. What statistics need (dates,
types, queues, statuses, SLA outcomes) is in no list and stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERASED = "[erased]"


@dataclass(frozen=True)
class PersonalData:
    table: str
    equals: tuple[str, ...] = ()                      # columns holding an address
    mentions: tuple[str, ...] = ()                    # columns whose text may contain it
    belongs: tuple[tuple[str, str], ...] = ()         # (column, table): points at a row of theirs
    replace: tuple[str, ...] = ()                     # the address becomes the pseudonym here
    erase: dict[str, object] = field(default_factory=dict)  # column -> the value it gets (own rows)
    blobs: tuple[str, ...] = ()                       # blob columns: released, then ""
    delete: bool = False                              # the row goes altogether


# Order matters: a table's ``belongs`` may only name tables above it.
PERSONAL_DATA: tuple[PersonalData, ...] = (
    PersonalData("task", equals=("sender",), replace=("sender", "message_id"),
                 erase={"description": ERASED, "subject": ERASED, "sender_name": "", "tags": ""}),
    PersonalData("inbound_message", equals=("sender",), belongs=(("task_id", "task"),),
                 replace=("sender", "message_id", "dedup_key"),
                 erase={"subject": ERASED, "reason": "", "body_hash": None, "mailbox_address": ""},
                 blobs=("raw_sha256",)),
    PersonalData("task_event", equals=("actor",), mentions=("detail",), belongs=(("task_id", "task"),),
                 replace=("actor", "message_id"), erase={"detail": ""}),
    PersonalData("attachment", belongs=(("task_id", "task"), ("inbound_id", "inbound_message")),
                 erase={"filename": ERASED}, blobs=("sha256",)),
    PersonalData("outbox", mentions=("recipients", "raw"), belongs=(("task_id", "task"),), replace=("recipients",),
                 erase={"subject": ERASED, "raw": b"", "last_error": ""}),
    PersonalData("request_text", belongs=(("task_id", "task"),), erase={"subject": "", "body": ""}),
    PersonalData("task_follower", equals=("address", "added_by"), replace=("address", "added_by")),
    PersonalData("job_run", equals=("recipient",), replace=("recipient",)),
    PersonalData("reply_tally", mentions=("scope",), delete=True),
    PersonalData("staff_away", equals=("email",), delete=True),
    PersonalData("staff_signin", equals=("email",), delete=True),
    PersonalData("staff_session", equals=("email",), delete=True),
    PersonalData("integration_event", mentions=("body",), belongs=(("task_id", "task"),),
                 erase={"body": '{"erased":true}'}),
    PersonalData("call_booking", belongs=(("task_id", "task"),), erase={"note": ""}),
    PersonalData("call_attendee", equals=("address",), belongs=(("task_id", "task"),), replace=("address",)),
)

# Columns that look like they could hold personal data but do not (checked by the registry test):
# staff names chosen by the agency, ids and hashes, our own addresses.
NOT_PERSONAL: frozenset[tuple[str, str]] = frozenset({
    ("task", "assignee"), ("task", "producer"), ("task", "client"), ("task", "claimed_client"),
    ("inbound_message", "account"), ("outbox", "envelope_from"), ("mailbox_cursor", "account"),
    ("integration_delivery", "destination"), ("integration_destination", "name"),
    ("outbox", "claimed_by"), ("integration_delivery", "claimed_by"), ("request_text", "client"),
    ("integration_event", "client"), ("lifecycle_run", "subject"),
})


def entry_for(table: str) -> PersonalData | None:
    return next((e for e in PERSONAL_DATA if e.table == table), None)
