"""Mail over ``[intake] max_message_mb``: only its header is kept, it is recorded and answered."""

from __future__ import annotations

from sqlmodel import Session

from dispatchd.domain.loops import automation_reason
from dispatchd.domain.models import Disposition, InboundMail, RawMail
from dispatchd.flows.intake_deps import IntakeDeps, our_addresses
from dispatchd.flows.intake_record import MessageRecord, Outcome, finish
from dispatchd.flows.notices import too_large_reply
from dispatchd.flows.recipients import may_answer


def keep_raw(raw: RawMail, deps: IntakeDeps) -> str:
    """Store the raw bytes; of mail over the size limit (answered, recorded) only the header."""
    return deps.blobs.put(_header_section(raw.data) if is_oversize(raw, deps) else raw.data)


def is_oversize(raw: RawMail, deps: IntakeDeps) -> bool:
    return max(raw.size, len(raw.data)) > deps.config.intake.max_message_bytes


def _header_section(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    end = data.find(b"\n\n") if end < 0 else end
    return data[:end] + b"\r\n\r\n" if end >= 0 else data[:65536]


def reject_oversize(session: Session, row: MessageRecord, raw: RawMail, mail: InboundMail,
                    deps: IntakeDeps) -> Outcome:
    size_mb = max(raw.size, len(raw.data)) / 1024 / 1024
    limit_mb = deps.config.intake.max_message_bytes / 1024 / 1024
    reason = f"message is {size_mb:.1f} MB; the limit is {limit_mb:.0f} MB"
    row.size = max(raw.size, len(raw.data))
    notices = []
    robot = automation_reason(mail, our_addresses(deps.config), row.mailbox_address.rpartition("@")[2])
    if robot is None and may_answer(mail, deps.config):
        notices.append(too_large_reply(mail, size_mb, limit_mb, deps.notices))
    return finish(session, row, Disposition.REJECTED, reason, notices, deps)
