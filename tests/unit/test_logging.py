"""Log lines: one write each (a process killed between two writes must not join two lines),
no CR/LF from header text, secrets redacted."""

import io
import json

import structlog

from dispatchd.logging import configure_logging


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def isatty(self) -> bool:
        return False


def test_each_line_is_one_write_ending_in_a_newline() -> None:
    stream = CountingStream()
    configure_logging("info", "json", stream)
    structlog.get_logger().info("mail.fetched", uid=7, subject="a\r\nBcc: x", password="hunter2")
    structlog.get_logger().info("mail.fetched", uid=8)
    assert len(stream.writes) == 2 and all(w.endswith("\n") and w.count("\n") == 1 for w in stream.writes)
    first = json.loads(stream.writes[0])
    assert first["subject"] == "a\\r\\nBcc: x" and first["password"] == "[redacted]"
