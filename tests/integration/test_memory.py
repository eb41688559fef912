"""Memory is bounded by configuration, not by mail (issue 21, 4): 200 requests with a 1 MB
attachment each, read by `dispatchd run --once` with a fetch budget; the peak RSS (VmHWM) of
the intake process is read from /proc at its end."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mailbox_table, write_config
from tests.integration.conftest import Deployment, make_mail

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MB = 1024 * 1024

# `run --once` in a child that reports its own VmHWM when it is done (the sender it forks is a
# process of its own: its peak is not in this figure, and it holds no incoming mail).
_MEASURED_RUN = """
import sys
from dispatchd.cli import main
code = main(["run", "--once", "--config", sys.argv[1]])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) // 1024)
sys.exit(code)
"""


def peak_rss_mb(config: Path) -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-c", _MEASURED_RUN, str(config)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def test_two_hundred_one_megabyte_attachments_stay_within_the_budget(deployment: Deployment) -> None:
    budget_mb = 20
    write_config(deployment.path, deployment.dovecot.port, deployment.smtp.port, mailbox=deployment.user,
                 mailboxes=mailbox_table(deployment.user, deployment.dovecot.port,
                                         more=f"fetch_budget_mb = {budget_mb}"))
    baseline = peak_rss_mb(deployment.config)  # start-up and an empty pass
    noise = random.Random(21)
    for start in range(0, 200, 20):  # 20 at a time: the test's own memory stays small too
        deployment.deliver(*(make_mail(f"[Acme] - Design - Big files {n}", sender=f"designer{n}@acme.test",
                                       attachments=((f"scan{n}.tif", noise.randbytes(MB)),))
                             for n in range(start, start + 20)))
    peak = peak_rss_mb(deployment.config)
    print(f"peak RSS: {peak} MB with a {budget_mb} MB fetch budget (empty pass: {baseline} MB)")
    assert len(deployment.tasks()) == 200
    # The budget's worth of raw mail, its parsed form and what the run holds until it commits.
    assert peak - baseline <= 6 * budget_mb, f"peak {peak} MB, empty pass {baseline} MB"
