"""The web side served for real: ``dispatchd web`` alone and the daemon with ``[web] listen``,
on a free 127.0.0.1 port, seen through httpx and a headless Chromium."""

from __future__ import annotations

from pathlib import Path

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
