"""A staff member in a real Chromium against the daemon (real Dovecot, the SMTP sink, the web side
served by ``dispatchd run``): signs in with the link read from the sink, re-routes a triage task,
and the client's page (opened from the link in their status email) shows the new status. Screenshots of each page at desktop and phone width."""

from __future__ import annotations

import email
import re
from email.policy import default
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dispatchd.devservers import Received
from tests.integration.conftest import Deployment, make_mail, wait_for
from tests.integration.webtools import DESKTOP, PHONE, follow, free_port, screenshot, serving, web_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def text_of(message: Received) -> str:
    parsed = email.message_from_bytes(message.data, policy=default)
    return parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def mails_to(deployment: Deployment, address: str) -> list[Received]:
    return [m for m in deployment.smtp.messages if address in m.rcpt_tos]


def signin_links(deployment: Deployment, address: str) -> list[str]:
    found = (re.search(r"http\S+/staff/signin/\S+", text_of(m)) for m in mails_to(deployment, address))
    return [match.group(0) for match in found if match]


def fits_the_width(browser: object) -> bool:
    wide = browser.execute_script("return document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    return wide <= browser.execute_script("return window.innerWidth")  # type: ignore[attr-defined]


def test_staff_sign_in_by_email_and_reroute_a_triage_task(deployment: Deployment, browser: object,
                                                          tmp_path: Path) -> None:
    port = free_port()
    deployment.config.write_text(deployment.config.read_text() + web_table(port))
    shots = tmp_path / "screenshots"
    deployment.deliver(make_mail("[Acme] - Content - Blog post on topic clusters", message_id="<b1@acme.test>"),
                       make_mail("[Acme] - Mystery work - something odd", message_id="<m1@acme.test>",
                                 body="Could you look at our newsletter sign-up? It broke after the redesign."))
    with serving(deployment, port, daemon=True) as server:
        wait_for(lambda: len(mails_to(deployment, "bob@acme.test")) >= 2, 30, "both confirmations")
        drive = browser  # type: ignore[assignment]
        drive.set_window_size(*DESKTOP)  # type: ignore[attr-defined]
        drive.get(server.url + "/staff")  # type: ignore[attr-defined]
        assert drive.current_url.endswith("/staff/signin")  # type: ignore[attr-defined]
        screenshot(drive, shots, "staff-signin")
        drive.find_element(By.NAME, "email").send_keys("morgan@agency.test")  # type: ignore[attr-defined]
        follow(drive, drive.find_element(By.CSS_SELECTOR, "form.stack button"))  # type: ignore[attr-defined]
        assert "a sign-in link is on its way" in drive.page_source  # type: ignore[attr-defined]
        wait_for(lambda: bool(signin_links(deployment, "morgan@agency.test")), 30, "the sign-in email")
        [link] = signin_links(deployment, "morgan@agency.test")
        drive.get(link)  # type: ignore[attr-defined]
        follow(drive, drive.find_element(By.ID, "signin"))  # type: ignore[attr-defined]
        assert drive.current_url == server.url + "/staff"  # type: ignore[attr-defined]
        assert drive.find_elements(By.CSS_SELECTOR, "svg.chart")  # type: ignore[attr-defined]
        screenshot(drive, shots, "staff-dashboard")

        drive.get(server.url + "/staff/triage")  # type: ignore[attr-defined]
        card = drive.find_element(By.CSS_SELECTOR, "section.card[id^=task-]")  # type: ignore[attr-defined]
        task_id = int(card.get_attribute("id").removeprefix("task-"))
        screenshot(drive, shots, "staff-triage")
        Select(card.find_element(By.CSS_SELECTOR, "select[aria-label='Request type']")).select_by_visible_text("Technical")
        follow(drive, card.find_element(By.XPATH, ".//button[text()='Set type']"))
        assert "Nothing waits for triage." in drive.page_source, drive.find_element(By.TAG_NAME, "main").text  # type: ignore[attr-defined]

        drive.get(f"{server.url}/staff/tasks/{task_id}")  # type: ignore[attr-defined]
        assert drive.find_element(By.ID, "status").text == "queued"  # type: ignore[attr-defined]
        assert drive.find_element(By.ID, "queue").text == "dev"  # type: ignore[attr-defined]
        audit = drive.find_element(By.ID, "audit").text  # type: ignore[attr-defined]
        assert "rerouted by morgan@agency.test" in audit and "(on the web)" in audit
        screenshot(drive, shots, "staff-task")
        wait_for(lambda: len(mails_to(deployment, "bob@acme.test")) >= 3, 30, "the client's status email")
        told = text_of(mails_to(deployment, "bob@acme.test")[-1])
        assert f"#{task_id}" in told.replace("[#", "#")
        # The client's own page, through the link in that email, shows where it went.
        portal = re.search(r"All your requests: (http\S+)", told).group(1)  # type: ignore[union-attr]
        drive.get(f"{portal}/r/{task_id}")  # type: ignore[attr-defined]
        assert drive.find_element(By.CSS_SELECTOR, "dd .status").text == "queued"  # type: ignore[attr-defined]
        screenshot(drive, shots, "client-request-after-triage")

        drive.get(server.url + "/staff/tasks?q=blog")  # type: ignore[attr-defined]
        assert "1 of 1 shown" in drive.find_element(By.ID, "shown").text  # type: ignore[attr-defined]
        screenshot(drive, shots, "staff-tasks")
        drive.set_window_size(*PHONE)  # type: ignore[attr-defined]
        for page, name in (("/staff", "staff-dashboard-phone"), ("/staff/tasks", "staff-tasks-phone"),
                           (f"/staff/tasks/{task_id}", "staff-task-phone")):
            drive.get(server.url + page)  # type: ignore[attr-defined]
            assert fits_the_width(drive), page
            screenshot(drive, shots, name)
        drive.set_window_size(*DESKTOP)  # type: ignore[attr-defined]
