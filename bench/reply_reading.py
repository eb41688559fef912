"""How long reading one reply takes: quotes and signature off (domain/replytext), the grammar
(domain/commands) and, for clients, the plain-words intents (domain/intents), over the reply
corpus's bodies (as written, with a real notice quoted) and over hostile bodies (1 MB of prose,
a 100,000-character line, 20,000 lines quoted 50 deep). Prints milliseconds per reply.

    .venv/bin/python -m bench.reply_reading
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from dispatchd.domain.commands import parse_reply
from dispatchd.domain.intents import read_intent
from dispatchd.domain.replytext import split_reply

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "replies"
NOTICE = "\n".join(f"> line {n} of the notice we sent, with its card and the commands it offers" for n in range(40))


def corpus_bodies() -> list[str]:
    cases = [c for path in sorted(CORPUS.glob("*.toml")) for c in tomllib.loads(path.read_text())["case"]]
    return [(c.get("body") or c.get("html") or "").replace("{quoted}", NOTICE).replace("{original}", NOTICE)
            for c in cases]


def read(text: str) -> None:
    body = split_reply(text).body
    parse_reply(body)
    read_intent(body)


def per_reply_ms(texts: list[str], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            read(text)
    return (time.perf_counter() - start) * 1000 / (rounds * len(texts))


def main() -> None:
    bodies = corpus_bodies()
    read(bodies[0])  # compile the patterns once, as the daemon does
    print(f"corpus ({len(bodies)} replies): {per_reply_ms(bodies, 20):.2f} ms a reply")
    hostile = {
        "1 MB of prose": ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "\n") * 900,
        "one 1 MB line": "x" * 1_000_000,
        "20,000 lines quoted 50 deep": "start\n" + "\n".join("> " * 50 + "line" for _ in range(20_000)),
        "200,000 phone-like tokens": "approve\n\n" + "+1 " * 200_000,
    }
    for name, text in hostile.items():
        print(f"{name}: {per_reply_ms([text], 3):.0f} ms")


if __name__ == "__main__":
    main()
