"""The client side in a real headless Chromium, against the real daemon, Dovecot and the SMTP
sink: the link from a real confirmation email, the request form, a refused link; each page
saved as a screenshot (DISPATCHD_SCREENSHOTS=1 copies them to docs/screenshots/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dispatchd.devservers import Dovecot
from tests.integration.conftest import wait_for
from tests.integration.websites import Site, client_site
from tests.integration.webtools import DESKTOP, PHONE, follow, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot) -> Iterator[Site]:
    with client_site(tmp_path_factory.mktemp("web-browser"), dovecot) as site:
        yield site


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _fits(browser: object) -> bool:
    width = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    return width <= browser.execute_script("return window.innerWidth")  # type: ignore[attr-defined]


def test_a_client_follows_the_link_in_their_confirmation_and_sends_a_request(site: Site, browser: object,
                                                                             shots: Path) -> None:
    driver = browser
    link = site.link_in(site.mails_to("bob@acme.test")[0])
    driver.set_window_size(*PHONE)  # type: ignore[attr-defined]
    driver.get(link)  # type: ignore[attr-defined]
    listing = driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    assert "Blog post about spring" in listing and "Globex" not in listing
    assert '<script>alert("subject")</script>' in listing, "hostile words shown as text, not run"
    assert _fits(driver), "the list scrolls inside its box, the page does not"
    screenshot(driver, shots, "client-requests-phone")

    follow(driver, driver.find_element(By.LINK_TEXT, "Blog post about spring"))  # type: ignore[attr-defined]
    assert "We received the request." in driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "words").send_keys("Please use the blue logo.")  # type: ignore[attr-defined]
    follow(driver, driver.find_element(By.XPATH, "//button[text()='Add the comment']"))  # type: ignore[attr-defined]
    page = driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    assert "Your comment was passed to the team." in page and "Please use the blue logo." in page
    assert _fits(driver)
    screenshot(driver, shots, "client-request-phone")

    follow(driver, driver.find_element(By.LINK_TEXT, "New request"))  # type: ignore[attr-defined]
    Select(driver.find_element(By.NAME, "type")).select_by_visible_text("Design")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "description").send_keys("Poster for the spring fair")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "details").send_keys("A3, our colours.")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "urgent").click()  # type: ignore[attr-defined]
    assert _fits(driver)
    screenshot(driver, shots, "client-form-phone")
    follow(driver, driver.find_element(By.XPATH, "//button[text()='Send the request']"))  # type: ignore[attr-defined]
    thanks = driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    number = re.search(r"request #(\d+)", thanks)
    assert number, thanks
    wait_for(lambda: any(f"[#{number.group(1)}] Received" in str(m["Subject"])
                         for m in site.mails_to("bob@acme.test")), what="the confirmation")
    task = site.task("Poster for the spring fair")
    assert (task.client, task.type, task.priority) == ("Acme", "Design", "P1")

    driver.set_window_size(*DESKTOP)  # type: ignore[attr-defined]
    driver.get(link)  # type: ignore[attr-defined]
    assert "Poster for the spring fair" in driver.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    screenshot(driver, shots, "client-requests-desktop")


def test_a_tampered_link_shows_nothing(site: Site, browser: object, shots: Path) -> None:
    link = site.link_in(site.mails_to("bob@acme.test")[0])
    head, _, token = link.rpartition("/")
    browser.set_window_size(*PHONE)  # type: ignore[attr-defined]
    browser.get(f"{head}/{token[:-3]}xyz")  # type: ignore[attr-defined]
    text = browser.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]
    assert "This link does not work." in text and "Blog post" not in text
    screenshot(browser, shots, "client-link-refused-phone")
