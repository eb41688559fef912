"""Files staff send to the client with ``reply: …`` or ``deliver``: which may go, and why not. Pure.

They are the attachments of the staff member's own reply, kept content-addressed like every
inbound attachment (``[intake] max_attachment_mb`` each). One email carries them all, so their
sum is held to the same limit; anything larger is refused with the advice to send a link.
"""

from __future__ import annotations

from dispatchd.domain.models import MailAttachment


def deliverable_files(attachments: tuple[MailAttachment, ...], limit: int) -> tuple[tuple[MailAttachment, ...],
                                                                                   tuple[str, ...]]:
    """(the files kept, the names of those over ``limit`` bytes and so not kept)."""
    kept = tuple(a for a in attachments if len(a.payload) <= limit)
    return kept, tuple(a.filename for a in attachments if len(a.payload) > limit)


def files_refusal(kept: tuple[MailAttachment, ...], too_large: tuple[str, ...], limit: int) -> str | None:
    """None if the files can go to the client in one email; otherwise what to do instead."""
    megabytes = f"{limit / 1024 / 1024:.0f}" if limit >= 1024 * 1024 else f"{limit / 1024 / 1024:.2f}"
    if too_large:
        return (f"{', '.join(too_large)}: over the {megabytes} MB an email may carry here; "
                "put it on a shared drive and send the link instead")
    total = sum(len(a.payload) for a in kept)
    if total > limit:
        return (f"the files come to {total / 1024 / 1024:.1f} MB together, over the {megabytes} MB an email "
                "may carry here; send some as a link instead")
    return None
