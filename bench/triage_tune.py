"""A quick, in-process look at the triage model on the free-form set, for development.

    python -m bench.triage_tune [--half dev|test|all] [--history 400] [--show wrong,missed]

``bench/triage_accuracy.py`` is the measure (through the CLI and real intake); this reads the
same mail with the same functions (parse, read_request, predict, ``flows.triage.settle``) and trains the same way
``flows/training.train`` does, without a database, so that a change can be seen in seconds and
at several thresholds at once. The free-form set is split in two halves by item id (``half``):
settings are looked at on ``dev``; ``test`` is for the end. Two experiments by environment:
``NO_GREET=1`` leaves out the staff greeted (their queues), ``TUNE_T=0.6`` fixes the temperature.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.triage_accuracy import EVAL_START, PASSWORD_ENV, deployment, half_of, load_items, message_bytes
from bench.triage_eval.history import generate
from dispatchd.config import load_config
from dispatchd.domain.intake import Directory, read_request
from dispatchd.domain.loops import automation_reason
from dispatchd.fitting import Example
from dispatchd.flows.training import fit_measured
from dispatchd.flows.triage import eligible, greetings, request_text, settle
from dispatchd.mail.parse import parse_mail
from dispatchd.rulebook import load_rulebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--history", type=int, default=400)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--show", default="", help="comma list: right, wrong, missed (at the rules' threshold)")
    parser.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.85,0.9")
    parser.add_argument("--items", type=Path, action="append",
                        help="free-form set(s) to read instead of bench/triage_eval/freeform.jsonl")
    parser.add_argument("--day-one", action="store_true", help="the rules' examples only, no history")
    args = parser.parse_args()
    os.environ.setdefault(PASSWORD_ENV, "unused")
    sets = [load_items(path) for path in args.items] if args.items else [load_items()]
    items = [i for found in sets for i in found if args.half == "all" or half_of(i.id) == args.half]
    root = Path(tempfile.mkdtemp(prefix="dispatchd-triage-tune-"))
    try:
        config = load_config(deployment(root, items))
        rulebook = load_rulebook(config.rules_dir, config)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    directory = Directory(config.clients, config.staff)
    staff = {} if os.environ.get("NO_GREET") else greetings(config)
    history = []
    for n, past in enumerate(generate(args.history, args.seed) if args.history and not args.day_one else []):
        mail = parse_mail(message_bytes(past.sender, past.subject, past.body, None, f"<h{n}@x>", EVAL_START))
        request = read_request(mail, directory, rulebook)
        if request.type:
            history.append(Example(request_text(request), request.type, 1.0, f"task:{n + 1}", "subject"))
    fitted = fit_measured(rulebook, history[::-1], staff, 1)  # the store hands history newest first
    model, examples = fitted.model, fitted.examples
    if os.environ.get("TUNE_T"):
        model = replace(model, temperature=float(os.environ["TUNE_T"]))
    print(f"{len(items)} items ({args.half}), {len(examples)} examples, T={model.temperature:.2f}")
    settings = rulebook.triage_model
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | {settings.threshold})
    rows = []
    for item in items:
        mail = parse_mail(message_bytes(item.sender, item.subject, item.body, item.html, f"<{item.id}@x>",
                                        EVAL_START, item.headers))
        robot = automation_reason(mail, frozenset({"requests@agency.test"}), "agency.test")
        request = read_request(mail, directory, rulebook)
        if robot or not eligible(request):
            rows.append((item, None, request.type, None))
            continue
        text = request_text(request)
        prediction = model.predict(text, staff, mixed_from=0.0)
        known = {t.name for t in rulebook.types}
        prediction = replace(prediction, guesses=tuple(g for g in prediction.guesses if g.type in known))
        rows.append((item, prediction, None, (request, text)))
    for threshold in thresholds:
        right = wrong = 0
        shown: list[str] = []
        at_threshold = replace(rulebook, triage_model=replace(settings, threshold=threshold))
        for item, prediction, fixed, read in rows:
            if prediction is None or read is None:
                got = fixed or "triage"
                reason = "not eligible"
            else:
                settled = settle(*read, prediction, at_threshold)
                got = settled.request.type if settled.verdict.route_as else "triage"
                reason = settled.verdict.reason
            if got == "Urgent":
                got = "triage"
            right += got == item.label
            wrong += got not in (item.label, "triage")
            if threshold == settings.threshold:
                kind = "right" if got == item.label else "wrong" if got != "triage" else "missed"
                if kind in args.show.split(","):
                    guesses = ", ".join(str(g) for g in prediction.guesses[:3]) if prediction else ""
                    shown.append(f"  {kind:6} {item.id} {item.label:>9} -> {got:<9} {item.subject[:40]!r:44} "
                                 f"oos {prediction.out_of_scope if prediction else 0:.2f} "
                                 f"ev {prediction.evidence if prediction else 0:3} {guesses} | {reason[:70]}")
        n = len(rows)
        print(f"threshold {threshold:.2f}: right {right / n:6.1%}  wrong {wrong / n:6.1%}")
        for line in shown:
            print(line)


if __name__ == "__main__":
    main()
