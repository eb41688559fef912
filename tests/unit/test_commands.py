import pytest

from dispatchd.domain.commands import MAX_COMMANDS, Command, parse_reply, subject_command_text

NAMES = frozenset({"ana", "ben", "acme", "acme corp", "design", "content", "dev"})


def names(text: str, fresh: bool = False) -> list[tuple[str, str, int | None]]:
    return [(c.name, c.argument, c.task_id) for c in parse_reply(text, fresh, NAMES).commands]


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
    "Hi team,\n\nThanks for this.\n\nclose",     # ditto after a blank line
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


@pytest.mark.parametrize("text, expected", [
    ("Hi team,\n\nStart", [("start", "")]),                      # a greeting line first
    ("Hallo zusammen,\nstart", [("start", "")]),
    ("Dear Ms. Smith,\n\nApprove", [("approve", "")]),
    ("Ben,\napprove", [("approve", "")]),
    ("ok start", [("start", "")]),
    ("Okay, start.", [("start", "")]),
    ("start please", [("start", "")]),
    ("Hi, start please", [("start", "")]),
    ("Hi Ben, approved.", [("approve", "")]),
    ("Starting on it now", [("start", "")]),
    ("On it!", [("start", "")]),
    ("I\u2019ll take it", [("take", "")]),                       # typographic apostrophe
    ("I'll take this one.", [("take", "")]),
    ("APPROVE", [("approve", "")]),
    ("Approved \U0001F44D", [("approve", "")]),
    ("**Approve**", [("approve", "")]),
    ("due 2026-12-10", [("due", "2026-12-10")]),
    ("Deadline: 10.12.2026", [("due", "2026-12-10")]),
    ("assign to Ana", [("assign", "Ana")]),
    ("client acme corp", [("client", "acme corp")]),
    ("Type: Design", [("type", "Design")]),
    ("changes: shorter intro", [("revise", "shorter intro")]),
    ("Revise \u2013 shorter intro", [("revise", "shorter intro")]),
    ("please review", [("review", "")]),
    ("start\n\nOn it.", [("start", "")]),                         # the sentence after is the note
    ("Approved. Thanks, great work!", [("approve", "")]),         # a command as the first sentence
    ("Start. I will send the outline by Friday.", [("start", "")]),
    ("I'm on it today", [("start", "")]),
    ("Good to go!", [("approve", "")]),
    ("Approve & deliver", [("approve", ""), ("deliver", "")]),
    ("approve and deliver, thanks", [("approve", ""), ("deliver", "")]),
    ("Reviewed and approved.", [("approve", "")]),
    ("Go ahead and deliver", [("deliver", "")]),
    ("Will do, starting today", [("start", "")]),
    ("Due date is 2026-12-10", [("due", "2026-12-10")]),
    ("due by 10.12.2026", [("due", "2026-12-10")]),
])
def test_commands_where_people_put_them(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(name, argument) for name, argument, _ in names(text)] == expected


@pytest.mark.parametrize("text", [
    "Due to the holidays we will only review it next week.",
    "Client wants this by Friday, please prioritise.",
    "Changes look good, thanks!",
    "Client Services | Acme | +44 20 7946 0958",
    "Type of work is mostly copy.",
    "Queue is long this week, sorry.",
    "Assign this to whoever is free tomorrow",
    "Priority is the intro, then the rest.",
    "Starting next week we have a new contact.",
    "Start and end dates are in the brief.",
    "Status update: we are waiting for the brand team and will come back next week with details.",
    "Closed on Monday for the holiday, back Tuesday.",
    "Note that the logo changed last month",  # a note, not prose: see below
])
def test_prose_that_starts_with_a_command_word_is_prose(text: str) -> None:
    parsed = parse_reply(text, names=NAMES)
    if text.startswith("Note that"):
        assert [c.name for c in parsed.commands] == ["note"]
        return
    assert not parsed.commands and not parsed.problems and parsed.note == text


@pytest.mark.parametrize("text, question", [
    ("done", "close"),
    ("Changes", "revise"),
    ("let's start?", None),
    ("start tomorrow morning", "start"),
    ("approve once Ana has checked", "approve"),
    ("Reviewing now", "review"),
    ("Closing this one", "close"),
    ("Started on the draft", "start"),
])
def test_uncertain_lines_become_questions(text: str, question: str | None) -> None:
    parsed = parse_reply(text, names=NAMES)
    assert not parsed.commands
    assert [q.name for q in parsed.questions] == ([question] if question else [])
    assert parsed.note == text, "the words are kept for the task"


def test_the_rest_of_a_commands_line_is_the_note() -> None:
    parsed = parse_reply("Approved. Thanks, great work!\nCheers", names=NAMES)
    assert [c.name for c in parsed.commands] == ["approve"]
    assert parsed.note == "Thanks, great work!\nCheers"


def test_free_text_runs_to_the_end_of_its_paragraph() -> None:
    parsed = parse_reply("revise: the intro is too long and the second paragraph repeats the\nfirst; please cut "
                         "it.\nstatus\n\nThanks for the quick turnaround!", names=NAMES)
    assert [(c.name, c.argument) for c in parsed.commands] == [
        ("revise", "the intro is too long and the second paragraph repeats the first; please cut it."), ("status", "")]
    assert parsed.note == "Thanks for the quick turnaround!"


def test_a_problem_keeps_its_line_in_the_note() -> None:
    parsed = parse_reply("start\ndue: next friday\n\nThe client called.", names=NAMES)
    assert [c.name for c in parsed.commands] == ["start"] and parsed.problems
    assert parsed.note == "due: next friday\nThe client called."


@pytest.mark.parametrize("subject, expected", [
    ("APPROVED - RE: [#12] Blog post", ("APPROVED", True)),
    ("Approve: AW: [#12] Blog post", ("Approve", True)),
    ("start", ("start", False)),
    ("[#12] start", ("start", False)),
    ("Re: [#12] Delivered: Blog post", ("", True)),
    ("RE: AW: [#12] In review", ("", True)),
])
def test_subject_command_text(subject: str, expected: tuple[str, bool]) -> None:
    assert subject_command_text(subject) == expected
