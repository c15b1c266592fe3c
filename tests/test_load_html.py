"""The HTML report, opened in a real headless Chromium: it shows the run's figures, offline."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from masking_async.emulator import (
    DEFAULT_AUTH_ID,
    DEFAULT_AUTH_TOKEN,
    EmulatorConfig,
    Faults,
    SystemClock,
)
from masking_async.emulator.pytest_plugin import EmulatorFactory

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Set to write the screenshot shown in docs/load.md.
DOCS_IMAGE_ENV = "MASKING_ASYNC_DOCS_IMG"
DOCS_IMAGE = Path(__file__).parent.parent / "docs" / "img" / "load_report.png"
WIDTH = 1000


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Debian's Chromium, headless, no network of its own, driven by Debian's chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={WIDTH},1200",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


async def test_html_report_shows_the_run_in_a_browser(
    masking_emulator_factory: EmulatorFactory, tmp_path: Path, browser: webdriver.Chrome
) -> None:
    """The page renders its four charts and the JSON's figures, and fetches nothing."""
    faults = Faults(error_rate=0.05, throttle_rate=0.05, latency=0.004, jitter=0.01, seed=7)
    emulator = await masking_emulator_factory(
        EmulatorConfig(rate_limit=None, faults=faults), clock=SystemClock()
    )
    page, report = tmp_path / "load.html", tmp_path / "load.json"
    done = await anyio.run_process(
        [
            *(sys.executable, "-m", "masking_async", "load", "--quiet"),
            *("--base-url", emulator.base_url, "--auth-id", DEFAULT_AUTH_ID),
            *("--auth-token", DEFAULT_AUTH_TOKEN, "--stages", "1s:40/s,2s:80/s"),
            *("--threshold", "p99<1s", "--threshold", "errors<1%"),
            *("--html", str(page), "--report", str(report)),
        ],
        check=False,
    )
    data = json.loads(report.read_text())
    assert data["cleanup"]["left"] == []
    assert done.returncode == data["exit_status"] == 99  # errors<1% crossed

    browser.get(page.as_uri())
    assert browser.title == "masking-async load report"
    assert f"exit status {data['exit_status']}" in browser.find_element(By.ID, "verdict").text
    run = browser.find_element(By.ID, "run").text
    assert f"requests sent {data['sent']}" in run
    assert f"throttled (429) {data['throttled_429']}" in run
    p99 = data["latency_ms"]["all"]["p99"]
    assert f"p99 {p99:.2f} ms" in browser.find_element(By.ID, "latency").text
    assert "errors<1% CROSSED" in browser.find_element(By.ID, "thresholds").text
    errors = browser.find_element(By.ID, "errors").text
    assert all(f"{kind} {count}" in errors for kind, count in data["errors"].items())

    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    titles = [chart.find_element(By.CSS_SELECTOR, ".title").text for chart in charts]
    assert titles == [
        "Latency over time (ms, from due time)",
        "Latency histogram (requests per bin, ms)",
        "Throughput (requests per second)",
        "Errors per second (429 apart)",
    ]
    assert all(chart.size["width"] > 500 and chart.size["height"] > 200 for chart in charts)
    bars = charts[1].find_elements(By.CSS_SELECTOR, ".series rect")
    assert len(bars) == len(data["distribution"]) > 3
    dots = charts[0].find_elements(By.CSS_SELECTOR, ".series .dot")
    assert len(dots) == sum(
        1 for point in data["series"] for k in ("p50", "p90", "p99") if point[k]
    )
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched == []

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, height + 100)
    shot = tmp_path / "load_report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get(DOCS_IMAGE_ENV):
        shutil.copyfile(shot, DOCS_IMAGE)


def test_the_html_module_leaves_no_legacy_import_hook() -> None:
    """pygal's map-plugin finder (no find_spec) is taken out again, so imports stay quiet."""
    import masking_async.load.html

    assert masking_async.load.html.render_html
    assert all(hasattr(finder, "find_spec") for finder in sys.meta_path)
