"""report.html as a reader meets it: opened from disk (no server) in a real headless browser (Debian's chromium,
driven by playwright), no script error, every surface view drew something (coloured pixels in its WebGL canvas), and
a screenshot of the page kept. Skips, saying why, where no browser or no playwright is installed (.ci/run installs
chromium)."""
import io
import shutil

import numpy as np
import pytest

from figures.report.page import claims_and_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip(f"no headless browser installed ({', '.join(BROWSERS)}); .ci/run installs Debian's chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    return found


def _coloured_fraction(png: bytes) -> float:
    """Share of pixels with a saturated colour (max - min channel > 60): the surface's colour scale, not the grey
    axes and grid of an empty scene."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return float(np.mean(rgb.max(axis=2) - rgb.min(axis=2) > 60))


def test_report_opens_without_script_errors_and_every_surface_draws(micro, tmp_path):
    executable = _browser()
    from playwright.sync_api import Error, sync_playwright

    report = claims_and_report(micro, micro / "figures", tmp_path, "micro")[-1]
    errors: list[str] = []
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)  # headless, a fresh profile
        except Error as e:
            pytest.skip(f"{executable} does not start headless here: {str(e).splitlines()[0]}")
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("console", lambda m: errors.append(f"console error: {m.text}") if m.type == "error" else None)
        page.goto(report.as_uri(), timeout=300_000)
        views = page.locator("div.js-plotly-plot")
        n = views.count()
        assert n == 15  # 5 methods x 3 LR steps of the micro study
        page.wait_for_function(f"document.querySelectorAll('div.js-plotly-plot canvas').length >= {n}",
                               timeout=120_000)
        blank = []
        for i in range(n):
            view = views.nth(i)
            view.scroll_into_view_if_needed()
            if _coloured_fraction(view.screenshot()) < 0.01:
                blank.append(view.get_attribute("id"))
        assert page.locator("#toy").is_visible() and page.locator("#claims tr").count() > 10
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert not errors, errors
    assert not blank, f"surface views that drew nothing: {blank}"
    print(f"screenshot: {tmp_path / 'report.png'}")
