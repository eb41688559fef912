"""``dispatchd check``: config, rules and templates validated together, plus ``--explain``."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from jinja2 import TemplateError, TemplateSyntaxError

from dispatchd.calendars import business_calendar
from dispatchd.config import Config
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.models import ParsedSubject, Request, SubjectError
from dispatchd.domain.routing import Rulebook, route
from dispatchd.domain.duewords import due_reasons, due_words
from dispatchd.domain.sla import BusinessCalendar, due_at, parse_sla, target_seconds
from dispatchd.domain.subject import parse_subject
from dispatchd.domain.triage import TriageModel, Verdict
from dispatchd.errors import ConfigError, Problem
from dispatchd.flows.integration_notices import owners_of
from dispatchd.flows.notices import (
    NoticeContext,
    TaskChange,
    bounce_notices,
    capacity_notices,
    change_notices,
    comment_notices,
    digest_mail,
    followed_notice,
    loop_notices,
    new_task_notices,
    redispatch_notices,
    refused_reply,
    results_reply,
    sla_notices,
    status_notices,
    too_large_reply,
)
from dispatchd.flows.training import unlearnt_mail
from dispatchd.flows.triage import classify, eligible, greetings, request_text, settle, with_verdict
from dispatchd.mail.parse import parse_mail
from dispatchd.render import TEMPLATE_NAMES, Renderer
from dispatchd.rulebook import load_rulebook
from dispatchd.store.tables import Task


def check_all(config: Config) -> Rulebook:
    """Raise ConfigError unless rules load and every template renders with sample data."""
    rulebook = load_rulebook(config.rules_dir, config)
    renderer = Renderer(config.templates_dir)
    problems: list[Problem] = list(_idle_escalations(config, rulebook))
    for name in TEMPLATE_NAMES:
        path = config.templates_dir / f"{name}.txt.j2"
        if not path.exists():
            problems.append(Problem(path, None, "", "template is missing"))
    if not problems:
        for subject in (_sample_subject(config, rulebook), "hello, can you help?"):
            try:
                _render_samples(config, rulebook, renderer, subject)
            except TemplateSyntaxError as exc:
                problems.append(Problem(config.templates_dir / (exc.name or "?"), exc.lineno, "", exc.message or str(exc)))
            except (TemplateError, KeyError, TypeError) as exc:
                problems.append(Problem(config.templates_dir, None, "", f"template does not render: {exc}"))
    if problems:
        raise ConfigError(problems)
    return rulebook


def _idle_escalations(config: Config, rulebook: Rulebook) -> Iterator[Problem]:
    """An escalation that names nobody and changes nothing would let a breach pass in silence."""
    for rule in rulebook.escalations:
        then = rule.then
        if not (then.notify or then.assign or then.queue or then.priority or then.raise_priority or then.sla
                or then.notify_client):
            yield Problem(config.rules_dir, None, f"escalation {rule.name}",
                          "names nobody and changes nothing: give it notify = [\"<staff name>\"], assign, "
                          "or raise_priority")


def owner_warnings(config: Config, rulebook: Rulebook) -> list[str]:
    """Set-ups that load but are probably not what the owner meant: a staff queue that no type,
    rule or triage sends work to (a typo, usually), a queue that gets work but has nobody."""
    prefixes = {m.queue_prefix for m in config.mailboxes}
    routed = {rulebook.triage_queue, *(t.queue for t in rulebook.types),
              *(r.then.queue for r in (*rulebook.rules, *rulebook.escalations) if r.then.queue)}
    reachable = {prefix + queue for queue in routed for prefix in prefixes} | routed
    staffed = {queue for person in config.staff for queue in person.queues}
    warnings = []
    for person in config.staff:
        for queue in person.queues:
            if queue not in reachable:
                warnings.append(f"staff {person.name}: queue {queue!r} gets no work: no type, rule or triage "
                                f"routes to it{_did_you_mean(queue, reachable)}")
    for request_type in rulebook.types:
        for queue in sorted({prefix + request_type.queue for prefix in prefixes}):
            if queue not in staffed:
                warnings.append(f"type {request_type.name}: nobody works in its queue {queue!r}; its requests "
                                f"will wait unassigned (add {queue!r} to some [[staff]] queues)")
    for queue in sorted({prefix + rulebook.triage_queue for prefix in prefixes} - staffed):
        warnings.append(f"triage queue {queue!r}: no [[staff]] works in it; requests that need a person "
                        f"to route them will wait for nobody")
    covered = {region for person in config.staff for region in person.regions}
    for client in config.clients:
        if client.region and client.region not in covered:
            warnings.append(f"client {client.name}: no [[staff]] covers its region {client.region!r}; its work "
                            f"goes to backups, the queue's lead or waits (add it to someone's regions)")
    warnings.extend(_client_notice_window(config, rulebook))
    for label, count in sorted(unlearnt_mail(rulebook).items()):
        warnings.append(f"example mail: {count} labelled {label!r}, which names no type in the rules; the triage "
                        f"model does not learn from them{_did_you_mean(label, {t.name for t in rulebook.types})}")
    clients = {client.name for client in config.clients}
    queues = {queue.name for queue in config.queues} | {q for person in config.staff for q in person.queues}
    for destination in config.destinations:
        if not owners_of(config, destination):
            warnings.append(f"{destination.kind} {destination.name}: no owners and no manager; nobody will hear "
                            f"when its events are parked or it is gone (add owners = [...])")
        for client in sorted(set(destination.filter.clients) - clients):
            warnings.append(f"{destination.kind} {destination.name}: no [[clients]] is named {client!r}; "
                            f"it will hear nothing")
        for queue in sorted(set(destination.filter.queues) - queues):
            warnings.append(f"{destination.kind} {destination.name}: no [[staff]] works in queue {queue!r}")
    if config.intake.reply_to_unknown_senders == "always":
        warnings.append('[intake] reply_to_unknown_senders = true answers any address, also forged ones '
                        '(backscatter: we would mail whoever a spammer names); "authenticated" answers only '
                        'senders whose domain passed DKIM/SPF/DMARC, false (the default) nobody')
    return warnings


def _client_notice_window(config: Config, rulebook: Rulebook) -> Iterator[str]:
    """``notify_client_before`` as long as an SLA would have told every client of that priority
    "running late" the minute the request arrived (the job now waits for ``warn_at``)."""
    before = rulebook.sla.notify_client_before
    if before is None:
        return
    cal = config.calendar
    calendar = BusinessCalendar(ZoneInfo(cal.timezone), frozenset(cal.workdays), cal.day_start, cal.day_end)
    window = target_seconds(parse_sla(before), calendar)
    short = [f"{priority} ({sla})" for priority, sla in sorted(rulebook.priority_sla.items())
             if window >= target_seconds(parse_sla(sla), calendar)]
    if short:
        yield (f"[sla] notify_client_before = {before!r} is not shorter than the SLA of {', '.join(short)}: "
               f"those clients would hear \"running late\" as soon as they write; they are told only once "
               f"{rulebook.sla.warn_at:.0%} of the SLA is gone (set it shorter, e.g. \"3 hours\")")


def _did_you_mean(word: str, known: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sample_subject(config: Config, rulebook: Rulebook) -> str:
    client = config.clients[0].name if config.clients else "Acme"
    kind = rulebook.types[0].name if rulebook.types else "Content"
    return f"[{client}] - {kind} - Sample request [ABC-1]"


def _render_samples(config: Config, rulebook: Rulebook, renderer: Renderer, subject: str) -> None:
    sender = next((s for c in config.clients for s in c.senders if "*" not in s), "client@example.com")
    message = EmailMessage()
    message["From"] = f"Sample Client <{sender}>"
    message["To"] = config.mailbox.address
    message["Subject"] = subject
    message["Message-ID"] = "<sample@example.com>"
    message.set_content("Please write about <b>topic clusters</b>. ASAP would be lovely.")
    mail = parse_mail(message.as_bytes())
    request = read_request(mail, Directory(config.clients, config.staff), rulebook)
    decision = route(request, rulebook)
    now = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    calendar = business_calendar(config.calendar)
    due = due_at(now, parse_sla(decision.sla), calendar)
    task = Task(id=42, client=request.client, type=request.type, queue=decision.queue,
                priority=decision.priority.value, status="queued", description=request.description,
                subject=subject, sender=sender, sla=decision.sla, due_at=due.at,
                due_explanation=due.explanation, message_id=mail.message_id, created_at=now, updated_at=now)
    ctx = NoticeContext(config, rulebook, renderer, b"sample-secret", calendar)
    new_task_notices(task, mail, request, decision, ["brief.pdf"], ctx)
    status_notices(task, "queued", "someone@example.com", "sample", ctx, tell_client=True)
    comment_notices(task, sender, "sample comment", ctx)
    comment_notices(task, sender, "sample comment", ctx, unverified="no signed reply address")
    _render_stranger_samples(config, rulebook, renderer, subject, ctx)
    followed_notice(task, "colleague@example.com", sender, ctx)
    change_notices(TaskChange(task, task.status, "someone@example.com", messages=["A sample message."],
                              signed_by="Sample"), ctx)
    capacity_notices(task, "all busy", ctx)
    redispatch_notices(task, "a@example.com", None, "no activity", ctx)
    bounce_notices(task, "gone@example.com", "[#42] Received", "does not exist (5.1.1)", ctx)
    zone = ZoneInfo(config.calendar.timezone)
    for level in ("warning", "breach", "client_late"):
        sla_notices(task, "resolution", level, "85%", (), ctx, zone)
    results_reply(mail, task, [("start", True, "queued -> in_progress")], True, ctx)
    refused_reply(mail, ctx)
    too_large_reply(mail, 31.0, 25.0, ctx)
    loop_notices(mail, "the same text came from 5 addresses", ctx)
    person = config.staff[0] if config.staff else None
    digest_mail("client-digest", sender, {"client": "Acme", "delivered": [task], "in_progress": [], "coming": [task],
                                          "reviewing": [task], "contact_name": "Sample", "period": "2026-W01"}, ctx)
    digest_mail("staff-digest", sender, {"person": person or _SamplePerson(), "mine": [(task, ("start",))],
                                         "free": [task], "period": "2026-01-05"}, ctx)
    digest_mail("owner-health", sender, {"report": _SAMPLE_REPORT}, ctx)
    digest_mail("client-link", sender, {"client": "Acme", "task": None}, ctx)


def _render_stranger_samples(config: Config, rulebook: Rulebook, renderer: Renderer, subject: str,
                             ctx: NoticeContext) -> None:
    """The format help an unknown sender may get (when answering them is on): its own branch of
    the template, which must render too."""
    answering = replace(config, intake=replace(config.intake, reply_to_unknown_senders="always"))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "stranger@example.net", config.mailbox.address, subject
    message["Message-ID"] = "<stranger@example.net>"
    message.set_content("Sample.")
    mail = parse_mail(message.as_bytes())
    request = read_request(mail, Directory(config.clients, config.staff), rulebook)
    decision = route(request, rulebook)
    now = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)
    task = Task(id=43, client=None, type=request.type, queue=decision.queue, priority=decision.priority.value,
                status="received", description=request.description, subject=subject, sender=mail.sender,
                sla=decision.sla, message_id=mail.message_id, created_at=now, updated_at=now)
    new_task_notices(task, mail, request, decision, [], replace(ctx, config=answering))


class _SamplePerson:
    name, email, wip_limit = "Sample", "sample@example.com", 3


_SAMPLE_REPORT = {"generated_at": "2026-01-05T08:00:00", "period_days": 30, "requests": 1, "triaged": 0,
                  "parked_mail": 1, "bounced_mail": 1, "quarantined": 1, "prune_runs": 1, "pruned_bytes": 1,
                  "triage_share": 0.0, "triage_colour": "green", "suggestions": [],
                  "skill_gaps": ["2 open tasks need 'shopify'; nobody has it"], "over_capacity": [],
                  "queues": [{"queue": "content", "colour": "green", "depth": 1, "avg_wait_days": 0.1,
                              "breach_rate": 0.0, "forecast": [],
                              "colours": {"depth": "green", "avg_wait_days": "green", "breach_rate": "green"}}]}


def explain(config: Config, rulebook: Rulebook, subject: str, sender: str | None,
            now: datetime | None = None, model: TriageModel | None = None) -> str:
    """A human-readable account of how ``subject`` from ``sender`` would be read and routed;
    without ``sender``, says which address it assumed; with ``model``, also the triage model's
    top guesses for it and the words behind them."""
    sender, assumed = (sender, "") if sender else _assumed_sender(config)
    message = EmailMessage()
    message["From"] = sender
    message["Subject"] = subject
    mail = parse_mail(message.as_bytes())
    parsed = parse_subject(mail.subject)
    request: Request = read_request(mail, Directory(config.clients, config.staff), rulebook)
    classified = classify(request, model, rulebook, config)
    decision = with_verdict(route(classified.request if classified else request, rulebook), classified)
    calendar = business_calendar(config.calendar)
    due = due_at(now or datetime.now(timezone.utc), parse_sla(decision.sla), calendar)
    lines = [f"subject:  {mail.subject}", f"from:     {sender}{assumed}", f"read as:  {_read_as(parsed)}",
             f"client:   {request.client or '-'}", f"type:     {request.type or '-'}"]
    lines += [f"problem:  {p}" for p in request.problems]
    lines += [f"queue:    {decision.queue}{' (triage: a person routes it)' if decision.triage else ''}",
              f"priority: {decision.priority}", f"sla:      {decision.sla}",
              f"due:      {due_words(due.at, calendar)} ({due_reasons(due.explanation)}), if it came now",
              f"assignee: {decision.assignee or '-'}", "because:"]
    lines += [f"  - {reason}" for reason in decision.reasons]
    lines += _model_lines(request, model, rulebook, config, classified.verdict if classified else None)
    return "\n".join(lines)


def _assumed_sender(config: Config) -> tuple[str, str]:
    for client in config.clients:
        for pattern in client.senders:
            if "*" not in pattern:
                return pattern, f"  (assumed: an address of {client.name}; choose another with --from)"
    for client in config.clients:
        for pattern in client.senders:
            return (pattern.replace("*", "someone"),
                    f"  (assumed from {client.name}'s pattern {pattern}; choose another with --from)")
    return "someone@example.com", "  (assumed: no [[clients]] are configured; choose a sender with --from)"


def _read_as(parsed: ParsedSubject | SubjectError) -> str:
    if isinstance(parsed, SubjectError):
        return f"not in the [Client] - Type - Description format: {parsed.reason}"
    words = [f"client {parsed.client_label}", f"type {parsed.type_label}", f"description {parsed.description}"]
    if parsed.priority:
        words.append(f"priority {parsed.priority}")
    if parsed.tags:
        words.append(f"tags {', '.join(parsed.tags)}")
    return "; ".join(words)


def _model_lines(request: Request, model: TriageModel | None, rulebook: Rulebook, config: Config,
                 at_intake: Verdict | None) -> list[str]:
    """``at_intake``: what intake decided; for a request intake does not ask the model about,
    what the rules would make of the model's guess (``settle``, as intake would)."""
    if model is None:
        return ["triage model: none in use (dispatchd triage train)"]
    prediction = model.predict(request_text(request), greetings(config), reasons=5)
    lines = [f"triage model {model.version} guesses"
             + ("" if eligible(request) else " (not asked at intake: the request is typed or its client unknown)")
             + ":"]
    for guess in prediction.guesses[:3]:
        words = ", ".join(f'"{w}"' for w in guess.words) or "-"
        lines.append(f"  {guess.type:12} {guess.confidence:.2f}  words: {words}")
    if prediction.out_of_scope:
        lines.append(f"  not a request {prediction.out_of_scope:.2f}")
    verdict = at_intake or settle(request, request_text(request), prediction, rulebook).verdict
    lines.append(f"  -> {verdict.reason if verdict.route_as is None else 'routes as ' + verdict.route_as.type}")
    return lines
