"""Screenshot an HTML report in headless Chromium, e.g. for the README.

Usage::

    python scripts/screenshot_report.py reports/<run>/result.json docs/report.png
    python scripts/screenshot_report.py reports/<run>/report.html shot.png --width 1200 --height 1600
    python scripts/screenshot_report.py reports/<run>/result.json shot.png --through examples

A ``result.json`` is rendered to HTML first (the same renderer as ``robust report``). The page
is opened from disk with every request outside the file aborted. Uses Debian's Chromium
(``/usr/bin/chromium``, or the path in ``ROBUST_CHROMIUM``) through Playwright's Python driver,
which never downloads a browser of its own here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("ROBUST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def html_for(source: Path, workdir: Path) -> Path:
    """The HTML file to open: ``source`` itself, or the report rendered from a result JSON.

    Args:
        source: a ``report.html`` or a ``result.json``.
        workdir: where to write the rendered HTML when ``source`` is JSON.

    Returns:
        The path of an HTML report.
    """
    if source.suffix.lower() in (".html", ".htm"):
        return source
    import robust

    return robust.write_report(robust.load_result(source), workdir / "report.html")


def screenshot(html: Path, png: Path, width: int = 1200, height: int | None = 1600,
               through: str | None = None) -> tuple[int, list[str]]:
    """Render ``html`` at ``width`` CSS pixels and save a PNG of the top of the page.

    Args:
        html: the report to open (from disk).
        png: the output image.
        width: viewport width in CSS pixels.
        height: pixels to keep from the top; ``None`` keeps the full page.
        through: a section id; when given, keep the page down to the end of that section instead.

    Returns:
        The page's full height and the console errors and blocked requests seen while loading.
    """
    from playwright.sync_api import sync_playwright

    url = html.resolve().as_uri()
    problems: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url == url or route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"blocked request: {route.request.url}")
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height or 900}, device_scale_factor=1)
            context.route("**/*", guard)
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(url, wait_until="load")
            full = int(page.evaluate("document.documentElement.scrollHeight"))
            if through is not None:
                bottom = page.evaluate(
                    "id => { const e = document.getElementById(id);"
                    " return e ? e.getBoundingClientRect().bottom + window.scrollY : null; }", through)
                if bottom is None:
                    raise ValueError(f"the report has no section with id {through!r}")
                height = min(full, int(bottom) + 24)
            png.parent.mkdir(parents=True, exist_ok=True)
            if height is None or height >= full:
                page.screenshot(path=str(png), full_page=True)
            else:
                page.screenshot(path=str(png), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
        finally:
            browser.close()
    return full, problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a result.json or a report.html")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels (default 1200)")
    parser.add_argument("--height", type=int, default=1600, help="pixels kept from the top (default 1600)")
    parser.add_argument("--through", metavar="ID", help="keep the page down to the end of this section (e.g. examples)")
    parser.add_argument("--full-page", action="store_true", help="keep the whole page instead of the top --height")
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        parser.error(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set ROBUST_CHROMIUM)")
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            full, problems = screenshot(html_for(args.source, Path(tmp)), args.output, args.width,
                                        None if args.full_page else args.height, args.through)
        except ValueError as error:
            parser.error(str(error))
    for line in problems:
        print(line, file=sys.stderr)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB; page height {full}px)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
