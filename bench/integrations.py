"""Webhooks, Slack and Teams under a backlog (issue 15): `python -m bench.integrations [--requests N]`.

The backlog benchmark's run (`dispatchd run --once` on N pre-loaded requests, real Dovecot and an
SMTP sink on 127.0.0.1), in three set-ups, interleaved round by round so that the machine's load
drifts over all of them alike:

- none: no destination configured;
- three: a signed webhook, a Slack and a Teams destination (all events), answered 200 by a real
  HTTP receiver on 127.0.0.1;
- hanging: the same, but the webhook's receiver never answers (a 2 s timeout each request).

The receivers run in a thread of this process at nice 10 (they stand in for remote services);
dispatchd posts from its integrations process, at nice 10 too.

For each: seconds to the last client confirmation accepted by the sink (intake and mail), seconds
for the whole run (delivery included: `--once` waits for both), and events delivered per second
(from the first to the last request the receiver recorded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.__main__ import ROOT, confirmations, requests, run_once
from dispatchd.devservers import Dovecot, SmtpCapture
from tests.conftest import write_config
from tests.integration.receiver import Receiver

SETUPS = ("none", "three", "hanging")


def destinations(ok: Receiver, hanging: Receiver, setup: str) -> str:
    if setup == "none":
        return ""
    hook = hanging.url if setup == "hanging" else ok.url
    return f"""
[[webhooks]]
name = "crm"
url = "{hook}/hook"
secret_env = "BENCH_HOOK_SECRET"
timeout = 2

[[slack]]
name = "team-slack"
url_env = "BENCH_SLACK_URL"

[[teams]]
name = "team-teams"
url_env = "BENCH_TEAMS_URL"
"""


def one_run(dovecot: Dovecot, ok: Receiver, hanging: Receiver, setup: str, count: int, user: str) -> dict[str, float]:
    with SmtpCapture() as sink:
        root = Path(tempfile.mkdtemp(prefix=f"dispatchd-bench-{setup}-"))
        write_config(root, dovecot.port, sink.port, mailbox=user, extra=(
            "[intake]\nmax_replies_per_hour = 1000000\nmax_replies_per_sender_per_hour = 100000\n"
            "max_replies_per_thread_per_hour = 100000\n" + destinations(ok, hanging, setup)))
        text = (root / "config.toml").read_text().replace('format = "json"', 'format = "json"\nlevel = "warning"')
        (root / "config.toml").write_text(text)
        dovecot.append(user, requests(count))
        received_before = ok.count()
        started = time.perf_counter()
        seconds, _, _ = run_once(root)
        confirmed = confirmations(sink)
        assert len(confirmed) == count, (len(confirmed), count)
        last_confirmation = max(confirmed.values()) - started
        delivered = ok.requests[received_before:]
    events = len(delivered)
    span = (delivered[-1].at - delivered[0].at) if events > 1 else 0.0
    return {"seconds_to_last_confirmation": last_confirmation, "seconds_whole_run": seconds,
            "requests_per_s": count / last_confirmation, "events_delivered": events,
            "events_per_s": events / span if span else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os
    os.environ.update(BENCH_HOOK_SECRET="bench-secret")
    results: dict[str, list[dict[str, float]]] = {setup: [] for setup in SETUPS}
    with Dovecot() as dovecot:
        ok, hanging = Receiver().start(), Receiver(answer=lambda n, r: (0, {})).start()
        for receiver in (ok, hanging):
            # The receivers stand in for services elsewhere: their CPU here is not dispatchd's cost,
            # so their thread runs below intake and mail (Linux nice is per thread).
            assert receiver._thread is not None and receiver._thread.native_id is not None
            os.setpriority(os.PRIO_PROCESS, receiver._thread.native_id, 10)
        os.environ.update(BENCH_SLACK_URL=f"{ok.url}/slack", BENCH_TEAMS_URL=f"{ok.url}/teams")
        try:
            for round_number in range(args.rounds):
                order = SETUPS if round_number % 2 == 0 else tuple(reversed(SETUPS))
                for setup in order:
                    figures = one_run(dovecot, ok, hanging, setup, args.requests, f"{setup}{round_number}@agency.test")
                    results[setup].append(figures)
                    print(f"round {round_number + 1} {setup:8} " + "  ".join(
                        f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
        finally:
            ok.stop()
            hanging.stop()
    summary = {}
    for setup, runs in results.items():
        summary[setup] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    base = summary["none"]["seconds_to_last_confirmation"]
    print(f"\nmedians of {args.rounds} rounds, {args.requests} requests each")
    for setup, figures in summary.items():
        change = (figures["seconds_to_last_confirmation"] / base - 1) * 100
        print(f"{setup:8} last confirmation {figures['seconds_to_last_confirmation']:.2f} s ({change:+.1f} % vs none), "
              f"whole run {figures['seconds_whole_run']:.2f} s, {figures['requests_per_s']:.1f} requests/s, "
              f"{figures['events_delivered']:.0f} events at {figures['events_per_s']:.0f}/s")
    (ROOT / "integrations.json").write_text(json.dumps({"runs": results, "medians": summary}, indent=2))


if __name__ == "__main__":
    main()
