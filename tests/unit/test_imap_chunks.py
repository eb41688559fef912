"""FETCH chunks capped by total RFC822.SIZE (mail/imap.size_chunks)."""

from __future__ import annotations

import pytest

from dispatchd.mail.imap import size_chunks


@pytest.mark.parametrize(("sized", "budget", "expected"), [
    ([], 10, []),
    ([(1, 3), (2, 3), (3, 3)], 10, [[1, 2, 3]]),
    ([(1, 4), (2, 4), (3, 4)], 10, [[1, 2], [3]]),
    ([(1, 5), (2, 5), (3, 5)], 10, [[1, 2], [3]]),          # exactly the budget fits
    ([(1, 50), (2, 1), (3, 1)], 10, [[1], [2, 3]]),         # too big for any budget: alone
    ([(1, 1), (2, 50), (3, 1)], 10, [[1], [2], [3]]),
    ([(7, 0), (9, 0)], 1, [[7, 9]]),                        # sizes unknown (0): one chunk, fetch_batch caps it
])
def test_size_chunks(sized: list[tuple[int, int]], budget: int, expected: list[list[int]]) -> None:
    assert size_chunks(sized, budget) == expected
