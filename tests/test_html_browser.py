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
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing loaded from elsewhere
    assert "<style>" in html
    for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html):
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        img.load()
        assert img.size[0] > 100 and img.size[1] > 100
