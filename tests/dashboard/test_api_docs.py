"""The API's documentation pages on an offline NOC network: Swagger UI (``/docs``) and ReDoc
(``/redoc``) in headless Chromium that can reach nothing but this machine, against the real
collector. Both list the operations, and every resource they loaded came from the collector."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from simulators.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _sent_elsewhere(browser: WebDriver, origin: str) -> list[str]:
    """The URLs the page sent a request to outside ``origin``, from DevTools' network events
    (a request the page's Content-Security-Policy blocked never left: it is not counted)."""
    sent: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            sent[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(params["requestId"])
    return sorted(
        url
        for request_id, url in sent.items()
        if request_id not in blocked and not url.startswith((origin, "data:", "blob:"))
    )


def test_swagger_ui_lists_the_operations_and_loads_nothing_from_elsewhere(
    stack: Stack, browser: WebDriver
) -> None:
    browser.get(f"{stack.base_url}/docs")
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 50
    )
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/v1/tickets", "/api/v1/alarms", "/api/v1/sites"} <= paths
    # The Authorize button is there: the document declares its bearer scheme.
    assert browser.find_elements(By.CSS_SELECTOR, ".auth-wrapper .authorize")
    assert _sent_elsewhere(browser, stack.base_url) == []


def test_redoc_lists_the_operations_and_loads_nothing_from_elsewhere(
    stack: Stack, browser: WebDriver
) -> None:
    browser.get(f"{stack.base_url}/redoc")
    WebDriverWait(browser, 30).until(lambda d: "/api/v1/tickets" in d.page_source)
    assert "Problem" in browser.page_source
    assert _sent_elsewhere(browser, stack.base_url) == []
