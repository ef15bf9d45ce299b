"""The HTML report in a real browser: it loads cleanly, shows every section and fetches nothing.

Runs Debian's Chromium (``/usr/bin/chromium``, or the path in ``ROBUST_CHROMIUM``) through
Playwright's Python driver; skipped when either is missing. Playwright never downloads a
browser here: it is pointed at the installed executable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import robust

CHROMIUM = os.environ.get("ROBUST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
BASE_SECTIONS = ["summary", "curves", "examples", "attacks", "checks", "environment"]
EXPECTED_SECTIONS = {
    "plain": BASE_SECTIONS,
    "defended": BASE_SECTIONS[:4] + ["defenses"] + BASE_SECTIONS[4:],
}


@dataclass
class PageLog:
    """What the browser reported while a page loaded.

    Attributes:
        url: the page's own file:// URL, the only URL it may request.
        console_errors: text of every console message of type ``error``.
        page_errors: uncaught page errors.
        requests: every request URL the browser made for the page.
        blocked: requests that were neither the page itself nor a data: URL (aborted).
    """

    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium, or a skip naming what is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set ROBUST_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Playwright driver is not installed (pip install playwright)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def open_report(browser: Any, path: Path) -> tuple[Any, PageLog]:
    """Open ``path`` from disk with every request outside it aborted and recorded.

    Args:
        browser: a Playwright ``Browser``.
        path: the HTML file to open.

    Returns:
        The loaded Playwright ``Page`` and the log of what happened while it loaded.
    """
    log = PageLog(url=path.resolve().as_uri())
    context = browser.new_context(viewport={"width": 1200, "height": 900}, service_workers="block")

    def guard(route: Any) -> None:
        url = route.request.url
        if url == log.url or url.startswith("data:"):
            route.continue_()
        else:
            log.blocked.append(url)
            route.abort()

    context.route("**/*", guard)
    context.on("request", lambda request: log.requests.append(request.url))
    page = context.new_page()
    page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.goto(log.url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, log


@pytest.fixture(scope="module")
def reports(browser: Any, zoo_cnn: robust.Classifier, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real reports on disk: the zoo CNN as it is, and behind JPEG with a naive run."""
    data = robust.load_dataset("mnist", n=64)
    out = tmp_path_factory.mktemp("reports")
    plain = robust.evaluate(zoo_cnn, data, ["fgsm", "pgd"], eps=0.3, checks=True)
    defended_model = robust.create_defense("jpeg", quality=50).wrap(zoo_cnn)
    defended = robust.evaluate(defended_model, data, ["fgsm", "pgd"], eps=0.3, naive=True)
    return {"plain": robust.write_report(plain, out / "plain" / "report.html"),
            "defended": robust.write_report(defended, out / "defended" / "report.html")}


@pytest.mark.parametrize("name", sorted(EXPECTED_SECTIONS))
def test_report_renders_in_chromium(name: str, browser: Any, reports: dict[str, Path]) -> None:
    page, log = open_report(browser, reports[name])
    try:
        assert not log.page_errors, f"page errors: {log.page_errors}"
        assert not log.console_errors, f"console errors: {log.console_errors}"
        assert not log.blocked, f"the report tried to fetch: {log.blocked}"
        strays = [u for u in log.requests if u != log.url and not u.startswith("data:")]
        assert not strays, f"requests outside the file: {strays}"
        assert log.url in log.requests

        ids = page.eval_on_selector_all("section[id]", "els => els.map(e => e.id)")
        assert ids == EXPECTED_SECTIONS[name]
        for section in ids:
            box = page.locator(f"section#{section}").bounding_box()
            assert page.locator(f"section#{section}").is_visible(), f"#{section} is hidden"
            assert box is not None and box["width"] > 0 and box["height"] > 0, f"#{section} has no size"

        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({alt: e.alt, src: e.src.slice(0, 22), complete: e.complete, w: e.naturalWidth}))")
        assert images, "the examples grid has no images"
        broken = [i for i in images if not (i["complete"] and i["w"] > 0)]
        assert not broken, f"images that did not load: {broken}"
        assert all(i["src"] == "data:image/png;base64," for i in images)

        figures = page.locator("figure > svg")
        assert figures.count() == 2, "expected the robustness curve and the histogram as inline SVG"
        for k in range(figures.count()):
            box = figures.nth(k).bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50, f"SVG figure {k} is not drawn: {box}"
        if name == "defended":
            assert page.locator("section#defenses table").count() == 2, "the defenses and the naive comparison"
        for width in (1200, 800):
            page.set_viewport_size({"width": width, "height": 900})
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
    finally:
        page.context.close()


def test_guard_catches_outside_requests(browser: Any, tmp_path: Path) -> None:
    """The request guard itself: a page that reaches out is caught, so a clean log means something."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.invalid/a.css"></head>'
                     '<body><img src="http://example.invalid/x.png"><img src="sibling.png"></body></html>')
    page, log = open_report(browser, leaky)
    page.context.close()
    assert sorted(log.blocked) == sorted(
        ["https://example.invalid/a.css", "http://example.invalid/x.png", (tmp_path / "sibling.png").as_uri()])
    assert log.console_errors, "aborted requests show up as console errors"
