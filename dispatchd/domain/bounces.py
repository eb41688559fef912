"""Delivery status notifications (RFC 3464): what a status code means for us.

5.1.x  the address does not exist: stop writing to it, tell a person
5.2.x  the mailbox is full or disabled
5.7.x  refused by policy or as spam: our sending set-up needs attention
other 5.x.x  permanent failure
4.x.x  a delay report: the server is still trying; note it, change nothing
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatchd.domain.models import DeliveryReport


@dataclass(frozen=True)
class BounceVerdict:
    kind: str  # no_such_user | mailbox_unavailable | policy | permanent | delayed | delivered
    permanent: bool
    explanation: str


def classify(report: DeliveryReport) -> BounceVerdict:
    status = report.status.strip()
    action = report.action.strip()
    if action in ("delivered", "relayed", "expanded"):
        return BounceVerdict("delivered", False, f"{action} ({status})")
    if status.startswith("4") or action == "delayed":
        return BounceVerdict("delayed", False, f"delayed ({status}), the server keeps trying")
    if status.startswith("5.1."):
        return BounceVerdict("no_such_user", True, f"{report.recipient} does not exist ({status})")
    if status.startswith("5.2."):
        return BounceVerdict("mailbox_unavailable", True, f"{report.recipient}'s mailbox is full or disabled ({status})")
    if status.startswith("5.7."):
        return BounceVerdict("policy", True, f"refused by policy or as spam ({status}): check SPF/DKIM/DMARC")
    return BounceVerdict("permanent", True, f"permanent failure ({status or 'no status'})")


def worst(reports: tuple[DeliveryReport, ...]) -> tuple[DeliveryReport, BounceVerdict] | None:
    """The report that matters most: a permanent failure before a delay before a success."""
    ranked = sorted(((r, classify(r)) for r in reports), key=lambda rv: (not rv[1].permanent, rv[1].kind == "delivered"))
    return ranked[0] if ranked else None
