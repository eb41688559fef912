"""Log lines: one write each (a process killed between two writes must not join two lines),
no CR/LF from header text, secrets redacted."""

import io
import json
import logging

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


def test_libraries_standard_logging_warnings_come_out_as_our_json_lines() -> None:
    """The soak found bare 'Email content ... not handled' lines from mail-parser in the daemon's
    JSON log: Python's last-resort handler wrote them to stderr."""
    stream = CountingStream()
    configure_logging("info", "json", stream)
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %s was missed", "sla")
    logging.getLogger("apscheduler.scheduler").info("Job executed successfully")
    logging.getLogger("mailparser.core").warning("Email content 'rfc822-headers' not handled")
    assert len(stream.writes) == 1
    line = json.loads(stream.writes[0])
    assert line["event"] == "Run time of job sla was missed" and line["level"] == "warning"
    assert line["logger"] == "apscheduler.scheduler"
