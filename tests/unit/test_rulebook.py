from pathlib import Path

import pytest

from dispatchd.errors import ConfigError
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]


def test_default_rules_load() -> None:
    book = load_rulebook(PROJECT / "rules")
    assert {t.name for t in book.types} == {"Content", "Design", "Technical", "Strategy", "Revision", "Urgent"}
    assert [r.name for r in book.rules] == ["outage", "urgent-words"]
    assert book.triage_queue == "triage"
    assert book.model_thresholds == {"Revision": 0.85}


def refused(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "rules.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_rulebook(tmp_path)
    return [str(p) for p in caught.value.problems]


TYPE = '[[type]]\nname = "Content"\nqueue = "content"\nsla = "5 business days"\n'


@pytest.mark.parametrize("text, expected", [
    ('[[type]]\nname = "Content"\nqueue = "content"\nsla = "soonish"\n', "rules.toml:4: type[0].sla: 'soonish' is not an SLA"),
    ('[[type]]\nname = "Content"\nsla = "1 hour"\n', "rules.toml:1: type[0].queue: is required"),
    (TYPE + 'priority = "P9"\n', "rules.toml:5: type[0].priority: must be one of P0, P1, P2, P3"),
    (TYPE + '[[rule]]\nname = "r"\nwhen = { keyword = ["x"] }\n', "rules.toml:7: rule[0].when.keyword: unknown key"),
    (TYPE + '[[rule]]\nname = "r"\nthen = { raise_priority = "high" }\n', "rule[0].then.raise_priority: must be one of"),
    (TYPE + '[[type]]\nname = "Blog"\nqueue = "b"\nsla = "1 hour"\naliases = ["content"]\n',
     "alias 'content' belongs to both Content and Blog"),
    ("[[type]\n", "not valid TOML"),
    (TYPE + 'model_threshold = 1.5\n', "rules.toml:5: type[0].model_threshold: must be a fraction between 0 and 1"),
    (TYPE + '[[examples]]\ntype = "Layout"\ntexts = ["a new flyer"]\n', "rules.toml:6: examples[0].type: no [[type]] is named 'Layout'"),
    (TYPE + '[[examples]]\ntexts = ["a new flyer"]\n', "examples[0].type: name the type"),
    (TYPE + '[[examples]]\ntype = "Content"\ntext = ["a blog post"]\n', "examples[0].text: unknown key"),
])
def test_rule_errors_are_located(tmp_path: Path, text: str, expected: str) -> None:
    found = refused(tmp_path, text)
    assert any(expected in p for p in found), found


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no \\*.toml rule files"):
        load_rulebook(tmp_path)


def test_file_order_does_not_matter(tmp_path: Path) -> None:
    """[sla] in an earlier file than [priorities] once left a string where the SLA policy belongs."""
    for source in (PROJECT / "rules").glob("*.toml"):
        (tmp_path / source.name.replace("40-", "05-")).write_text(source.read_text())
    book = load_rulebook(tmp_path)
    assert book.sla.warn_at == 0.8 and book.priority_sla == load_rulebook(PROJECT / "rules").priority_sla


@pytest.mark.parametrize("text, expected", [
    ('[client_updates]\nstatuses = ["finished"]\n', "rules.toml:2: client_updates.statuses: unknown status finished"),
    ('[sla]\npause_in = ["waiting"]\n', "rules.toml:2: sla.pause_in: unknown status waiting"),
])
def test_unknown_statuses_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    found = refused(tmp_path, TYPE + text)
    assert any(expected.replace(":2:", f":{TYPE.count(chr(10)) + 2}:") in p for p in found), found


def test_a_required_skill_nobody_has_is_refused_with_file_and_line(tmp_path: Path) -> None:
    from dataclasses import replace

    from dispatchd.config.model import Staff
    from tests.conftest import write_config
    from dispatchd.config import load_config

    config = load_config(write_config(tmp_path, mailbox="requests@agency.test"))
    config = replace(config, staff=(*config.staff, Staff("Sho", "sho@agency.test", skills=frozenset({"shopify"}))))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.toml").write_text(TYPE + 'require = ["Shopify"]\n[[rule]]\nname = "print"\n'
                                      'when = { keywords = ["print"] }\nthen = { require = ["print"], prefer = ["Sho"] }\n')
    with pytest.raises(ConfigError) as caught:
        load_rulebook(rules, config)
    assert [str(p) for p in caught.value.problems] == [
        f"{rules / 'rules.toml'}:9: rule[0].then.require: no [[staff]] has the skill 'print' (add it to someone's skills)"]
    (rules / "rules.toml").write_text(TYPE + 'require = ["Shopify"]\nprefer = ["Sho"]\n')
    book = load_rulebook(rules, config)
    assert (book.types[0].require, book.types[0].prefer) == (("shopify",), ("Sho",))


def test_examples_may_live_apart_from_their_type(tmp_path: Path) -> None:
    """``[[examples]]`` in another file (before or after the type's) add to the type's examples,
    and ``not_a_request`` ones to what the model learns is no request."""
    (tmp_path / "05-examples.toml").write_text('[[examples]]\ntype = "content"\ntexts = ["our blog has been quiet"]\n'
                                              '[[examples]]\nnot_a_request = true\ntexts = ["see you at the party"]\n')
    (tmp_path / "10-types.toml").write_text(TYPE + 'examples = ["a blog post"]\n')
    book = load_rulebook(tmp_path)
    assert book.types[0].examples == ("a blog post", "our blog has been quiet")
    assert book.triage_model.out_of_scope == ("see you at the party",)
