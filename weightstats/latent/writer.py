"""Writing a latent report folder atomically: CSV, Markdown, JSON, HTML and PNG figures."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from weightstats.report.html import page, table_html
from weightstats.report.tables import check_outputs
from weightstats.report.text import to_csv_text, to_json_text
from weightstats.report.writer import write_folder
from weightstats.text import html_text


def _html(rep: Any, pngs: dict[str, bytes]) -> str:
    from weightstats.latent.figures import CAPTIONS
    from weightstats.latent.text import TEST_LABELS

    summary = rep.summary()
    info, sentence = summary.info, summary.text
    sections = [("Summary", f"<p>Spec <code>{html_text(rep.spec)}</code> — "
                            f"{html_text(rep.description)}. Data: {html_text(rep.data)}. "
                            f"{rep.n_rows} rows × {rep.samples} draws per row.</p>")]
    sections.append((f"Per {rep.unit}", table_html(rep.table(), text_cols=(
        "best_z", "fit_z", "best_mu", "fit_mu"))))
    tests = rep.tests()
    if len(tests):
        tests = tests.assign(test=[TEST_LABELS.get(t, t) for t in tests["test"]])
        sections.append(("The whole latent", table_html(tests, text_cols=(
            "test", "dims", "null", "method"))))
    mix = rep.multivariate.get("mixture")
    if mix:
        frame = pd.DataFrame({"K": range(1, len(mix["bic"]) + 1), "BIC": mix["bic"]})
        sections.append(("Gaussian mixtures (BIC)", f"<p>{html_text(mix['method'])}; best K = "
                         f"{mix['k_best']}.</p>" + table_html(frame)))
    if rep.scaling:
        s = rep.scaling
        sections.append(("Per-channel scale", table_html(pd.DataFrame(s["per_channel"]))
                         + f"<p>Implied scaling factor 1/std = "
                           f"{s['implied_scaling_factor']:.5g}; config: "
                           f"{html_text(str(s['config']))}.</p>"))
    fams = rep.family_table()
    if len(fams):
        sections.append(("Family fits of the active dimensions",
                         "<details><summary>Show all fits</summary>"
                         + table_html(fams, text_cols=("values", "family")) + "</details>"))
    if pngs:
        figs = "".join(
            f'<figure><img alt="{html_text(n)}" src="data:image/png;base64,'
            f'{base64.b64encode(d).decode("ascii")}"><figcaption>{html_text(n)}: '
            f"{html_text(CAPTIONS[n])}</figcaption></figure>" for n, d in pngs.items())
        sections.append(("Figures", figs))
    from weightstats.latent.dims import KL_METHOD

    reading = info["reading"] + [f"KL: {KL_METHOD.format(c=2000, m=4000)}."] + rep.notes
    sections.append(("How to read this", "<ul class=\"note\">" + "".join(
        f"<li>{html_text(t)}</li>" for t in reading) + "</ul>"))
    return page(f"weightstats latent: {rep.model}", sections, sentence)


def write_latent_report(rep: Any, directory: str | os.PathLike[str],
                        formats: Sequence[str], *, plots: bool = True) -> Path:
    """Render every requested file, then swap the folder into place (``write_folder``)."""
    from weightstats.latent.figures import render_all
    from weightstats.latent.text import markdown_page

    fmts = check_outputs(list(formats), plots=plots)
    texts = [
        ("csv", "dimensions.csv", lambda: to_csv_text(rep.table())),
        ("csv", "tests.csv", lambda: to_csv_text(rep.tests())),
        ("csv", "families.csv", lambda: to_csv_text(rep.family_table())),
        *([("csv", "scaling.csv", lambda: to_csv_text(pd.DataFrame(rep.scaling["per_channel"])))]
          if rep.scaling else []),
        ("md", "summary.md", lambda: markdown_page(rep)),
        ("json", "report.json", lambda: to_json_text(rep.to_dict())),
    ]
    return write_folder(directory, fmts, texts, (lambda: render_all(rep)) if plots else None,
                        lambda pngs: _html(rep, pngs))
