"""Deciding "new mail" from the folder's message count (mail/imap_idle.count_after)."""

from __future__ import annotations

import pytest

from dispatchd.mail.imap_idle import count_after

E, X = b"EXISTS", b"EXPUNGE"


@pytest.mark.parametrize(("count", "responses", "expected"), [
    (0, [], (0, False)),
    (3, [(3, E)], (3, False)),                       # SELECT's own count again: not news
    (3, [(4, E)], (4, True)),
    (5, [(2, X), (1, X), (3, E)], (3, False)),        # our MOVE's expunges, then the count restated
    (5, [(2, X), (1, X), (4, E)], (4, True)),         # ... and one new message
    (5, [(6, E), (2, X)], (5, True)),                 # new mail, then an expunge
    (1, [(1, X), (1, X)], (0, False)),                # never below zero
    (2, [(b"OK", b"Still here"), (1, b"FETCH", (b"FLAGS", ()))], (2, False)),  # flag changes, keep-alives
    (2, [(2, b"RECENT")], (2, False)),
])
def test_count_after(count: int, responses: list[object], expected: tuple[int, bool]) -> None:
    assert count_after(count, responses) == expected
