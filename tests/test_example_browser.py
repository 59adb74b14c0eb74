"""The example app's page in a real headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven through Selenium with the system
chromedriver: nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_example_app import AppFactory, AppProcess, running_apps

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[AppFactory]:
    with running_apps(tmp_path) as factory:
        yield factory


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",  # the tests run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    service = Service(
        CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def text_of(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_until(
    driver: Any, what: str, check: Callable[[Any], bool], timeout: float = 20
) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        check, message=f"timed out waiting for {what}"
    )


def send(driver: Any, endpoint: str, name: str) -> None:
    field = driver.find_element(By.ID, "name")
    field.clear()
    field.send_keys(name)
    Select(driver.find_element(By.ID, "endpoint")).select_by_value(endpoint)
    driver.find_element(By.ID, "send").click()


def test_page_posts_items_and_the_counters_move(
    start_app: AppFactory, browser: Any, tmp_path: Path
) -> None:
    """Load the page, post items through its form, watch the live
    counters, the latency figures and the chart follow."""
    app: AppProcess = start_app({})  # the embedded default
    app.wait_healthy()
    browser.get(app.url + "/")
    assert browser.title == "aiokafka_c example"

    wait_until(
        browser,
        "the first /stats refresh",
        lambda d: text_of(d, "items1-requests") == "0",
    )
    wait_until(
        browser,
        "the health badge",
        lambda d: text_of(d, "health") == "healthy",
    )
    assert "embedded mock cluster" in text_of(browser, "mode")

    send(browser, "items1", f"browser-{uuid.uuid4().hex[:8]}")
    wait_until(
        browser,
        "the /items1 answer",
        lambda d: text_of(d, "result").startswith("200"),
    )
    assert '"offset"' in text_of(browser, "result")
    wait_until(
        browser,
        "the /items1 counters to move",
        lambda d: (
            text_of(d, "items1-requests") == "1"
            and text_of(d, "items1-deliveries") == "1"
        ),
    )
    wait_until(browser, "a p50 figure", lambda d: text_of(d, "p50") != "–")
    wait_until(
        browser,
        "the latency chart to draw",
        lambda d: bool(
            d.find_element(By.ID, "p50-line").get_attribute("points")
        ),
    )

    send(browser, "items3", "from-the-browser")
    wait_until(
        browser,
        "the /items3 answer",
        lambda d: text_of(d, "result").startswith("202"),
    )
    wait_until(
        browser,
        "the /items3 delivery to be counted",
        lambda d: text_of(d, "items3-deliveries") == "1",
    )
    # Fire-and-forget and no-op endpoints learn nothing of delivery.
    assert text_of(browser, "items4-deliveries") == "–"

    browser.save_screenshot(str(tmp_path / "page.png"))
    assert app.stop() == 0, app.log()


def feed_values(driver: Any) -> list[str]:
    return [
        str(e.text)
        for e in driver.find_elements(By.CSS_SELECTOR, "#feed li .value")
    ]


@pytest.mark.parametrize("cluster", ["embedded", "broker"])
def test_live_feed_shows_posted_items(
    start_app: AppFactory, browser: Any, tmp_path: Path, cluster: str,
    request: pytest.FixtureRequest,
) -> None:
    """The page's WebSocket feed: an item posted through the form appears
    in the "Live feed" list, newest first; on the embedded mock cluster and
    on the real broker (KAFKA_BOOTSTRAP_SERVERS)."""
    env = ({} if cluster == "embedded" else
           {"KAFKA_BOOTSTRAP_SERVERS": request.getfixturevalue(
               "kafka_bootstrap")})
    app: AppProcess = start_app(env)
    app.wait_healthy()
    browser.get(app.url + "/")
    # On a fresh broker the topic may not exist before the first item:
    # the feed waits for it, then reads it from its beginning.
    wait_until(
        browser,
        "the feed to go live (or wait for its topic)",
        lambda d: text_of(d, "feed-status") in ("live", "waiting"),
        timeout=60,
    )
    wait_until(
        browser,
        "the page to be counted as a viewer",
        lambda d: text_of(d, "feed-viewers") == "1",
    )
    assert feed_values(browser) == []

    first = f"feed-{uuid.uuid4().hex[:8]}"
    send(browser, "items1", first)
    wait_until(
        browser, "the item in the feed", lambda d: first in feed_values(d)
    )
    second = f"feed-{uuid.uuid4().hex[:8]}"
    send(browser, "items2", second)
    wait_until(
        browser,
        "the second item on top",
        lambda d: feed_values(d)[:2] == [second, first],
    )
    wait_until(
        browser,
        "the fan-out counter",
        lambda d: text_of(d, "feed-fanned-out") == "2",
    )
    browser.save_screenshot(str(tmp_path / "feed.png"))
    assert app.stop() == 0, app.log()
