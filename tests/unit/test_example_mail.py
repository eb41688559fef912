"""rules/example-mail/*.jsonl: loading with located refusals, and what training makes of it."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.triage_accuracy import Item, leave_out
from dispatchd.domain.routing import NOT_A_REQUEST, ExampleMail, normalise_label
from dispatchd.domain.triage import OUT_OF_SCOPE
from dispatchd.errors import ConfigError
from dispatchd.example_mail import load_example_mail
from dispatchd.flows.training import lexicon_of, mail_label, rule_examples
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]
TYPES = ('[[type]]\nname = "Content"\nqueue = "content"\nsla = "5 business days"\naliases = ["copy"]\n'
         'examples = ["a blog post on our new office"]\n'
         '[[type]]\nname = "Design"\nqueue = "design"\nsla = "5 business days"\n')


def rules_with(tmp_path: Path, *lines: str, name: str = "en.jsonl") -> Path:
    (tmp_path / "rules.toml").write_text(TYPES)
    (tmp_path / "example-mail").mkdir(exist_ok=True)
    (tmp_path / "example-mail" / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return tmp_path


def mail(label: str, subject: str = "Quick one", body: str = "Hi Ana, could you write it?", **more: str) -> str:
    return json.dumps({"label": label, "subject": subject, "body": body, **more}, ensure_ascii=False)


def test_the_shipped_example_mail_loads_and_names_only_known_labels() -> None:
    book = load_rulebook(PROJECT / "rules")
    found = book.triage_model.example_mail
    labels = Counter(m.label for m in found)
    assert len(found) > 1000
    assert {mail_label(book, label) for label in labels} == {t.name for t in book.types} | {OUT_OF_SCOPE}
    assert all(m.source and (m.subject.strip() or m.body.strip()) for m in found)
    assert len({(m.subject, m.body) for m in found}) == len(found)  # no mail twice: it would count double


def test_example_mail_is_read_in_file_order_with_its_fields(tmp_path: Path) -> None:
    rules_with(tmp_path, mail("Design", "Plakat", "Hallo Ben, ein Plakat bitte", source="x-1"), name="de.jsonl")
    rules_with(tmp_path, "", mail("copy", note="an alias is a label too"), name="en.jsonl")
    found, problems = load_example_mail(tmp_path)
    assert problems == []
    assert found == (ExampleMail("Design", "Plakat", "Hallo Ben, ein Plakat bitte", "x-1"),
                     ExampleMail("copy", "Quick one", "Hi Ana, could you write it?"))


def test_no_example_mail_directory_is_no_example_mail(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(TYPES)
    assert load_rulebook(tmp_path).triage_model.example_mail == ()


@pytest.mark.parametrize("line, expected", [
    ('{"label": "Design", "subject": "x"', "en.jsonl:2: not a JSON object: Expecting ',' delimiter"),
    ('["Design", "x", "y"]', "en.jsonl:2: not a JSON object: each line is one mail"),
    ('{"subject": "Poster", "body": "a poster please"}', 'en.jsonl:2: label: missing: a type\'s name, or "not a request"'),
    ('{"label": "Design", "subject": 7, "body": "a poster please"}', "en.jsonl:2: subject: must be a string, not int"),
    ('{"label": "Design", "subject": " ", "body": ""}', "en.jsonl:2: body: the mail has neither subject nor body"),
    ('{"label": "Design", "subjekt": "Poster", "body": "x"}', "en.jsonl:2: subjekt: unknown field; known: body, label"),
])
def test_broken_example_mail_is_refused_with_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    rules_with(tmp_path, mail("Design"), line)
    with pytest.raises(ConfigError) as caught:
        load_rulebook(tmp_path)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and expected in problems[0], problems


def test_training_reads_labels_by_name_alias_or_not_a_request_and_drops_removed_types(tmp_path: Path) -> None:
    rules_with(tmp_path, mail("copy", body="Could you write the spring newsletter?", source="a"),
               mail("DESIGN", body="Hi Ben, a poster for the fair please", source="b"),
               mail(NOT_A_REQUEST.upper(), body="Thanks, all good!", source="c"),
               mail("Strategy", body="Can we plan next year together?", source="d"))
    book = load_rulebook(tmp_path)
    from_mail = {e.text.body: e.label for e in rule_examples(book) if e.key.startswith("rules:mail:example:")}
    assert from_mail == {"Could you write the spring newsletter?": "Content",
                         "Hi Ben, a poster for the fair please": "Design", "Thanks, all good!": OUT_OF_SCOPE}
    assert mail_label(book, "Strategy") is None and normalise_label(NOT_A_REQUEST) == NOT_A_REQUEST


def test_a_type_with_only_example_mail_is_learnt_with_its_vocabulary(tmp_path: Path) -> None:
    """Design has no ``examples``: without example mail the model would never know it."""
    rules_with(tmp_path)
    assert "Design" not in {e.label for e in rule_examples(load_rulebook(tmp_path))}
    rules_with(tmp_path, mail("Design", body="Hi Ben, a poster for the fair please", source="b"))
    book = load_rulebook(tmp_path)
    assert {"Design", "Content"} <= {e.label for e in rule_examples(book)}
    assert {name for name, _ in lexicon_of(book).entries} == {"Content", "Design"}


def test_the_benchmark_leaves_the_evaluated_mail_out_of_the_example_mail(tmp_path: Path) -> None:
    """An evaluation set is part of the example mail: measured with it left out, or it would be
    measured on mail it learnt from."""
    rules_with(tmp_path, mail("Design", "Poster", "a poster please", source="s-1"),
               mail("Content", "Blog", "a blog post please", source="s-2"))
    evaluated = [Item("t-9", "en", "Design", "a@b.c", "Poster", "a poster please", None, {})]
    assert leave_out(tmp_path / "example-mail", evaluated) == 1
    found, _ = load_example_mail(tmp_path)
    assert [m.source for m in found] == ["s-2"]
    assert leave_out(tmp_path / "example-mail", [replace(evaluated[0], body="another poster")]) == 0


def test_every_evaluation_set_is_in_the_shipped_example_mail_except_what_no_model_reads(tmp_path: Path) -> None:
    """Mixed requests, strangers' mail, automatic replies and HTML-only mail are no example of one class."""
    shutil.copytree(PROJECT / "rules", tmp_path / "rules")
    from bench.triage_accuracy import load_items
    items = load_items(PROJECT / "bench" / "triage_eval" / "blind" / "h.jsonl")
    removed = leave_out(tmp_path / "rules" / "example-mail", items)
    assert sum(i.label != "triage" for i in items) <= removed < len(items)
