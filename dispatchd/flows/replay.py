"""Rules replay: route stored mail again under a candidate rules set and show what would change.

"after" includes what the triage model in use would do with requests the rules cannot type.

Nothing is written: the owner sees which requests would move queue, priority or SLA before
restarting with the new rules. The raw .eml of every message is kept, so this is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.models import Disposition
from dispatchd.domain.routing import Rulebook, route
from dispatchd.flows.ingest import IntakeDeps
from dispatchd.flows.triage import classify, with_verdict
from dispatchd.mail.parse import parse_mail
from dispatchd.store.tables import InboundMessage


@dataclass(frozen=True)
class Replayed:
    message_id: str
    task_id: int | None
    subject: str
    before: tuple[str, str, str]  # queue, priority, SLA under the rules in force
    after: tuple[str, str, str]   # ... under the candidate rules
    reasons: tuple[str, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        names = ("queue", "priority", "sla")
        return tuple(n for n, b, a in zip(names, self.before, self.after) if b != a)


def replay(deps: IntakeDeps, candidate: Rulebook, since: datetime | None = None, message_id: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> Iterator[Replayed]:
    """Each stored request (of the period, or the one Message-ID) under both rule sets."""
    with Session(deps.engine) as session:
        query = select(InboundMessage).where(col(InboundMessage.disposition).in_(
            (Disposition.TASK.value, Disposition.TRIAGE.value)), InboundMessage.raw_sha256 != "")  # not pruned
        if since is not None:
            query = query.where(InboundMessage.received_at >= since)
        if message_id is not None:
            query = query.where(InboundMessage.message_id == message_id)
        rows = list(session.exec(query.order_by(col(InboundMessage.id))).all())
    directory = Directory(deps.config.clients, deps.config.staff)
    model = deps.triage.current()
    for index, row in enumerate(rows, start=1):
        mail = parse_mail(deps.blobs.get(row.raw_sha256))
        old = route(read_request(mail, directory, deps.rulebook), deps.rulebook)
        request = read_request(mail, directory, candidate)
        classified = classify(request, model, candidate, deps.config)  # what the triage model would do
        new = with_verdict(route(classified.request if classified else request, candidate), classified)
        if progress is not None:
            progress(index, len(rows))
        yield Replayed(row.message_id, row.task_id, mail.subject, (old.queue, old.priority.value, old.sla),
                       (new.queue, new.priority.value, new.sla), new.reasons)
