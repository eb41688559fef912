"""The web side served for real: ``dispatchd web`` alone and the daemon with ``[web] listen``,
on a free 127.0.0.1 port, seen through httpx and a headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import Deployment, stop_process
from tests.integration.webtools import PHONE, free_port, screenshot, serving, web_table


def test_dispatchd_web_serves_pages_with_their_headers_and_stops_on_sigterm(deployment: Deployment) -> None:
    port = free_port()
    with serving(deployment, port) as server, server.client() as http:
        page = http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '<link rel="stylesheet" href="/static/site.css">' in page.text
        assert page.headers["x-frame-options"] == "DENY" and "unsafe-inline" not in page.headers["content-security-policy"]
        css = http.get("/static/site.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert css.headers["x-content-type-options"] == "nosniff"
        missing = http.get("/no/such/page")
        assert missing.status_code == 404 and "Not found" in missing.text
        assert missing.headers["referrer-policy"] == "no-referrer"
        assert stop_process(server.process) == 0


def test_the_daemon_serves_the_web_side_when_listen_is_set(deployment: Deployment) -> None:
    port = free_port()
    deployment.config.write_text(deployment.config.read_text() + web_table(port))
    with serving(deployment, port, daemon=True) as server, server.client() as http:
        assert http.get("/healthz").text == "ok\n"
        assert stop_process(server.process) == 0
    log = (deployment.path / "web-daemon.log").read_text()
    assert '"event": "web.listening"' in log and '"event": "web.stopped"' in log


def test_a_page_at_phone_width(deployment: Deployment, browser: object, tmp_path: Path) -> None:
    port = free_port()
    with serving(deployment, port) as server:
        browser.set_window_size(*PHONE)  # type: ignore[attr-defined]
        browser.get(server.url + "/")  # type: ignore[attr-defined]
        assert browser.title == "dispatchd"  # type: ignore[attr-defined]
        width = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
        inner = browser.execute_script("return window.innerWidth")  # type: ignore[attr-defined]
        assert width <= inner, "nothing wider than the phone's screen"
        assert screenshot(browser, tmp_path / "screenshots", "home-phone").stat().st_size > 1000


def test_rotating_the_generated_secret_ends_every_link(deployment: Deployment,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from sqlmodel import Session

    from dispatchd.config import load_config
    from dispatchd.daemon import build_deps
    from dispatchd.domain.links import LinkState, sign_link
    from dispatchd.flows.portal import open_link

    deployment.config.write_text(deployment.config.read_text() + web_table(free_port()))

    def state(token: str) -> LinkState:
        deps = build_deps(load_config(deployment.config))
        try:
            with Session(deps.engine) as session:
                return open_link(session, deps.config, deps.web_secret, token, deps.clock.now()).state
        finally:
            deps.engine.dispose()

    first = build_deps(load_config(deployment.config))
    token = sign_link(first.web_secret, "Acme", "bob@acme.test", first.clock.now(), timedelta(days=1))
    first.engine.dispose()
    assert state(token) is LinkState.VALID, "the generated secret is kept: the next start signs alike"
    assert deployment.cli("web", "rotate") == 0
    assert state(token) is LinkState.INVALID
    secret = deployment.path / "web.secret"
    secret.write_text("configured\n")
    deployment.config.write_text(deployment.config.read_text() + 'secret_file = "web.secret"\n')
    capsys.readouterr()
    assert deployment.cli("web", "rotate") == 2
    assert "comes from" in capsys.readouterr().err, "a configured secret is changed where it is configured"
