"""The viewer page in a real headless browser: Selenium driving Debian's chromium through the
system chromedriver (``make install`` installs both when missing; Selenium Manager never downloads
a driver). One browser for the module, a few page loads: the test stays short."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from slowthink.inspect import problem_view, write_page
from slowthink.types import Trace
from tests.inspect.traces import HOSTILE, stage_beam_traces, step_beam_traces, synthetic_views

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[inspect]')"
)
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "no chromium/chromedriver on PATH: apt-get install -y chromium chromium-driver (make install does it as root)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--disable-extensions",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager, should it run: never reach the network
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


READY_JS = (
    "const n = performance.getEntriesByType('navigation')[0];"
    "return document.readyState === 'complete' && !!document.body && document.body.dataset.ready === '1'"
    " && !!n && n.loadEventEnd > 0;"
)


def open_page(driver, path: Path) -> None:
    """Load ``path`` and wait until its script has rendered (``body[data-ready]``) and the load event
    has fired: chromedriver's ``get`` may return before a large file:// page has run its script. On a
    page that never gets ready, the failure shows the state and the browser's console errors."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    try:
        WebDriverWait(driver, 60, poll_frequency=0.05).until(lambda d: d.execute_script(READY_JS))
    except TimeoutException:
        state = driver.execute_script(
            "return [location.href, document.readyState, document.body && document.body.dataset.ready]"
        )
        raise AssertionError(f"page never got ready: {state}; console: {driver.get_log('browser')}") from None


def errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def test_page_loads_highlights_the_chosen_path_and_expands_a_node(browser, tmp_path):
    from selenium.webdriver.common.by import By

    ps1, t1 = stage_beam_traces()
    ps2, t2 = step_beam_traces()
    views = [
        problem_view(t, p.to_dict(), {"correct": t.answer == p.answer}, "n=4")
        for p, t in zip(ps1 + ps2, t1 + t2)
    ]
    assert {v["correct"] for v in views} == {True, False}
    views.append(
        problem_view(Trace("boom", "step_beam", "", error="RuntimeError: boom"), grade={"correct": False})
    )
    page = write_page(views, tmp_path / "view.html")
    open_page(browser, page)
    assert errors(browser) == []
    assert browser.execute_script("return window.PWNED") is None  # model text never runs
    # the first problem (stage_beam) opens on its chosen path, highlighted
    chosen = browser.find_elements(By.CSS_SELECTOR, "#tree .node.chosen")
    assert [int(e.get_attribute("data-node")) for e in chosen] == t1[0].path
    head = chosen[1].find_element(By.CSS_SELECTOR, ".head")
    assert head.value_of_css_property("background-color") == "rgba(227, 246, 232, 1)"
    assert "judge" in head.text and "won" in head.text
    # a node off the path is collapsed; clicking it shows its full text and its judge decisions
    root = chosen[0]
    other = next(
        e
        for e in root.find_elements(By.CSS_SELECTOR, ":scope > .body > .kids > .node")
        if "chosen" not in e.get_attribute("class")
    )
    nid = int(other.get_attribute("data-node"))
    assert other.find_elements(By.CSS_SELECTOR, ".body") == []
    other.find_element(By.CSS_SELECTOR, ".head").click()
    assert other.find_element(By.CSS_SELECTOR, ".body > pre.text").text == t1[0].nodes[nid].text.strip()
    assert "lost to #" in other.find_element(By.CSS_SELECTOR, ".body").text
    # filters: wrong only
    browser.find_element(By.CSS_SELECTOR, "input[name=f][value=wrong]").click()
    shown = [e for e in browser.find_elements(By.CSS_SELECTOR, "#list > div") if e.is_displayed()]
    assert len(shown) == sum(v["correct"] is False for v in views)
    # a step_beam problem with hostile model text: shown as text, the page intact
    browser.find_element(By.CSS_SELECTOR, "input[name=f][value=all]").click()
    browser.find_elements(By.CSS_SELECTOR, "#list > div")[2].click()
    browser.find_element(By.XPATH, "//button[text()='expand all']").click()
    texts = [e.get_attribute("textContent") for e in browser.find_elements(By.CSS_SELECTOR, "#tree pre.text")]
    assert any(HOSTILE in t for t in texts)
    assert "rejected: near-copy of the previous step" in browser.find_element(By.ID, "tree").text
    browser.find_elements(By.CSS_SELECTOR, "#list > div")[-1].click()  # a failed problem: its error, no tree
    assert "error: RuntimeError: boom" in browser.find_element(By.ID, "main").text
    assert browser.execute_script("return window.PWNED") is None and errors(browser) == []
    shot = tmp_path / "viewer.png"
    browser.find_elements(By.CSS_SELECTOR, "#list > div")[0].click()
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("SLOWTHINK_VIEWER_PNG"):  # bench/RESULTS.md's screenshot
        shutil.copy(shot, os.environ["SLOWTHINK_VIEWER_PNG"])


def test_a_run_of_1000_problems_of_64_nodes_opens_in_under_2_s(browser, tmp_path):
    page = write_page(synthetic_views(1000, 64), tmp_path / "big.html")
    open_page(browser, page)
    nav = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];return [n.domInteractive, n.loadEventEnd];"
    )
    print(
        f"1000 x 64 nodes, {page.stat().st_size / 1e6:.1f} MB: DOM interactive {nav[0]:.0f} ms, "
        f"loaded and first tree rendered {nav[1]:.0f} ms"
    )
    assert nav[1] < 2000
    assert len(browser.find_elements("css selector", "#list > div")) == 1000 and errors(browser) == []
