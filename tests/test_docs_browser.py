"""`/docs` (Swagger UI) and `/redoc` render in headless Chromium with the network limited to
this server: every script and style comes from `/docs/static/`, and no request goes to any
other host (Chromium's performance log lists every request the page made).

Needs Debian's `chromium` and `chromium-driver` (installed by the README's test command).
Screenshots go to `$DOCS_SCREENSHOT_DIR` when set, else to the test's temporary directory.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import free_port
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from sweep_support import SweepServer

PAGE_TIMEOUT = 180  # seconds: Chromium on two shared cores renders ~280 operations slowly
# not network requests: inline data, the page's own blobs, the browser's internal pages
LOCAL_SCHEMES = ("data", "blob", "about", "chrome", "chrome-error", "chrome-untrusted")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = SweepServer(tmp_path_factory.mktemp("docs"), free_port())
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-extensions",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
                 # every host name but the server's address fails to resolve
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.get("about:blank")
    yield driver
    driver.quit()


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (performance log entries)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for(driver, css: str, at_least: int) -> int:
    """Poll the DOM until `css` matches `at_least` elements; returns how many it found."""
    deadline = time.monotonic() + PAGE_TIMEOUT
    found = 0
    while time.monotonic() < deadline:
        found = len(driver.find_elements(By.CSS_SELECTOR, css))
        if found >= at_least:
            return found
        time.sleep(0.25)  # polling the DOM with a deadline, not waiting for a fixed time
    return found


def scroll_collect(driver, css: str, at_least: int) -> int:
    """Scroll down the page a screen at a time, collecting the ids of the elements matching
    `css`, until `at_least` were seen (Swagger UI draws only the operations near the
    viewport): after each scroll, poll until the screen's operations are drawn."""
    seen: set[str] = set()
    deadline = time.monotonic() + PAGE_TIMEOUT
    collect = "return Array.from(document.querySelectorAll(arguments[0]), e => e.id)"
    while time.monotonic() < deadline and len(seen) < at_least:
        before = len(seen)
        settle = time.monotonic() + 5
        while time.monotonic() < min(settle, deadline):
            seen |= set(driver.execute_script(collect, css))
            if len(seen) > before:
                break
            time.sleep(0.1)  # polling the DOM with a deadline
        driver.execute_script("window.scrollBy(0, window.innerHeight * 0.8)")
    driver.execute_script("window.scrollTo(0, 0)")
    return len(seen)


def screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("DOCS_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def only_this_server(urls: list[str], base: str) -> list[str]:
    """The URLs among `urls` that went to another host than `base`."""
    origin = urlsplit(base).netloc
    return [url for url in urls
            if urlsplit(url).scheme not in LOCAL_SCHEMES and urlsplit(url).netloc != origin]


@pytest.mark.parametrize("path, css, at_least", [
    ("/docs", ".opblock[id^='operations-']", 250),  # drawn as the page scrolls to them
    ("/redoc", "[data-section-id^='operation/']", 250),
])
def test_docs_page_renders_offline(server, browser, tmp_path, path, css, at_least):
    base = f"http://127.0.0.1:{server.port}"
    requested_urls(browser)  # drop what earlier pages logged
    browser.get(base + path)
    assert wait_for(browser, css, 1), f"{path}: no operation rendered"
    shot = screenshot_dir(tmp_path) / f"{path.strip('/')}.png"
    browser.save_screenshot(str(shot))
    found = scroll_collect(browser, css, at_least)
    assert found >= at_least, f"{path}: {found} operations rendered"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    urls = requested_urls(browser)
    assert any("/docs/static/" in url for url in urls) and any("/openapi.json" in url for url in urls)
    assert only_this_server(urls, base) == []
    errors = [e["message"] for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]]
    assert errors == []
