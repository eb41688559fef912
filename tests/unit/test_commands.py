import pytest

from dispatchd.domain.commands import MAX_COMMANDS, Command, parse_reply


def names(text: str, fresh: bool = False) -> list[tuple[str, str, int | None]]:
    return [(c.name, c.argument, c.task_id) for c in parse_reply(text, fresh).commands]


@pytest.mark.parametrize("text, expected", [
    ("start", [("start", "", None)]),
    ("Start.", [("start", "", None)]),
    ("START!", [("start", "", None)]),
    ("  - approve", [("approve", "", None)]),
    ("* Review", [("review", "", None)]),
    ("1. take", [("take", "", None)]),
    ("Status?", [("status", "", None)]),
    ("LGTM", [("approve", "", None)]),
    ("revise: tighten the intro", [("revise", "tighten the intro", None)]),
    ("Revise - shorter, please!", [("revise", "shorter, please!", None)]),
    ("cancel: client withdrew", [("cancel", "client withdrew", None)]),
    ("assign Ben", [("assign", "Ben", None)]),
    ("assign to ben@agency.test", [("assign", "ben@agency.test", None)]),
    ("priority p1", [("priority", "P1", None)]),
    ("Priority: P0", [("priority", "P0", None)]),
    ("prio 3", [("priority", "P3", None)]),
    ("due 2026-12-01", [("due", "2026-12-01", None)]),
    ("due: 2026-12-01 14:30", [("due", "2026-12-01T14:30:00", None)]),
    ("due 01.12.2026", [("due", "2026-12-01", None)]),
    ("note: called them. they agree", [("note", "called them. they agree", None)]),
    ("type Design", [("type", "Design", None)]),
    ("client ACME Corp", [("client", "ACME Corp", None)]),
    ("queue dev", [("queue", "dev", None)]),
    ("start\nreview\n\napprove", [("start", "", None), ("review", "", None), ("approve", "", None)]),
])
def test_grammar(text: str, expected: list[tuple[str, str, int | None]]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize("text", [
    "Thanks, looks great!",
    "start working on this now please",          # prose starting with a command word
    "Thanks!\nstart",                            # a command after prose is not read
    "Hi team,\n\nclose",                         # ditto after a blank line
    "",
    "starting soon",
    "restart",
])
def test_prose_is_not_a_command(text: str) -> None:
    assert names(text) == []


def test_reading_stops_at_first_non_command_line() -> None:
    parsed = parse_reply("start\nThanks, Ana\n--\nclose\ncancel: signature says so")
    assert [c.name for c in parsed.commands] == ["start"]
    assert parsed.note == "Thanks, Ana\n--\nclose\ncancel: signature says so"


def test_at_most_ten_command_lines() -> None:
    parsed = parse_reply("\n".join(["status"] * (MAX_COMMANDS + 3)))
    assert len(parsed.commands) == MAX_COMMANDS and parsed.problems


@pytest.mark.parametrize("text, problem", [
    ("priority high", "priority must be P0, P1, P2 or P3"),
    ("due tomorrow-ish", "write the date as YYYY-MM-DD"),
    ("assign", "assign needs a value"),
    ("note:", "note needs a value"),
])
def test_command_words_used_wrongly_are_reported(text: str, problem: str) -> None:
    parsed = parse_reply(text)
    assert not parsed.commands and any(problem in p for p in parsed.problems)


@pytest.mark.parametrize("text, expected", [
    ("start 42", [("start", "", 42)]),
    ("take #42", [("take", "", 42)]),
    ("assign 42 ben", [("assign", "ben", 42)]),
    ("priority 7 P0", [("priority", "P0", 7)]),
    ("next", [("next", "", None)]),
])
def test_fresh_email_names_the_task(text: str, expected: list[tuple[str, str, int | None]]) -> None:
    assert names(text, fresh=True) == expected


def test_line_is_kept_for_the_results_reply() -> None:
    assert parse_reply("  Approve :)").commands == (Command("approve", "", None, "Approve :)"),)
