from pathlib import Path

import pytest

from dispatchd.domain.models import Priority, Request
from dispatchd.domain.routing import Action, Condition, RequestType, Rule, Rulebook, route, with_queue_prefix
from dispatchd.rulebook import load_rulebook

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rules() -> Rulebook:
    return load_rulebook(PROJECT / "rules")


def request(type_: str | None = "Content", description: str = "Blog post", body: str = "",
            priority: Priority | None = None, problems: tuple[str, ...] = (), **kw: object) -> Request:
    return Request(sender=str(kw.pop("sender", "bob@acme.test")), client=str(kw.pop("client", "Acme")),
                   type=type_, priority=priority, description=description, body=body, subject=description,
                   problems=problems, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("label, queue, priority, sla", [
    ("Content", "content", "P2", "5 business days"),
    ("blog", "content", "P2", "5 business days"),
    ("Design", "design", "P2", "3 business days"),
    ("Graphic-Design", "design", "P2", "3 business days"),
    ("Technical", "dev", "P2", "2 business days"),
    ("tech", "dev", "P2", "2 business days"),
    ("DEV", "dev", "P2", "2 business days"),
    ("bug", "dev", "P2", "2 business days"),
    ("Strategy", "strategy", "P2", "48 hours"),
    ("consultation", "strategy", "P2", "48 hours"),
    ("Revision", "revision", "P1", "2 business days"),
    ("Urgent", "triage", "P0", "4 hours"),
])
def test_seed_taxonomy(rules: Rulebook, label: str, queue: str, priority: str, sla: str) -> None:
    found = rules.find_type(label)
    assert found is not None
    decision = route(request(found.name), rules)
    assert (decision.queue, decision.priority.value, decision.sla) == (queue, priority, sla)
    assert not decision.triage


def test_unknown_type_and_problems_go_to_triage(rules: Rulebook) -> None:
    decision = route(request(None, problems=("type: 'Poetry' is not a request type",)), rules)
    assert decision.triage and decision.queue == "triage"
    assert decision.sla == "1 business day"
    assert "triage: type: 'Poetry' is not a request type" in decision.reasons


@pytest.mark.parametrize("text, priority, sla", [
    ("Checkout broken", "P1", "24 hours"),
    ("please ASAP", "P1", "24 hours"),
    ("our site is down since 9", "P0", "4 hours"),
    ("SITE DOWN and urgent", "P0", "4 hours"),
    ("a brokenness study", "P2", "5 business days"),
])
def test_keywords_raise_priority(rules: Rulebook, text: str, priority: str, sla: str) -> None:
    decision = route(request(description=text), rules)
    assert (decision.priority.value, decision.sla) == (priority, sla)


def test_keywords_never_lower_an_explicit_priority(rules: Rulebook) -> None:
    decision = route(request(description="asap", priority=Priority.P0), rules)
    assert decision.priority is Priority.P0
    assert decision.sla == "4 hours"


def test_subject_tag_sets_priority_sla(rules: Rulebook) -> None:
    decision = route(request(priority=Priority.P3), rules)
    assert (decision.priority, decision.sla) == (Priority.P3, "15 business days")
    assert "subject tag [P3]" in decision.reasons


def test_rules_apply_in_order_and_stop() -> None:
    book = Rulebook(
        types=(RequestType("Content", "content", "5 business days"),),
        rules=(
            Rule("vip", Condition(clients=("Acme",)), Action(queue="vip", assign="Ana", notify=("ceo@x.test",)),
                 stop=True),
            Rule("never", Condition(), Action(queue="nowhere")),
        ),
    )
    decision = route(request(), book)
    assert decision.queue == "vip" and decision.assignee == "Ana" and decision.notify == ("ceo@x.test",)
    assert any(r.startswith("rule vip (client Acme)") for r in decision.reasons)
    assert not any("never" in r for r in decision.reasons)


@pytest.mark.parametrize("condition, matches", [
    (Condition(senders=("*@acme.test",)), True),
    (Condition(senders=("*@globex.test",)), False),
    (Condition(types=("content",)), True),
    (Condition(types=("Design",)), False),
    (Condition(has_attachments=True), False),
    (Condition(has_attachments=False), True),
    (Condition(from_staff=True), False),
    (Condition(clients=("Acme",), subject_keywords=("blog",)), True),
    (Condition(clients=("Acme",), subject_keywords=("vlog",)), False),
    (Condition(priorities=(Priority.P0,)), False),
    (Condition(mailboxes=("brand-b",)), False),
])
def test_conditions(condition: Condition, matches: bool) -> None:
    assert (condition.explain_match(request()) is not None) is matches


def test_rule_sla_wins_over_priority_sla() -> None:
    book = Rulebook(types=(RequestType("Content", "content", "5 business days"),),
                    rules=(Rule("r", Condition(), Action(raise_priority=Priority.P0, sla="1 hour")),),
                    priority_sla={Priority.P0: "4 hours"})
    assert route(request(), book).sla == "1 hour"


def test_triage_keeps_its_queue_but_takes_priority() -> None:
    book = Rulebook(types=(), rules=(Rule("r", Condition(keywords=("down",)),
                                          Action(queue="dev", raise_priority=Priority.P0)),),
                    priority_sla={Priority.P0: "4 hours"})
    decision = route(request(None, description="site down", problems=("subject: x",)), book)
    assert (decision.queue, decision.priority, decision.sla) == ("triage", Priority.P0, "4 hours")


def test_a_rule_can_hold_for_one_mailbox_only() -> None:
    book = Rulebook(types=(RequestType("Content", "content", "5 business days"),),
                    rules=(Rule("brand-b-copy", Condition(mailboxes=("brand-b",)), Action(assign="Ana")),))
    assert route(request(mailbox="brand-a"), book).assignee is None
    decision = route(request(mailbox="brand-b"), book)
    assert decision.assignee == "Ana" and any("mailbox brand-b" in r for r in decision.reasons)


def test_queue_prefix_keeps_a_mailbox_in_its_own_queues() -> None:
    book = Rulebook(types=(RequestType("Content", "content", "5 business days"),),
                    rules=(Rule("own", Condition(keywords=("logo",)), Action(queue="b/design")),))
    assert with_queue_prefix(route(request(), book), "b/").queue == "b/content"
    assert with_queue_prefix(route(request(description="logo"), book), "b/").queue == "b/design", "named already"
    assert with_queue_prefix(route(request(), book), "").queue == "content"
