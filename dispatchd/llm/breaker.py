"""A circuit breaker for the chat endpoint: after a few failed calls in a row, none for a while.

An endpoint that is down (Ollama stopped, the GPU box rebooting, a hosted API's outage) would
otherwise cost every run of the job ``max_per_run`` timeouts, a minute of waiting each run,
and a log line per task. The breaker opens after ``failures`` failed calls in a row and lets
no call through for ``pause``; then one call tries again: a success closes it, a failure
opens it for another pause. ``failed`` and ``succeeded`` say when the state changes, so that an
outage is logged once when it begins and once when it ends, not once per call.

It lives in memory, one per daemon (``IntakeDeps.second_opinion_breaker``): after a restart the
endpoint is simply tried again. The caller passes the time, so tests move it by hand.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

FAILURES_TO_OPEN = 3
PAUSE = timedelta(minutes=5)


class CircuitBreaker:
    def __init__(self, failures: int = FAILURES_TO_OPEN, pause: timedelta = PAUSE):
        self.failures = failures
        self.pause = pause
        self._in_a_row = 0
        self._closed_from: datetime | None = None  # open until then; None: closed
        self._lock = threading.Lock()  # the job runs in a worker thread; `dispatchd job` in another

    def allows(self, now: datetime) -> bool:
        """Whether a call may be made now: closed, or open and its pause is over (one trial)."""
        with self._lock:
            return self._closed_from is None or now >= self._closed_from

    def open_until(self) -> datetime | None:
        with self._lock:
            return self._closed_from

    def failed(self, now: datetime) -> bool:
        """A call failed; True when this opens the breaker after it was closed (an outage begins)."""
        with self._lock:
            self._in_a_row += 1
            if self._in_a_row < self.failures:
                return False
            began = self._closed_from is None
            self._closed_from = now + self.pause
            return began

    def succeeded(self) -> bool:
        """A call got an answer; True when this closes an open breaker (the outage is over)."""
        with self._lock:
            ended = self._closed_from is not None
            self._in_a_row = 0
            self._closed_from = None
            return ended
