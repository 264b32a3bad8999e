"""The fleet page in a real browser: headless Chromium (Debian's `chromium`, scripts/setup.sh installs it) loads
the page written by `inv report --from DIR` from saved documents; the DOM has the key figures, the browser
reports no console message, exception or log entry (CSP violations, failed loads), light and dark schemes
differ, printing works. Screenshots are kept under the test's tmp dir and, with RKDEPLOY_TEST_ARTEFACTS=DIR,
copied there. Without chromium: a failure under CI (CI=true), a skip with the reason elsewhere."""
import os
import shutil
from pathlib import Path

import pytest

from rkdeploy import fleet_page
from tests import fleet_docs as fd
from tests.browser import Browser, chromium
from tests.rockchip_files import in_ci


@pytest.fixture(scope="module")
def browser():
    binary = chromium()
    if not binary:
        reason = "chromium is not installed (scripts/setup.sh installs Debian's chromium as root)"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    with Browser(binary) as b:
        yield b


def keep(path: Path) -> None:
    target = os.environ.get("RKDEPLOY_TEST_ARTEFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def test_the_page_renders_in_chromium_with_its_figures_and_no_console_errors(browser, tmp_path):
    paths = fd.saved_fleet(tmp_path / "docs")
    fd.saved_history(tmp_path / "state" / "history", 3)
    page = tmp_path / "fleet.html"
    fleet_page.write(page, fleet_page.build(fleet_page.documents(
        from_dir=tmp_path / "docs", history_dir=tmp_path / "state" / "history", baseline=paths["baseline"])))
    probes = {"charts": "document.querySelectorAll('svg.chart').length",
              "chart_text": "Array.from(document.querySelectorAll('svg.chart text')).map(t => t.textContent).join('|')",
              "background": "getComputedStyle(document.body).backgroundColor",
              "chart_ink": "getComputedStyle(document.querySelector('svg.chart text')).fill",
              "body_ink": "getComputedStyle(document.body).color",
              "mismatch_cell": "getComputedStyle(document.querySelector('table.matrix td.bad')).backgroundColor",
              "regression_row": "document.querySelector('table.perf tr.regression th').textContent",
              "resources": "performance.getEntriesByType('resource').length"}
    light = browser.render(page.as_uri(), probes, pdf=True)
    dark = browser.render(page.as_uri(), probes, dark=True)
    for name, shot in (("fleet-report-light.png", light.screenshot), ("fleet-report-dark.png", dark.screenshot)):
        (tmp_path / name).write_bytes(shot)
        keep(tmp_path / name)
    assert light.console == [] and dark.console == [], light.console + dark.console
    text = light.text
    for figure in ("cam-01", "cam-02", "rk3588", "2.3.2", "1.6.0", fd.MISMATCH_REASON,
                   "fix: inv provision --host cam-02 --bundle 2.3.2", "0f1e2d3c4b5a", "REGRESSION +29.2% (12.0 → 15.5 ms)",
                   "15.5", "7.75", "0_1_2"):
        assert figure in text, figure
    values = light.values
    assert values["charts"] == 4 and values["resources"] == 0                 # nothing fetched
    assert "15.5 ms" in values["chart_text"] and "detector: latency per board" in values["chart_text"]
    assert "cam-01 · 0_1_2 · 3 thr" in values["chart_text"]
    assert values["regression_row"] == "cam-02"
    assert values["chart_ink"] == values["body_ink"] and dark.values["chart_ink"] == dark.values["body_ink"]
    assert values["background"] != dark.values["background"] and values["body_ink"] != dark.values["body_ink"]
    assert values["mismatch_cell"] != "rgba(0, 0, 0, 0)"
    assert light.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(light.screenshot) > 50_000
    assert light.pdf.startswith(b"%PDF")


def test_the_browser_check_sees_console_errors_and_blocked_loads(browser, tmp_path):
    """The control: the same check does catch what it must catch."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><body>x<script>console.error('boom'); nosuch()</script>"
                   "<img src='file:///nonexistent.png'></body>")
    rendered = browser.render(bad.as_uri())
    seen = {(m["source"], m["text"].split("\n")[0]) for m in rendered.console}
    assert ("console", "boom") in seen
    assert any(source == "exception" and "nosuch" in message for source, message in seen)
    assert any(source == "network" for source, _ in seen)
    hostile = tmp_path / "hostile.html"
    hostile.write_text(fleet_page.build(fleet_page.Documents()).replace(
        "</body>", "<script>console.log(1)</script><img src='http://127.0.0.1:9/x'></body>"))
    rendered = browser.render(hostile.as_uri())
    assert {m["source"] for m in rendered.console} == {"security"}          # the page's CSP blocks both
    assert len(rendered.console) == 2
