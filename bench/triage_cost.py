"""What the triage model costs: prediction per request, start-up load, training on 50,000 tasks.

    .venv/bin/python -m bench.triage_cost [--tasks 50000] [--json]

Builds a throw-away SQLite database with ``--tasks`` stored requests (tasks and their request
texts, typed as by well-formed subjects, written with plain INSERTs), then in a fresh process each:
``train`` (wall time and the process's peak RSS), loading the active model as the daemon does at
start (``ModelSlot.refresh``), and ``classify`` + ``predict`` on free-form requests (per request).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

PHRASES = {
    "Content": ["blog post about {}", "newsletter text on {}", "press release for {}", "product copy for {}",
                "article on {} for the magazine", "Blogartikel über {}", "Texte für {} schreiben"],
    "Design": ["banner for the {} sale", "logo ideas for {}", "flyer layout for {}", "social graphics for {}",
               "poster for the {} fair", "Grafiken für {}", "Flyer für {} gestalten"],
    "Technical": ["contact form broken on {}", "500 error on the {} page", "login bug in {}", "SSL for {}",
                  "plugin update breaks {}", "Fehler auf der Seite {}", "Formular auf {} kaputt"],
    "Strategy": ["call about the {} plan", "workshop on {} positioning", "advice on {} budget",
                 "roadmap for {}", "Beratung zu {}", "Termin zur Planung von {}"],
    "Revision": ["changes to the {} draft", "corrections on the {} flyer you sent", "feedback on {} copy",
                 "second round on {}", "Korrekturen am {} Entwurf", "Änderungen an {}"],
}
TOPICS = [f"{a} {b}" for a in ("spring", "summer", "berlin", "paris", "alpha", "nova", "orbit", "delta", "quartz",
                               "maple", "harbour", "zenith") for b in ("launch", "campaign", "shop", "event",
                                                                        "app", "report", "brand", "range")]
FREE = ["Hi Ben,\nCould we get a new banner for the spring sale? Three sizes for Instagram.\n\nThanks,\nBob",
        "Hallo,\ndas Kontaktformular auf unserer Website funktioniert nicht mehr.\n\nViele Grüße\nAnna",
        "Hi team, we'd like to talk about our marketing plan for next year. Can we book a call?\nCheers, Jo",
        "Please write a blog article about remote work, around 800 words.\n\nBest regards\nSam Miller\nAcme"]


def build(directory: Path, count: int) -> Path:
    """A config and a database holding ``count`` typed tasks with their request texts."""
    from sqlalchemy import insert

    from dispatchd.store.db import migrate, open_engine
    from dispatchd.store.tables import RequestText, Task

    project = Path(__file__).resolve().parents[1]
    config = directory / "config.toml"
    config.write_text(f"""[mailbox]\nhost = "127.0.0.1"\nport = 1143\ntls = "none"\nusername = "requests@agency.test"
password_env = "PATH"\n[smtp]\nhost = "127.0.0.1"\nport = 1025\ntls = "none"\nfrom = "A <requests@agency.test>"
[database]\nurl = "sqlite:///dispatchd.db"\n[paths]\nrules = "{project / 'rules'}"\ntemplates = "{project / 'templates'}"
[[clients]]\nname = "Acme"\nsenders = ["*@acme.test"]\n[[staff]]\nname = "Ben Stone"\nemail = "ben@agency.test"
queues = ["design"]\n[[staff]]\nname = "Morgan"\nemail = "morgan@agency.test"\nrole = "manager"
queues = ["triage", "strategy"]\n""")
    engine = open_engine(f"sqlite:///{directory / 'dispatchd.db'}")
    migrate(engine)
    rng = random.Random(50)
    # Real mail has a long tail of words (names, products, typos): 40,000 made-up ones, drawn
    # Zipf-like, ten to a body, so the vocabulary reaches the model's feature cap as it would.
    syllables = ["ka", "lo", "mi", "ter", "zu", "an", "bre", "ven", "do", "sch", "ri", "pol", "gu", "ne", "tak"]
    tail = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(40_000)]
    weights = [1 / (rank + 10) for rank in range(len(tail))]
    start = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
    with engine.begin() as connection:
        for first in range(1, count + 1, 5000):
            tasks, texts = [], []
            for task_id in range(first, min(first + 5000, count + 1)):
                kind = rng.choice(list(PHRASES))
                phrase = rng.choice(PHRASES[kind]).format(rng.choice(TOPICS))
                at = start + timedelta(minutes=task_id)
                tasks.append(dict(id=task_id, client="Acme", type=kind, queue=kind.lower(), priority="P2",
                                  status="queued", description=phrase, subject=f"[Acme] - {kind} - {phrase}",
                                  sender="bob@acme.test", sender_name="", sla="2 business days", due_at=at,
                                  due_explanation="", message_id=f"<{task_id}@acme.test>", tags="", created_at=at,
                                  updated_at=at))
                extra = " ".join(rng.choices(tail, weights, k=10))
                body = (f"Hi Ben,\n{phrase[0].upper()}{phrase[1:]}, as discussed. {extra}. "
                        f"{rng.choice(['Deadline is Friday.', 'Budget as usual.', 'Files follow.', ''])}\n\nThanks,\nBob")
                texts.append(dict(task_id=task_id, client="Acme", subject=phrase, body=body, type_word=None,
                                  origin="subject", predicted=None, confidence=None, model_version=None,
                                  corrected=False, created_at=at))
            connection.execute(insert(Task.__table__), tasks)  # type: ignore[attr-defined]
            connection.execute(insert(RequestText.__table__), texts)  # type: ignore[attr-defined]
    engine.dispose()
    return config


def child(step: str, config: Path) -> dict[str, float]:
    """One step in this (fresh) process; prints its figures as JSON."""
    from dispatchd.config import load_config
    from dispatchd.rulebook import load_rulebook
    from dispatchd.store.db import open_engine

    loaded = load_config(config)
    rulebook = load_rulebook(loaded.rules_dir)
    engine = open_engine(loaded.database_url)
    if step == "train":
        from dispatchd.flows.training import train

        started = time.perf_counter()
        result = train(engine, loaded, rulebook, datetime.now(timezone.utc), force=True)
        return {"seconds": time.perf_counter() - started, "examples": sum(result.examples.values()),
                "accuracy": result.accuracy, "peak_rss_mb": _peak_mb()}
    from dispatchd.domain.models import Request
    from dispatchd.flows.triage import ModelSlot, classify

    rss_before = _peak_mb()
    started = time.perf_counter()
    model = ModelSlot(engine).refresh()
    load_seconds = time.perf_counter() - started
    assert model is not None
    requests = [Request(sender="bob@acme.test", client="Acme", type=None, priority=None, description="Request",
                        body=body, subject="Request", problems=("subject: no client",)) for body in FREE]
    for request in requests:  # warm up
        classify(request, model, rulebook, loaded)
    rounds = 500
    started = time.perf_counter()
    for _ in range(rounds):
        for request in requests:
            classify(request, model, rulebook, loaded)
    per_request = (time.perf_counter() - started) / (rounds * len(requests))
    return {"load_seconds": load_seconds, "predict_ms": per_request * 1000, "features": len(model.vocabulary),
            "model_mb": _peak_mb() - rss_before}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=("train", "predict"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.config)))
        return 0
    with tempfile.TemporaryDirectory(prefix="triage-cost-") as tmp:
        started = time.perf_counter()
        config = build(Path(tmp), args.tasks)
        built = time.perf_counter() - started
        figures = {"tasks": args.tasks, "build_seconds": built}
        for step in ("train", "predict"):
            out = subprocess.run([sys.executable, "-m", "bench.triage_cost", "--child", step, "--config", str(config)],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{step} failed:\n{out.stderr[-3000:]}")
            out = out.stdout
            figures[step] = json.loads(out.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        train, predict = figures["train"], figures["predict"]
        print(f"training on {args.tasks} tasks ({train['examples']:.0f} examples used): {train['seconds']:.1f} s, "
              f"peak RSS {train['peak_rss_mb']:.0f} MB (targets 60 s, 300 MB)")
        print(f"start-up load: {predict['load_seconds'] * 1000:.0f} ms for {predict['features']:.0f} features "
              f"(target 1 s)")
        print(f"prediction: {predict['predict_ms']:.3f} ms per request (target 1 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
