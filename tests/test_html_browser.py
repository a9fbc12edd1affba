"""report.html rendered in a real headless Chromium: not blank, no console errors.

Needs the Debian package: ``apt-get install -y chromium`` (binary /usr/bin/chromium).
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from weightstats.api import fit_model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="needs /usr/bin/chromium: apt-get install -y chromium"),
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
# Chromium logs every message a page sends to the console as "...:CONSOLE(:|\()<line>] ...".
CONSOLE_RE = re.compile(r":CONSOLE[(:]\d+\)?\]\s*(.*)")


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def console_messages(page: Path, profile: Path) -> tuple[list[str], str]:
    """Load ``page``, return (console lines from the page, dumped DOM)."""
    proc = chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()], profile)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = [m.group(1) for m in map(CONSOLE_RE.search, proc.stderr.splitlines()) if m]
    found += [ln for ln in proc.stderr.splitlines() if "Uncaught" in ln and ln not in found]
    return found, proc.stdout


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    state = {
        "encoder.conv.weight": (0.1 * rng.standard_normal((16, 8, 3, 3))).astype(np.float32),
        "decoder.conv.weight": (0.1 * rng.laplace(size=(16, 8, 3, 3))).astype(np.float32),
        "decoder.fc.weight": (0.1 * rng.standard_t(4, size=(10, 100))).astype(np.float32),
    }
    rep = fit_model(state, ks_sample=300, ks_replicates=19)
    out = rep.save(tmp_path_factory.mktemp("html") / "rep", formats=("html",))
    return out / "report.html"


def test_console_check_detects_errors(tmp_path: Path) -> None:
    """The console check itself can fail: a broken page is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>undefinedFn();</script></body></html>")
    messages, _ = console_messages(bad, tmp_path / "profile")
    assert any("Uncaught" in m for m in messages), messages


def test_report_has_no_console_errors(report_html: Path, tmp_path: Path) -> None:
    messages, dom = console_messages(report_html, tmp_path / "profile")
    assert messages == []
    assert "fits best (BIC)" in dom
    assert dom.count("data:image/png;base64,") == 4


def test_report_screenshot_is_not_blank(report_html: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    proc = chromium([f"--screenshot={shot}", "--window-size=1280,2000", report_html.as_uri()],
                    tmp_path / "profile")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 10  # text, tables and figures, not a flat page
    assert (pixels < 128).mean() > 0.005  # dark pixels (text, lines) exist


def test_report_is_self_contained(report_html: Path) -> None:
    from PIL import Image

    html = report_html.read_text()
    assert "<script src" not in html  # the page's own inline script only
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing loaded from elsewhere
    assert "<style>" in html
    for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html):
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        img.load()
        assert img.size[0] > 100 and img.size[1] > 100


def run_in_page(page: Path, script: str, tmp_path: Path, width: int = 1200) -> str:
    """The value of ``script`` (a function body) run on ``page`` shown in a ``width`` px wide
    frame (headless Chromium's window is at least 500 px wide; a frame can be narrower), after
    the page's own script has set up its tables; returned through the host's data-result."""
    import html as _html

    host = tmp_path / "host.html"
    host.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="f" width="{width}" '
        f'height="900" style="border:0" srcdoc="{_html.escape(page.read_text())}"></iframe>'
        "<script>window.addEventListener('load', function () {"
        "var window_ = document.getElementById('f').contentWindow;"
        f"document.body.dataset.result = (function (window, document) {{ {script} }})"
        "(window_, window_.document);});</script></body></html>")
    proc = chromium(["--dump-dom", "--virtual-time-budget=10000", "--window-size=1280,1000",
                     host.as_uri()], tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<body[^>]*data-result="([^"]*)"', proc.stdout)
    assert found, proc.stdout[-2000:]
    return found.group(1)


def test_clicking_a_header_sorts_numbers_as_numbers(tmp_path: Path) -> None:
    """Numbers sort by value (text order would give -5, 10, 100, 9), blanks after them, and a
    second click reverses."""
    import pandas as pd

    from weightstats.report.html import page, table_html

    frame = pd.DataFrame({"layer": ["a", "b", "c", "d", "e"],
                          "x": [10.0, 9.0, float("nan"), -5.0, 100.0]})
    doc = tmp_path / "sort.html"
    doc.write_text(page("sort", [("t", table_html(frame, ("layer",), table_id="s"))]))
    script = """
      var table = document.getElementById("s"), th = table.tHead.rows[0].cells[1];
      function order() { return Array.prototype.map.call(table.tBodies[0].rows,
                                 function (r) { return r.cells[0].textContent; }).join(""); }
      th.querySelector("button").click(); var up = order();
      th.querySelector("button").click(); return up + "|" + order() + "|" +
                                                 th.getAttribute("aria-sort");
    """
    assert run_in_page(doc, script, tmp_path) == "dbaec|ceabd|descending"


def test_filter_box_hides_rows(report_html: Path, tmp_path: Path) -> None:
    script = """
      var input = document.querySelector('input[data-filter="layers"]');
      input.value = "decoder fc";
      input.dispatchEvent(new Event("input"));
      return Array.prototype.filter.call(document.getElementById("layers").tBodies[0].rows,
                                         function (r) { return !r.hidden; })
                  .map(function (r) { return r.cells[0].textContent; }).join(" ");
    """
    assert run_in_page(report_html, script, tmp_path) == "decoder.fc.weight"


def test_phone_width_scrolls_tables_and_keeps_figures_full_width(report_html: Path,
                                                                 tmp_path: Path) -> None:
    """At 420 px the page itself does not scroll sideways: wide tables scroll in their box,
    figures take the full width, and no number cell wraps onto two lines."""
    script = """
      var wrap = document.getElementById("layers").parentNode;
      var img = document.querySelector("figure img");
      var cells = document.querySelectorAll("#layers td");
      var tall = 0, h = cells[0].getBoundingClientRect().height;
      cells.forEach(function (c) { if (c.getBoundingClientRect().height > 1.5 * h) tall++; });
      return [document.documentElement.scrollWidth, window.innerWidth, wrap.scrollWidth,
              wrap.clientWidth, Math.round(img.getBoundingClientRect().width),
              document.body.clientWidth, tall].join(" ");
    """
    page_w, inner, table_w, box_w, img_w, body_w, tall = map(
        int, run_in_page(report_html, script, tmp_path, width=420).split())
    assert page_w <= inner  # nothing sticks out of the viewport
    assert table_w > box_w  # the table scrolls inside its box
    assert img_w >= body_w - 40  # figures full width (less the body's padding)
    assert tall == 0  # no cell wrapped


def test_full_size_link_opens_the_embedded_image(report_html: Path, tmp_path: Path) -> None:
    """A data: URI cannot be opened as a page; the link opens a blob URL of the same bytes."""
    script = """
      var opened = [];
      window.open = function (url) { opened.push(url); return {}; };
      var link = document.querySelector("figure a.full");
      var event = new window.MouseEvent("click", {bubbles: true, cancelable: true});
      var followed = link.dispatchEvent(event);
      return opened.length + " " + opened[0].slice(0, 5) + " " + followed;
    """
    assert run_in_page(report_html, script, tmp_path) == "1 blob: false"
