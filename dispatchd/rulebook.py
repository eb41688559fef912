"""Loading rules/*.toml and rules/example-mail/ into a validated Rulebook; every refusal names
file, line and key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dispatchd.config import Config
from dispatchd.domain.models import Priority, Status
from dispatchd.domain.routing import (
    STRATEGIES,
    Action,
    Condition,
    QueuePolicy,
    RequestType,
    Rule,
    Rulebook,
    SlaPolicy,
    TriageSettings,
    normalise_label,
)
from dispatchd.domain.sla import parse_sla
from dispatchd.domain.slots import CallSpec, parse_duration
from dispatchd.errors import ConfigError, Problem
from dispatchd.example_mail import load_example_mail
from dispatchd.tomlfile import Reader, load_toml

PRIORITIES = tuple(p.value for p in Priority)


def load_rulebook(directory: Path, config: Config | None = None) -> Rulebook:
    """Read every *.toml in ``directory`` (by name); raises ConfigError listing all problems."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise ConfigError([Problem(directory, None, "", "no *.toml rule files found")])
    types: list[RequestType] = []
    rules: list[Rule] = []
    priority_sla: dict[Priority, str] = {}
    triage_queue, triage_sla = "triage", "1 business day"
    triage_model = TriageSettings()
    client_updates: frozenset[str] | None = None
    sla = SlaPolicy()
    queues: dict[str, QueuePolicy] = {}
    escalations: list[Rule] = []
    problems: list[Problem] = []
    more_examples: list[tuple[Reader, str | None, tuple[str, ...]]] = []
    for path in files:
        doc = load_toml(path)
        root = Reader(doc, doc.data, ())
        types.extend(_type(r, config) for r in root.tables("type"))
        more_examples.extend(_examples(r) for r in root.tables("examples"))
        rules.extend(_rule(r, config) for r in root.tables("rule"))
        escalations.extend(_rule(r, config) for r in root.tables("escalation"))
        for reader in root.tables("queue"):
            policy = _queue(reader)
            queues[policy.name] = policy
        if "sla" in doc.data:
            sla = _sla_policy(root.table_of("sla"))
        if "priorities" in doc.data:
            priority_sla.update(_per_priority(root.table_of("priorities")))
        if "triage" in doc.data:
            table = root.table_of("triage")
            triage_queue = table.str("queue", triage_queue)
            triage_sla = _sla(table, "sla") or triage_sla
            triage_model = _triage_model(table)
            table.refuse_unknown()
        if "client_updates" in doc.data:
            table = root.table_of("client_updates")
            client_updates = frozenset(_statuses(table, "statuses", ()))
            table.refuse_unknown()
        root.refuse_unknown()
        problems.extend(doc.problems)
    types, out_of_scope = _with_examples(types, more_examples, problems)
    example_mail, mail_problems = load_example_mail(directory)
    problems.extend(mail_problems)
    triage_model = replace(triage_model, out_of_scope=(*triage_model.out_of_scope, *out_of_scope),
                           example_mail=example_mail)
    problems.extend(_alias_clashes(directory, types))
    if not types and not problems:
        problems.append(Problem(directory, None, "", "no [[type]] defined in any rule file"))
    if config is not None and config.intake.triage_queue != triage_queue:
        triage_queue = config.intake.triage_queue
    if problems:
        raise ConfigError(problems)
    book = Rulebook(tuple(types), tuple(rules), priority_sla, triage_queue, triage_sla, sla=sla, queues=queues,
                    escalations=tuple(escalations), triage_model=triage_model)
    return replace(book, client_updates=client_updates) if client_updates is not None else book


def _queue(r: Reader) -> QueuePolicy:
    policy = QueuePolicy(name=r.str("name", "", required=True), strategy=r.choice("strategy", STRATEGIES, "manual"),
                         order=r.choice("order", ("fifo", "lifo"), "fifo"),
                         redispatch_after=_sla(r, "redispatch_after"))
    r.refuse_unknown()
    return policy


def _sla_policy(r: Reader) -> SlaPolicy:
    default = SlaPolicy()
    warn_at = r.float("warn_at", default.warn_at)
    if not 0 < warn_at < 1:
        r.problem("warn_at", "must be a fraction between 0 and 1, e.g. 0.8")
        warn_at = default.warn_at
    pause_in = _statuses(r, "pause_in", tuple(default.pause_in))
    first = dict(default.first_response)
    if "first_response" in r.table:
        first.update(_per_priority(r.table_of("first_response")))
    policy = SlaPolicy(warn_at=warn_at, pause_in=frozenset(pause_in), first_response=first,
                       notify_client_before=_sla(r, "notify_client_before"))
    r.refuse_unknown()
    return policy


def _per_priority(table: Reader) -> dict[Priority, str]:
    """A table of SLAs keyed P0..P3, such as [priorities] or [sla.first_response]."""
    found = {}
    for name in PRIORITIES:
        value = _sla(table, name)
        if value:
            found[Priority(name)] = value
    table.refuse_unknown()
    return found


def _statuses(r: Reader, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    statuses = r.str_list(key, default)
    unknown = [s for s in statuses if s not in {x.value for x in Status}]
    if unknown:
        r.problem(key, f"unknown status {', '.join(unknown)}; known: {', '.join(x.value for x in Status)}")
    return statuses


def _sla(r: Reader, key: str, required: bool = False) -> str | None:
    text = r.str(key, None, required)
    if text is None:
        return None
    try:
        parse_sla(text)
    except ValueError as exc:
        r.problem(key, str(exc))
        return None
    return text


def _priority(r: Reader, key: str, default: Priority | None = None) -> Priority | None:
    value = r.choice(key, PRIORITIES, default.value if default else None)
    return Priority(value) if value else None


def _type(r: Reader, config: Config | None) -> RequestType:
    request_type = RequestType(
        name=r.str("name", "", required=True),
        queue=r.str("queue", "", required=True),
        sla=_sla(r, "sla", required=True) or "5 business days",
        priority=_priority(r, "priority", Priority.P2) or Priority.P2,
        aliases=r.str_list("aliases"),
        description=r.str("description", ""),
        examples=r.str_list("examples"),
        vocabulary=r.str_list("vocabulary"),
        booking=_call_spec(r.table_of("booking")) if "booking" in r.table else None,
        require=_skills(r, "require", config),
        prefer=r.str_list("prefer"),
        model_threshold=_fraction(r, "model_threshold"),
    )
    r.refuse_unknown()
    return request_type


def _fraction(r: Reader, key: str) -> float | None:
    """A confidence from 0 to 1 (the triage model's thresholds and margin); None when not given
    or refused."""
    value = r.float(key, None)
    if value is not None and not 0 <= value <= 1:
        r.problem(key, "must be a fraction between 0 and 1, e.g. 0.7")
        return None
    return value


def _call_spec(r: Reader) -> CallSpec | None:
    """booking = { duration = "45 minutes", with = "assignee" | "queue" | ["Dan", "Ana"] }."""
    try:
        duration = parse_duration(r.str("duration", "30 minutes"))
    except ValueError as exc:
        r.problem("duration", str(exc))
        return None
    attend = r.str_list("with", ("assignee",))
    if len(attend) == 1 and attend[0].lower() in ("assignee", "queue"):
        attend = (attend[0].lower(),)
    r.refuse_unknown()
    return CallSpec(duration, attend)


def _skills(r: Reader, key: str, config: Config | None) -> tuple[str, ...]:
    """Required skills, lower case; with a config, a skill no staff member has is refused here
    (file and line), since work needing it could never be assigned."""
    skills = tuple(dict.fromkeys(s.strip().lower() for s in r.str_list(key)))
    if config is not None:
        known = {skill for person in config.staff for skill in person.skills}
        for skill in skills:
            if skill not in known:
                r.problem(key, f"no [[staff]] has the skill {skill!r} (add it to someone's skills)")
    return skills


def _examples(r: Reader) -> tuple[Reader, str | None, tuple[str, ...]]:
    """``[[examples]]``: more requests in plain words for one ``type``, or mail that is
    ``not_a_request``; kept apart from the type's definition, in any rules file."""
    name = r.str("type", None)
    not_a_request = r.bool("not_a_request", False)
    if (name is None) == (not not_a_request):
        r.problem("type", 'name the type (type = "Design") or set not_a_request = true, not both')
    texts = r.str_list("texts")
    r.refuse_unknown()
    return r, None if not_a_request else name, texts


def _with_examples(types: list[RequestType], found: list[tuple[Reader, str | None, tuple[str, ...]]],
                   problems: list[Problem]) -> tuple[list[RequestType], tuple[str, ...]]:
    """The types with their ``[[examples]]`` added, and the examples of mail that is no request."""
    by_name = {normalise_label(t.name): i for i, t in enumerate(types)}
    out_of_scope: list[str] = []
    for reader, name, texts in found:
        if name is None:
            out_of_scope.extend(texts)
        elif (i := by_name.get(normalise_label(name))) is not None:
            types[i] = replace(types[i], examples=(*types[i].examples, *texts))
        else:
            reader.problem("type", f"no [[type]] is named {name!r}; known: {', '.join(t.name for t in types)}")
            problems.append(reader.doc.problems[-1])
    return types, tuple(out_of_scope)


def _triage_model(r: Reader) -> TriageSettings:
    default = TriageSettings()
    threshold = _fraction(r, "model_threshold")
    margin = _fraction(r, "model_margin")
    return TriageSettings(enabled=r.bool("model", default.enabled),
                          threshold=default.threshold if threshold is None else threshold,
                          margin=default.margin if margin is None else margin, out_of_scope=r.str_list("out_of_scope"),
                          follow_ups=r.str_list("model_follow_up_types"))


def _rule(r: Reader, config: Config | None) -> Rule:
    when = r.table_of("when")
    then = r.table_of("then")
    has_attachments = when.bool("has_attachments", None) if "has_attachments" in when.table else None  # type: ignore[arg-type]
    from_staff = when.bool("from_staff", None) if "from_staff" in when.table else None  # type: ignore[arg-type]
    priorities = []
    for value in when.str_list("priority"):
        if value.upper() in PRIORITIES:
            priorities.append(Priority(value.upper()))
        else:
            when.problem("priority", f"{value!r} is not one of {', '.join(PRIORITIES)}")
    condition = Condition(
        clients=when.str_list("client"), senders=when.str_list("sender"), types=when.str_list("type"),
        priorities=tuple(priorities), keywords=when.str_list("keywords"),
        subject_keywords=when.str_list("subject_keywords"),
        has_attachments=has_attachments, from_staff=from_staff, mailboxes=when.str_list("mailbox"),
    )
    when.refuse_unknown()
    notify_client = then.bool("notify_client", None) if "notify_client" in then.table else None  # type: ignore[arg-type]
    action = Action(
        queue=then.str("queue"), priority=_priority(then, "priority"),
        raise_priority=_priority(then, "raise_priority"), sla=_sla(then, "sla"),
        assign=then.str("assign"), notify=then.str_list("notify"), notify_client=notify_client,
        require=_skills(then, "require", config), prefer=then.str_list("prefer"),
    )
    then.refuse_unknown()
    if config is not None:
        _check_people(then, config, action)
        _check_clients(when, config, condition)
        _check_mailboxes(when, config, condition)
    rule = Rule(name=r.str("name", "", required=True), when=condition, then=action,
                description=r.str("description", ""), stop=r.bool("stop", False))
    r.refuse_unknown()
    return rule


def _check_people(then: Reader, config: Config, action: Action) -> None:
    if action.assign and not config.staff_by_name(action.assign):
        then.problem("assign", f"no [[staff]] named {action.assign!r} in {config.path.name}")
    for who in action.notify:
        if "@" not in who and not config.staff_by_name(who):
            then.problem("notify", f"{who!r} is neither an address nor a [[staff]] name")
        if who.lower() in config.intake_addresses:
            then.problem("notify", f"{who} is the intake address; notifying it would loop")


def _check_clients(when: Reader, config: Config, condition: Condition) -> None:
    known = {normalise_label(n) for c in config.clients for n in (c.name, *c.aliases)}
    for name in condition.clients:
        if normalise_label(name) not in known:
            when.problem("client", f"no [[clients]] named {name!r} in {config.path.name}")


def _check_mailboxes(when: Reader, config: Config, condition: Condition) -> None:
    known = {m.name for m in config.mailboxes}
    for name in condition.mailboxes:
        if name not in known:
            when.problem("mailbox", f"no [[mailbox]] named {name!r} in {config.path.name} "
                                    f"(known: {', '.join(sorted(known))})")


def _alias_clashes(directory: Path, types: list[RequestType]) -> list[Problem]:
    owner: dict[str, str] = {}
    clashes = []
    for request_type in types:
        for label in sorted(request_type.labels()):
            if label in owner and owner[label] != request_type.name:
                clashes.append(Problem(directory, None, "type",
                                       f"alias {label!r} belongs to both {owner[label]} and {request_type.name}"))
            owner[label] = request_type.name
    return clashes
