import pytest

from dispatchd.domain.models import ParsedSubject, Priority, SubjectError
from dispatchd.domain.subject import parse_subject, strip_prefixes, task_reference

P = ParsedSubject


@pytest.mark.parametrize("subject, expected", [
    ("[Acme] - Content - Blog post on topic clusters", P("Acme", "Content", "Blog post on topic clusters")),
    ("[Acme] - [Content] - Blog post", P("Acme", "Content", "Blog post")),
    ("[acme]   -   content   -   blog   post", P("acme", "content", "blog post")),
    ("[Acme] – Design — New logo", P("Acme", "Design", "New logo")),
    ("[Acme] | Tech | Login broken", P("Acme", "Tech", "Login broken")),
    ("Acme | Tech | Login broken", P("Acme", "Tech", "Login broken")),
    ("Acme: bug: login broken", P("Acme", "bug", "login broken")),
    ("Acme - Dev - fix e-mail follow-up", P("Acme", "Dev", "fix e-mail follow-up")),
    ("[Acme]Content - x", P("Acme", "Content", "x")),
    ("[Acme] Content - x", P("Acme", "Content", "x")),
    ("[Acme] - Content - Blog: part 2 - the sequel", P("Acme", "Content", "Blog: part 2 - the sequel")),
    ("Re: [Acme] - Content - x", P("Acme", "Content", "x")),
    ("RE: Fwd: AW: SV: [Acme] - Content - x", P("Acme", "Content", "x")),
    ("Fw: WG: VS: Antw: RIF: Odp: Vá: [Acme] - Content - x", P("Acme", "Content", "x")),
    ("回复: [Acme] - Content - x", P("Acme", "Content", "x")),
    ("Re[2]: [Acme] - Content - x", P("Acme", "Content", "x")),
    ("[Acme] - Content - Urgent fix [P0]", P("Acme", "Content", "Urgent fix", Priority.P0)),
    ("[p1] [Acme] - Content - x", P("Acme", "Content", "x", Priority.P1)),
    ("[Acme] - Content [P3] - x", P("Acme", "Content", "x", Priority.P3)),
    ("[Acme] - Content - Landing page [ABC-123]",
     P("Acme", "Content", "Landing page [ABC-123]", None, ("[ABC-123]",))),
    ("[ACME Corp] - Graphic Design - Banner", P("ACME Corp", "Graphic Design", "Banner")),
    ("  [Acme]\t-\tContent\t-\tTabs  ", P("Acme", "Content", "Tabs")),
])
def test_parses_what_people_type(subject: str, expected: ParsedSubject) -> None:
    assert parse_subject(subject) == expected


@pytest.mark.parametrize("subject, reason_part", [
    ("", "empty"),
    ("   ", "empty"),
    ("Re: ", "empty"),
    ("hello there", "client"),
    ("quick question about our invoice", "client"),
    ("[Acme]", "three parts"),
    ("[Acme] - Content", "three parts"),
    ("[Acme] - - x", "three parts"),
    ("[] - Content - x", "client"),
    ("[Acme] - Content - ", "three parts"),
    ("[" + "A" * 80 + "] - Content - x", "too long"),
])
def test_refuses_with_a_reason(subject: str, reason_part: str) -> None:
    result = parse_subject(subject)
    assert isinstance(result, SubjectError)
    assert reason_part in result.reason


def test_nul_bytes_are_dropped() -> None:
    assert parse_subject("[Acme] - Content - a\x00b") == P("Acme", "Content", "ab")


@pytest.mark.parametrize("subject, expected", [
    ("Re: [#42] Received: Blog post", 42),
    ("[#7]", 7),
    ("no tag here [42]", None),
    ("[# 42] spaced", None),
    ("", None),
])
def test_task_reference(subject: str, expected: int | None) -> None:
    assert task_reference(subject) == expected


def test_prefixes_stop_at_real_text() -> None:
    assert strip_prefixes("Re: Re: Revision plan") == "Revision plan"
    assert strip_prefixes("Antwort: Fwd: Ideas") == "Ideas"
    assert strip_prefixes("Research: results") == "Research: results"
