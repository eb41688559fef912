"""Storing an inbound message's attachments with its task."""

from __future__ import annotations

from sqlmodel import Session

from dispatchd.domain.models import InboundMail
from dispatchd.flows.intake_deps import IntakeDeps
from dispatchd.flows.intake_record import MessageRecord
from dispatchd.store.tables import Attachment, Task


def store_attachments(session: Session, row: MessageRecord, mail: InboundMail, task: Task,
                      deps: IntakeDeps) -> list[str]:
    """Store attachments up to the size limit; larger ones are named but not kept."""
    names = []
    limit = deps.config.intake.max_attachment_bytes
    for attachment in mail.attachments:
        if len(attachment.payload) > limit:
            names.append(f"{attachment.filename} (not stored: {len(attachment.payload) / 1024 / 1024:.1f} MB "
                         f"is over the {limit / 1024 / 1024:.0f} MB limit)")
            continue
        digest = deps.blobs.put(attachment.payload)
        session.add(Attachment(task_id=task.id, inbound_id=row.id, filename=attachment.filename,  # type: ignore[arg-type]
                               content_type=attachment.content_type[:200], size=len(attachment.payload),
                               sha256=digest))
        names.append(attachment.filename)
    return names
