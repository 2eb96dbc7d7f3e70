"""A report in a real browser, as a reader opens and prints it: headless Chromium (Debian's,
driven by Selenium with both paths given, so nothing is downloaded; see
../shared/recipes/browser-notebook-test.md) opens the file at 1280 px, nothing is wider than
the window, the sentences written from the numbers are in the text, a screenshot is taken;
then with print media at the width of an A4 page (less its margins) nothing sticks out, and
Chrome's own print to PDF gives A4 pages.

Without chromium the test skips only on a developer's machine (not root, CI unset); under CI
or as root it fails and names the install command, as the notebook browser test does.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from support.browser import chromium

from mqttsim import Scenario, run
from mqttsim.lab import report, sweep
from mqttsim.lab.report_text import outcome_sentences

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "data" / "scenarios"
A4_WIDTH_MM, MARGIN_MM = 210, 12  # the report's @page margin: 14mm 12mm
PX_PER_MM = 96 / 25.4
# Everything laid out wider than the page, and what it is (for the failure message).
OVERFLOW_JS = """
const limit = arguments[0];
const wide = [];
for (const e of document.body.querySelectorAll('*')) {
  const r = e.getBoundingClientRect();
  if (r.width > 0 && r.right > limit + 0.5) wide.push(e.tagName + ' ' + Math.round(r.right)
      + ' ' + (e.innerText || e.getAttribute('alt') || '').slice(0, 40));
}
return {scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth,
        inner: window.innerWidth, wide: wide.slice(0, 5),
        images: Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)};
"""


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile", "--hide-scrollbars",
                      "--window-size=1280,900")
    try:
        yield driver
    finally:
        driver.quit()


def _reports(tmp_path: Path) -> list[tuple[Path, list[str]]]:
    """A run report and a sweep report, each with sentences it must contain."""
    intermittent = Scenario.load(SCENARIOS / "intermittent.toml").with_(duration=100)
    res = run(intermittent, seed=1)
    said = outcome_sentences(res.summary())
    loss = res.summary().loc[0]
    assert said[0] == (f"QoS 0 delivered {int(loss['delivered'])} of {int(loss['expected'])} "
                       f"messages; {int(loss['lost'])} were lost.")  # from the numbers
    run_html = report(res, tmp_path / "run.html")
    sensor = Scenario.load(SCENARIOS / "seed-sensor.toml")
    result = sweep(sensor, {"link.latency": [0.001, 0.01], "qos": [1]}, seeds=2,
                   workers=1, cache_dir=False, progress=False)
    sweep_html = report(result, tmp_path / "sweep.html")
    return [(run_html, said + ["Half of the messages arrived within 40 ms at every QoS."]),
            (sweep_html, ["QoS 1 delivered every message exactly once at every link latency.",
                          "Every seed gave the same result, so there is no band."])]


def test_reports_fit_the_screen_and_an_a4_page_and_say_what_the_numbers_say(
        browser, tmp_path) -> None:
    page_px = (A4_WIDTH_MM - 2 * MARGIN_MM) * PX_PER_MM
    for path, sentences in _reports(tmp_path):
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "screen"})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        browser.set_window_size(1280, 900)
        browser.get(path.as_uri())
        screen = browser.execute_script(OVERFLOW_JS, browser.execute_script(
            "return window.innerWidth"))
        assert screen["inner"] == 1280
        assert screen["body"] <= screen["inner"] and screen["scroll"] <= screen["inner"], \
            screen["wide"]
        assert screen["images"] and all(screen["images"])  # every figure decoded
        text = browser.find_element("tag name", "body").text
        for sentence in sentences:
            assert sentence in text, sentence
        assert "± 0" not in text and not re.search(r"\de[+-]\d", text)
        browser.save_screenshot(str(path.with_suffix(".png")))

        # Printed: the layout at the width of an A4 page inside its margins.
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": int(page_px), "height": 1000, "deviceScaleFactor": 1, "mobile": False})
        printed = browser.execute_script(OVERFLOW_JS, int(page_px))
        assert printed["scroll"] <= int(page_px), printed["wide"]
        assert not printed["wide"], printed["wide"]
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {
            "paperWidth": A4_WIDTH_MM / 25.4, "paperHeight": 297 / 25.4,
            "preferCSSPageSize": True, "printBackground": True})["data"])
        assert pdf.startswith(b"%PDF")
        boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
        assert boxes and all(abs(float(w) - 595.3) < 1.5 and abs(float(h) - 841.9) < 1.5
                             for w, h in boxes), boxes[:3]  # A4 in points
        (path.with_suffix(".pdf")).write_bytes(pdf)
