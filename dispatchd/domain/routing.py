"""The routing table: request types, ordered rules and ``route(request, rulebook)``.

Rules are data owned by non-programmers (rules/*.toml, loaded by ``dispatchd.rulebook``).
Every rule that fires adds its reason to the decision, so any routing can be explained
later from the audit log or with ``dispatchd check --explain``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

from dispatchd.domain.models import Priority, Request, RouteDecision
from dispatchd.domain.slots import CallSpec

_NORMALISE = re.compile(r"[\s_\-./]+")


def normalise_label(label: str) -> str:
    """'Tech Support', 'tech-support' and ' TECH_support ' all read as 'tech support'."""
    return _NORMALISE.sub(" ", label.strip().lower()).strip()


@dataclass(frozen=True)
class RequestType:
    name: str
    queue: str
    sla: str
    priority: Priority = Priority.P2
    aliases: tuple[str, ...] = ()
    description: str = ""
    examples: tuple[str, ...] = ()  # requests in plain words: what the triage model learns on day one
    vocabulary: tuple[str, ...] = ()  # words and short phrases that point to this type
    booking: CallSpec | None = None  # requests of this type need a call: proposed times are mailed
    require: tuple[str, ...] = ()  # skills (lower case) whoever does this type needs
    prefer: tuple[str, ...] = ()   # staff names or skills preferred for it
    model_threshold: float | None = None  # the triage model routes here only this sure ([triage] model_threshold else)

    def labels(self) -> set[str]:
        return {normalise_label(self.name), *(normalise_label(a) for a in self.aliases)}


@dataclass(frozen=True)
class Condition:
    """All given tests must hold; each list matches if any of its items does."""

    clients: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    priorities: tuple[Priority, ...] = ()
    keywords: tuple[str, ...] = ()
    subject_keywords: tuple[str, ...] = ()
    has_attachments: bool | None = None
    from_staff: bool | None = None
    mailboxes: tuple[str, ...] = ()  # [[mailbox]] names: a rule set per intake address

    def explain_match(self, request: Request) -> str | None:
        """A short reason why ``request`` matches, or None when it does not."""
        reasons: list[str] = []
        tests = (
            (self.clients, lambda: _one_of(request.client, self.clients, "client")),
            (self.types, lambda: _one_of(request.type, self.types, "type")),
            (self.priorities, lambda: _one_of(request.priority, self.priorities, "priority")),
            (self.senders, lambda: _sender(request.sender, self.senders)),
            (self.keywords, lambda: _keyword(f"{request.description}\n{request.body}", self.keywords)),
            (self.subject_keywords, lambda: _keyword(request.description, self.subject_keywords)),
            (self.mailboxes, lambda: f"mailbox {request.mailbox}" if request.mailbox in self.mailboxes else None),
        )
        for wanted, test in tests:
            if wanted:
                reason = test()
                if reason is None:
                    return None
                reasons.append(reason)
        if self.has_attachments is not None:
            if bool(request.attachment_names) != self.has_attachments:
                return None
            reasons.append("has attachments" if self.has_attachments else "no attachments")
        if self.from_staff is not None:
            if request.from_staff != self.from_staff:
                return None
            reasons.append("sent by staff" if self.from_staff else "not sent by staff")
        return ", ".join(reasons) or "always"


@dataclass(frozen=True)
class Action:
    queue: str | None = None
    priority: Priority | None = None
    raise_priority: Priority | None = None
    sla: str | None = None
    assign: str | None = None
    notify: tuple[str, ...] = ()
    notify_client: bool | None = None
    require: tuple[str, ...] = ()
    prefer: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition
    then: Action
    description: str = ""
    stop: bool = False


STRATEGIES = ("manual", "round_robin", "least_loaded", "pull")


@dataclass(frozen=True)
class QueuePolicy:
    """How a queue hands out work: strategy, order, and when stale work goes back."""

    name: str
    strategy: str = "manual"
    order: str = "fifo"
    redispatch_after: str | None = None


@dataclass(frozen=True)
class SlaPolicy:
    warn_at: float = 0.8
    pause_in: frozenset[str] = frozenset({"delivered"})
    first_response: dict[Priority, str] = field(default_factory=lambda: {
        Priority.P0: "1 hour", Priority.P1: "4 business hours", Priority.P2: "1 business day",
        Priority.P3: "2 business days"})
    notify_client_before: str | None = None


NOT_A_REQUEST = "not a request"   # the label of example mail that asks for no work of ours


@dataclass(frozen=True)
class ExampleMail:
    """A whole request as a client wrote it, labelled: a type's name (or alias) or ``not a
    request``. From ``rules/example-mail/*.jsonl``; ``source`` says where it came from."""

    label: str
    subject: str
    body: str
    source: str = ""


@dataclass(frozen=True)
class TriageSettings:
    """``[triage]`` settings of the triage model (see ``domain/triage.py``)."""

    enabled: bool = True
    threshold: float = 0.7      # route only at or above this confidence
    margin: float = 0.2         # ... and this far ahead of the second guess (mixed requests wait)
    out_of_scope: tuple[str, ...] = ()  # examples of mail that is no request: it stays in triage
    follow_ups: tuple[str, ...] = ()    # types about earlier work of another type: not "mixed" beside it
    example_mail: tuple[ExampleMail, ...] = ()  # labelled whole requests (rules/example-mail/)


@dataclass(frozen=True)
class Rulebook:
    types: tuple[RequestType, ...]
    rules: tuple[Rule, ...] = ()
    priority_sla: dict[Priority, str] = field(default_factory=dict)
    triage_queue: str = "triage"
    triage_sla: str = "1 business day"
    client_updates: frozenset[str] = frozenset({"in_progress", "delivered", "closed", "cancelled",
                                                "revisions_needed"})
    sla: SlaPolicy = field(default_factory=SlaPolicy)
    queues: dict[str, QueuePolicy] = field(default_factory=dict)
    escalations: tuple[Rule, ...] = ()
    triage_model: TriageSettings = field(default_factory=lambda: TriageSettings())

    def queue_policy(self, name: str) -> QueuePolicy:
        return self.queues.get(name, QueuePolicy(name))

    @property
    def model_thresholds(self) -> dict[str, float]:
        """The types whose own ``model_threshold`` overrides ``[triage] model_threshold``."""
        return {t.name: t.model_threshold for t in self.types if t.model_threshold is not None}

    def find_type(self, label: str | None) -> RequestType | None:
        if not label:
            return None
        wanted = normalise_label(label)
        return next((t for t in self.types if wanted in t.labels()), None)


def escalate(request: Request, decision: RouteDecision, rules: tuple[Rule, ...]) -> RouteDecision:
    """Apply the escalation rules that match a request whose SLA is breached."""
    for rule in rules:
        why = rule.when.explain_match(request)
        if why is None:
            continue
        decision, changes = _apply(decision, rule.then)
        decision = replace(decision, reasons=(*decision.reasons, f"escalation {rule.name} ({why}): {changes}"))
        if rule.stop:
            break
    return decision


def with_queue_prefix(decision: RouteDecision, prefix: str) -> RouteDecision:
    """A mailbox's ``queue_prefix`` keeps its work in its own queues ("brand-b/content");
    a rule that names a queue with the prefix already is left as it is."""
    if not prefix or decision.queue.startswith(prefix):
        return decision
    return replace(decision, queue=prefix + decision.queue,
                   reasons=(*decision.reasons, f"queue prefix {prefix!r} of the mailbox"))


def route(request: Request, rulebook: Rulebook) -> RouteDecision:
    """Decide queue, priority, SLA, assignee and extra recipients for ``request``."""
    request_type = None if request.needs_triage else rulebook.find_type(request.type)
    if request_type is None:
        decision = RouteDecision(
            queue=rulebook.triage_queue,
            priority=request.priority or Priority.P2,
            sla=rulebook.triage_sla,
            reasons=tuple(f"triage: {p}" for p in request.problems) or ("triage: unknown type",),
            triage=True,
        )
        base_priority = decision.priority
    else:
        base_priority = request_type.priority
        priority = request.priority or request_type.priority
        reasons = [f"type {request_type.name}: queue {request_type.queue}, "
                   f"{request_type.priority}, {request_type.sla}"]
        if request.priority and request.priority != request_type.priority:
            reasons.append(f"subject tag [{request.priority}]")
        if request_type.require:
            reasons.append(f"type {request_type.name} needs {', '.join(request_type.require)}")
        decision = RouteDecision(queue=request_type.queue, priority=priority,
                                 sla=request_type.sla, reasons=tuple(reasons),
                                 require=request_type.require, prefer=request_type.prefer)
    sla_from_rule = False
    for rule in rulebook.rules:
        why = rule.when.explain_match(request)
        if why is None:
            continue
        decision, changes = _apply(decision, rule.then)
        sla_from_rule = sla_from_rule or rule.then.sla is not None
        decision = replace(decision, reasons=(*decision.reasons,
                                              f"rule {rule.name} ({why}): {changes or 'no change'}"))
        if rule.stop:
            break
    if not sla_from_rule and decision.priority != base_priority and decision.priority in rulebook.priority_sla:
        sla = rulebook.priority_sla[decision.priority]
        decision = replace(decision, sla=sla,
                           reasons=(*decision.reasons, f"priority {decision.priority}: SLA {sla}"))
    return decision


def _apply(decision: RouteDecision, action: Action) -> tuple[RouteDecision, str]:
    changes: list[str] = []
    updates: dict[str, object] = {}
    if action.queue and not decision.triage:
        updates["queue"] = action.queue
        changes.append(f"queue {action.queue}")
    if action.priority:
        updates["priority"] = action.priority
        changes.append(f"priority {action.priority}")
    elif action.raise_priority and action.raise_priority < decision.priority:
        updates["priority"] = action.raise_priority
        changes.append(f"priority raised to {action.raise_priority}")
    if action.sla:
        updates["sla"] = action.sla
        changes.append(f"SLA {action.sla}")
    if action.assign:
        updates["assignee"] = action.assign
        changes.append(f"assign {action.assign}")
    if action.notify:
        updates["notify"] = tuple(dict.fromkeys((*decision.notify, *action.notify)))
        changes.append(f"notify {', '.join(action.notify)}")
    if action.require:
        updates["require"] = tuple(dict.fromkeys((*decision.require, *action.require)))
        changes.append(f"needs {', '.join(action.require)}")
    if action.prefer:
        updates["prefer"] = tuple(dict.fromkeys((*decision.prefer, *action.prefer)))
        changes.append(f"prefers {', '.join(action.prefer)}")
    if action.notify_client is not None:
        updates["notify_client"] = action.notify_client
        changes.append("confirm to client" if action.notify_client else "no confirmation to client")
    return replace(decision, **updates), "; ".join(changes)


def _one_of(value: object, wanted: tuple, label: str) -> str | None:
    if value is None:
        return None
    text = normalise_label(str(value))
    hit = next((w for w in wanted if normalise_label(str(w)) == text), None)
    return f"{label} {value}" if hit is not None else None


def _sender(sender: str, patterns: tuple[str, ...]) -> str | None:
    hit = next((p for p in patterns if fnmatch.fnmatchcase(sender.lower(), p.lower())), None)
    return f"sender {sender}" if hit else None


def _keyword(text: str, keywords: tuple[str, ...]) -> str | None:
    lowered = text[:20_000].lower()
    for keyword in keywords:
        if _whole_word(keyword).search(lowered):
            return f"keyword {keyword!r}"
    return None


@lru_cache(maxsize=1024)
def _whole_word(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(keyword.lower())}(?!\w)")
