"""The dashboard in headless Chromium against the real chain: an alarm appears on the open
overview without a reload, the ticket page shows its operations log, the site page its
equipment. Screenshots are kept in ``artifacts/browser/``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from simulators.stack import Stack
from tests.conftest import DEMO_SITES, wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
# The overview polls every 15 s as a safety net: seeing the alarm sooner proves the live stream.
LIVE_WITHIN_S = 12

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_an_alarm_appears_live_and_its_ticket_and_site_pages_show_it(
    stack: Stack, browser: WebDriver
) -> None:
    agent = stack.add_agent(DEMO_SITES / "nro-lyon-01.yaml")
    stack.wait_for_gpio(agent.agent_id)
    wait_for(
        "the agent's birth",
        lambda: any(s["agent_reachable"] for s in stack.api("GET", "/api/v1/sites").json()),
    )
    browser.get(f"{stack.base_url}/?token={stack.noc_token}")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-site="{agent.site_id}"]'))
    wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-live") == "yes")
    browser.execute_script("window.__sameDocument = 'yes'")
    assert "door_open" not in browser.find_element(By.ID, "alarms").text
    assert not browser.find_element(By.ID, "site-page").is_displayed()
    shot(browser, "1-overview-quiet")

    stack.set_contact(agent.agent_id, "door", alarm=True)
    WebDriverWait(browser, LIVE_WITHIN_S).until(
        lambda d: (
            "door_open" in d.find_element(By.ID, "alarms").text
            and d.find_elements(By.CSS_SELECTOR, "#tickets tr[data-ticket]")
        )
    )
    assert browser.execute_script("return window.__sameDocument") == "yes"  # no reload
    site_chip = browser.find_element(By.CSS_SELECTOR, f'[data-site="{agent.site_id}"]')
    assert "sev-major" in (site_chip.get_attribute("class") or "")
    shot(browser, "2-overview-alarm")

    browser.find_element(By.CSS_SELECTOR, "#tickets tr[data-ticket]").click()
    wait.until(lambda d: d.find_element(By.ID, "ticket-page").is_displayed())
    wait.until(lambda d: "opened from alarm door_open" in d.find_element(By.ID, "operations").text)
    assert "running" in browser.find_element(By.ID, "detail-sla").text
    # Dates in Paris time, 24 h, with the zone: 07/12/2026 19:30 UTC+1.
    assert re.search(
        r"\b\d{2}/\d{2}/\d{4} \d{2}:\d{2} UTC\+[12]\b",
        browser.find_element(By.ID, "detail-sla").text,
    ), browser.find_element(By.ID, "detail-sla").text
    assert not browser.find_element(By.ID, "overview").is_displayed()  # one page at a time
    shot(browser, "3-ticket")

    browser.get(f"{stack.base_url}/#/sites/{agent.site_id}")
    wait.until(lambda d: d.find_element(By.ID, "site-page").is_displayed())
    wait.until(lambda d: "door_open" in d.find_element(By.ID, "site-alarms").text)
    assert agent.agent_id in browser.find_element(By.ID, "site-summary").text
    assert not browser.find_element(By.ID, "ticket-page").is_displayed()
    shot(browser, "4-site")

    browser.get(f"{stack.base_url}/#/urgent")
    wait.until(lambda d: d.find_element(By.ID, "urgent-page").is_displayed())
    wait.until(lambda d: d.find_element(By.ID, "urgent-empty").is_displayed())
    assert not browser.find_element(By.ID, "site-page").is_displayed()
    shot(browser, "5-urgent-desk")
