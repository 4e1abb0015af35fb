"""Open a Snakemake HTML report in headless Chromium and save a screenshot of one of its tables.

    python scripts/report_screenshot.py results/test/report.html --table main --out shot.png

The report (``snakemake --report report.html``) is a single-page app without URLs for its views, so this
script writes a copy of it with a few lines of JavaScript appended that do what a reader's two clicks do:
open the category holding the table and show the table's page (``report/tables/<table>.html``: the
table and its plot). Chromium (Debian package ``chromium``) then renders it headless and writes the
screenshot. The report file itself is not changed.
Exit status 0 with the screenshot written; 2 when the report or Chromium is missing or the table is not
in the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

NAVIGATE = """
<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var want = %(suffix)s, category = null, path = null;
    Object.keys(categories).forEach(function (c) {
      Object.keys(categories[c]).forEach(function (s) {
        categories[c][s].forEach(function (p) { if (p.endsWith(want)) { category = c; path = p; } });
      });
    });
    if (path === null) { document.title = "TABLE NOT FOUND"; return; }
    app.showCategory(category);
    app.setView({content: "html", contentPath: results[path].data_uri, resultPath: path});
  }, 300);
});
</script>
"""


def chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(report: Path, table: str, out: Path, *, width: int = 1600, height: int = 1000,
               timeout: float = 120.0) -> None:
    """Render ``report`` showing ``table`` and write the PNG ``out`` (errors: FileNotFoundError, RuntimeError)."""
    if not report.is_file():
        raise FileNotFoundError(f"{report}: no such report (snakemake --report {report})")
    browser = chromium()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found ({', '.join(CHROMIUM_NAMES)}): apt-get install chromium")
    text = report.read_text()
    suffix = f"report/tables/{table}.html"
    if f'"{suffix}' not in text and f"/{suffix}\"" not in text:
        raise RuntimeError(f"{report}: no result {suffix} (is the table in the configuration's grid?)")
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        end = text.rfind("</body>")  # the page's own end tag (scripts inside the report contain the string too)
        if end < 0:
            raise RuntimeError(f"{report}: not an HTML report (no </body>)")
        page.write_text(text[:end] + NAVIGATE % {"suffix": json.dumps(suffix)} + text[end:])
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp}/profile", f"--window-size={width},{height}",
               "--virtual-time-budget=5000", f"--screenshot={out.resolve()}", page.as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not out.is_file():
        raise RuntimeError(f"chromium failed ({r.returncode}): {r.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path)
    p.add_argument("--table", default="main")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        screenshot(args.report, args.table, args.out)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"report_screenshot: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
