"""The client's colleagues who follow a task: stored, added and removed.

Who may follow is decided in ``domain/followers`` (only the task's client's own addresses);
this module reads and writes the ``task_follower`` rows inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import Session, col, select

from dispatchd.domain.followers import followers_from_recipients
from dispatchd.domain.intake import Directory
from dispatchd.domain.models import InboundMail
from dispatchd.store import queries
from dispatchd.store.tables import Task, TaskFollower


def followers_of(session: Session, task_id: int | None) -> list[str]:
    """The task's followers, in the order they were added."""
    if task_id is None:
        return []
    rows = session.exec(select(TaskFollower.address).where(TaskFollower.task_id == task_id)
                        .order_by(col(TaskFollower.id)))
    return list(rows.all())


def add_followers(session: Session, task: Task, addresses: list[str], added_by: str, now: datetime) -> list[str]:
    """Add those of ``addresses`` that do not follow ``task`` yet; returns the ones added."""
    if not addresses:
        return []  # most requests copy nobody in: no query on intake's hot path
    known = set(followers_of(session, task.id))
    added = [a for a in dict.fromkeys(addresses) if a not in known]
    for address in added:
        session.add(TaskFollower(task_id=task.id, address=address, added_by=added_by, added_at=now))  # type: ignore[arg-type]
    if added:
        session.flush()
    return added


def remove_follower(session: Session, task: Task, address: str) -> bool:
    """Stop ``address`` following ``task``; False if it did not."""
    row = session.exec(select(TaskFollower).where(TaskFollower.task_id == task.id,
                                                  TaskFollower.address == address)).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def follow_from_request(session: Session, task: Task, mail: InboundMail, directory: Directory,
                        ours: Collection[str], now: datetime) -> list[str]:
    """The client's colleagues cc'd on a new request follow it (outsiders cc'd do not), and so do
    the addresses the client's ``followers`` setting names."""
    client = next((c for c in directory.clients if c.name == task.client), None)
    configured = client.followers if client else ()
    cc = followers_from_recipients(mail.recipients, mail.sender, task.client, directory, ours)
    standing = followers_from_recipients(configured, mail.sender, task.client, directory, ours)
    added = add_followers(session, task, [*cc, *standing], mail.sender or "unknown", now)
    if added:
        reasons = [f"cc'd on the request: {', '.join(a for a in added if a in cc)}" if set(added) & set(cc) else "",
                   f"follows all of {task.client}'s requests: {', '.join(a for a in added if a not in cc)}"
                   if set(added) - set(cc) else ""]
        queries.add_event(session, task, now, mail.sender or "unknown", "followers",
                          "\n".join(r for r in reasons if r), mail.message_id)
    return added
