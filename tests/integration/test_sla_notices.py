"""Issue 20, 3 end to end: an SLA run right after intake of P0 and P1 requests mails no client
"Update on timing", even with the window that used to ship (24 hours, longer than both SLAs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, make_mail

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).resolve().parents[2]


def with_client_window(deployment: Deployment, window: str) -> None:
    rules = deployment.path / "rules"
    rules.mkdir()
    for source in (PROJECT / "rules").glob("*.toml"):
        text = source.read_text()
        if source.name == "40-service.toml":
            text = text.replace('notify_client_before = "3 hours"', f'notify_client_before = "{window}"')
            assert window in text
        (rules / source.name).write_text(text)
    config = deployment.config.read_text().replace(f'rules = "{PROJECT / "rules"}"', f'rules = "{rules}"')
    deployment.config.write_text(config)


def test_an_sla_run_right_after_intake_tells_no_client_it_is_late(deployment: Deployment) -> None:
    with_client_window(deployment, "24 hours")
    deployment.deliver(make_mail("[Acme] - Technical - Site down", sender="Bob Stone <bob@acme.test>"),
                       make_mail("[Acme] - Content - Homepage copy [P1]", sender="Cleo <cleo@acme.test>"),
                       make_mail("[Acme] - Technical - Checkout broken", sender="Dan <dan@acme.test>"))
    assert deployment.run_once() == 0
    assert sorted(t.priority for t in deployment.tasks()) == ["P0", "P1", "P1"]
    before = len(deployment.smtp.messages)
    assert deployment.cli("job", "sla") == 0
    assert deployment.run_once() == 0
    subjects = [str(m["Subject"]) for m in deployment.received()]
    assert not [s for s in subjects if "Update on timing" in s], subjects
    assert len(deployment.smtp.messages) == before, "nothing at all: no threshold is near"
