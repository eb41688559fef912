"""Serving the web side in tests and driving it: a real uvicorn (``dispatchd web`` or the daemon
with ``[web] listen``) on a free 127.0.0.1 port, an httpx client, a headless Chromium.

Every process started here is stopped by the code that started it, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import PROJECT
from tests.integration.conftest import Deployment, stop_process

# Chromium without these reaches for Google's servers (updates, sync, safe browsing, QUIC probes)
# and, on a machine that can reach only 127.0.0.1, retries for as long as it runs.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
                  "--disable-dev-shm-usage", "--no-default-browser-check", "--password-store=basic")
PHONE = (390, 844)  # CSS pixels of a common phone, portrait
DESKTOP = (1280, 900)
SCREENSHOTS_ENV = "DISPATCHD_SCREENSHOTS"  # =1: also copy screenshots to docs/screenshots/ for the README


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_table(port: int, more: str = "") -> str:
    """The [web] section of a test config serving on ``port``."""
    return f'[web]\nlisten = "127.0.0.1:{port}"\nbase_url = "http://127.0.0.1:{port}"\n{more}\n'


@dataclass
class WebServer:
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20, follow_redirects=False)


@contextlib.contextmanager
def serving(deployment: Deployment, port: int, daemon: bool = False) -> Iterator[WebServer]:
    """``dispatchd web --listen`` (or, with ``daemon``, ``dispatchd run`` whose config has
    ``web_table(port)``) until the block ends; waits until /healthz answers."""
    if daemon:
        process = deployment.start_daemon(log_name="web-daemon.log")
    else:
        with open(deployment.path / "web.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "dispatchd", "web", "--listen", f"127.0.0.1:{port}",
                 "--config", str(deployment.config)],
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL, stderr=log,
                start_new_session=True)
    server = WebServer(f"http://127.0.0.1:{port}", process)
    try:
        _wait_healthy(server, deployment.path)
        yield server
    finally:
        stop_process(process)


def _wait_healthy(server: WebServer, directory: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            logs = "".join(p.read_text() for p in directory.glob("*.log"))
            raise AssertionError(f"the web server exited with {server.process.returncode}:\n{logs[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"the web server at {server.url} did not answer within {timeout}s")


@contextlib.contextmanager
def chromium(width_height: tuple[int, int] = DESKTOP) -> Iterator[object]:
    """A headless Debian Chromium driven through chromedriver, with a fresh profile; the driver
    and the browser are stopped (and the profile removed) when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dispatchd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width_height[0]},{width_height[1]}"):
        options.add_argument(flag)
    service = Service("/usr/bin/chromedriver", log_output=subprocess.DEVNULL)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()  # ends the browser; then the driver process, which the Service started
        with contextlib.suppress(Exception):
            service.stop()
        shutil.rmtree(profile, ignore_errors=True)


def follow(driver: object, element: object) -> None:
    """Click a link or a form's button and wait until the next page has replaced this one: a
    plain click returns as soon as the browser has the event, and reading the page then can
    catch the old one going stale."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")  # type: ignore[attr-defined]
    element.click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 20).until(staleness_of(page))  # type: ignore[arg-type]
    WebDriverWait(driver, 20).until(  # type: ignore[arg-type]
        lambda d: d.execute_script("return document.readyState") == "complete")


def screenshot(driver: object, directory: Path, name: str) -> Path:
    """Save the page as ``directory/name.png`` (a test artifact); with DISPATCHD_SCREENSHOTS=1
    also as docs/screenshots/name.png, the pictures the README shows."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        docs = PROJECT / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs / path.name)
    return path
