"""Check what a person sees in a run directory's reports, in headless Chromium.

Usage: python tools/check_reports.py RUN_DIR [--shots DIR]

Every ``report.html`` under RUN_DIR, and its ``index.html`` (written by ``resnets study all``),
is opened in headless Chromium twice:

1. a copy of the page with a small script added (and a ``<base>`` to the page's folder) is loaded
   and its DOM dumped (``--dump-dom``): the script records, once the page has loaded, every
   image's decoded size (``naturalWidth``), every link and the page's size;
2. the page itself is photographed (``--screenshot``, the full height of the page).

A page passes when every ``<img>`` decoded (naturalWidth > 0), the page is not wider than the
window (nothing cut off on the right), its screenshot is not blank (its pixels are not all one
colour), and every link to a local file (the index's links to the reports) resolves. The
screenshots are kept in ``--shots`` (default RUN_DIR/screenshots) to look at. Exit status 0 when
every page passes, 1 when one fails (one line per problem), 2 when RUN_DIR holds no page or no
Chromium is found (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image

WIDTH = 1280  # the window's width, in CSS pixels
MAX_HEIGHT = 16000  # the tallest screenshot taken
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")

_PROBE = """<script>
window.addEventListener("load", function () {
  var out = document.createElement("pre");
  out.id = "report-check";
  out.textContent = JSON.stringify({
    images: Array.from(document.images).map(function (i) {
      return {alt: i.alt, width: i.naturalWidth, height: i.naturalHeight};
    }),
    links: Array.from(document.links).map(function (a) { return a.href; }),
    scrollWidth: document.documentElement.scrollWidth,
    scrollHeight: document.documentElement.scrollHeight,
    textLength: document.body.innerText.length
  });
  document.body.appendChild(out);
});
</script>"""


@dataclass
class PageCheck:
    """What was found on one page: its problems (empty when it passes) and its screenshot."""

    page: Path
    screenshot: Path | None = None
    images: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def pages(run_dir: Path) -> list[Path]:
    """The index (when there is one), then every report under ``run_dir``."""
    index = [run_dir / "index.html"] if (run_dir / "index.html").is_file() else []
    return index + sorted(p for p in run_dir.rglob("report.html") if p.is_file())


def _chromium(browser: str, profile: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def probe(browser: str, page: Path, *, work: Path) -> dict[str, object]:
    """Load a copy of ``page`` with the recording script; what the script recorded."""
    text = page.read_text(encoding="utf-8")
    base = f"<base href=\"{page.parent.resolve().as_uri()}/\">"
    text = re.sub(r"<head>", "<head>" + base, text, count=1) if "<head>" in text else base + text
    text = text.replace("</body>", _PROBE + "</body>") if "</body>" in text else text + _PROBE
    copy = work / f"probe-{abs(hash(str(page)))}.html"
    copy.write_text(text, encoding="utf-8")
    done = _chromium(browser, work / "profile", f"--window-size={WIDTH},1000", "--virtual-time-budget=10000",
                     "--dump-dom", copy.as_uri())  # laid out at the screenshot's width
    found = re.search(r'<pre id="report-check">(.*?)</pre>', done.stdout, flags=re.S)
    if found is None:
        raise RuntimeError(f"{page}: the page did not finish loading in Chromium ({done.stderr.strip()[-300:]})")
    return json.loads(html.unescape(found.group(1)))


def blank(png: Path) -> bool:
    """Every pixel of the screenshot is one colour."""
    with Image.open(png) as im:
        return all(lo == hi for lo, hi in im.convert("RGB").getextrema())


def check_page(browser: str, page: Path, *, shots: Path, work: Path) -> PageCheck:
    result = PageCheck(page=page)
    seen = probe(browser, page, work=work)
    images = list(seen["images"])  # type: ignore[call-overload]
    result.images = len(images)
    for i, img in enumerate(images, 1):
        if int(img["width"]) <= 0:
            result.problems.append(f"image {i} ({img['alt'] or 'no alt text'}) did not decode (naturalWidth 0)")
    if int(seen["scrollWidth"]) > WIDTH:  # type: ignore[call-overload]
        result.problems.append(f"the page is {seen['scrollWidth']} px wide in a {WIDTH} px window: content is cut off")
    if int(seen["textLength"]) == 0:  # type: ignore[call-overload]
        result.problems.append("the page shows no text")
    links = [str(h) for h in seen["links"]]  # type: ignore[attr-defined]
    result.links = len(links)
    for href in links:
        url = urlparse(href)
        if url.scheme == "file" and not Path(unquote(url.path)).is_file():
            result.problems.append(f"link {href} does not resolve to a file")
    height = min(MAX_HEIGHT, max(600, int(seen["scrollHeight"])))  # type: ignore[call-overload]
    shots.mkdir(parents=True, exist_ok=True)
    name = "index" if page.name == "index.html" else page.parent.name
    shot = shots / f"{name}.png"
    _chromium(browser, work / "profile", f"--window-size={WIDTH},{height}", f"--screenshot={shot}", page.resolve().as_uri())
    if not shot.is_file():
        result.problems.append("Chromium wrote no screenshot")
    else:
        result.screenshot = shot
        if blank(shot):
            result.problems.append(f"the screenshot {shot} is blank (one colour)")
    return result


def check_run(run_dir: Path, *, shots: Path | None = None, browser: str | None = None) -> list[PageCheck]:
    """Check every page of ``run_dir`` (see the module's docstring)."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium on PATH; install it (apt-get install chromium) and rerun")
    found = pages(run_dir)
    if not found:
        raise FileNotFoundError(f"{run_dir} holds no index.html or report.html; give a study's run directory")
    with tempfile.TemporaryDirectory(prefix="check-reports-") as tmp:
        return [check_page(browser, page, shots=shots or run_dir / "screenshots", work=Path(tmp)) for page in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a study's run directory, or that of `resnets study all`")
    parser.add_argument("--shots", type=Path, default=None, help="where the screenshots go (default RUN_DIR/screenshots)")
    args = parser.parse_args(argv)
    try:
        checks = check_run(args.run_dir, shots=args.shots)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"check_reports: error: {exc}", file=sys.stderr)
        return 2
    for c in checks:
        status = "ok" if not c.problems else "FAILED"
        print(f"{status}: {c.page} ({c.images} images, {c.links} links; screenshot {c.screenshot})")
        for problem in c.problems:
            print(f"  {c.page}: {problem}")
    return 1 if any(c.problems for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
