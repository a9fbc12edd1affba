"""``ModelReport``: the result of fitting a whole model, with saving and plotting.

The top of ``weightstats.report``: the data and tables live in ``model`` (``ReportData``), the
renderers (tables, figures, html) read those, the writer assembles the files, and this class
adds the two methods that need the renderers. The other names are re-exported for callers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from weightstats.report.layer import LayerResult
from weightstats.report.model import ReportData, safe_spec, scrub_paths, source_identity
from weightstats.report.tables import ALL_FORMATS
from weightstats.report.text import family_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure


# Rows of the per-layer table a notebook shows; the saved files hold every layer.
NOTEBOOK_ROWS = 40


@dataclass(repr=False)
class ModelReport(ReportData):
    """All per-layer fits of one model (see :class:`ReportData`), saved with :meth:`save`."""

    def headline(self) -> str:
        """``"ModelReport digits-vae: 12 layers (12 fitted), 123,456 weights"``."""
        s = self.summary()
        return (f"ModelReport {self.model}: {s.n_layers} layers ({s.n_fitted} fitted), "
                f"{s.n_weights:,} weights")

    def __repr__(self) -> str:
        # A few lines, never the layers' histograms (a dataclass repr ran to 185,000 characters).
        s = self.summary()
        counts = s.table[["label", "layers_bic", "weight_share_bic", "layers_aic"]].rename(
            columns={"label": "family"})
        with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 100):
            return f"{self.headline()}\n{s.text}\n{counts.to_string(index=False)}"

    def _repr_html_(self) -> str:
        from html import escape

        from weightstats.report.tables import display_wide

        s = self.summary()
        counts = s.table.drop(columns=["family"]).rename(columns={"label": "family"})
        wide = display_wide(self)
        more = len(wide) - NOTEBOOK_ROWS
        parts = [f"<p><b>{escape(self.headline())}</b></p>", f"<p>{escape(s.text)}</p>",
                 counts.to_html(index=False, float_format="{:.3f}".format),
                 wide.head(NOTEBOOK_ROWS).to_html(index=False, na_rep="")]
        if more > 0:
            parts.append(f"<p>... and {more} more layers: <code>report.wide()</code> has them "
                         "all.</p>")
        return "\n".join(parts)

    def plot_layer(self, name: str) -> Figure:
        """Histogram (log density, fitted pdfs overlaid) and QQ plot of one layer."""
        # Imported here, not above: fitting a model must not load matplotlib (a second or so)
        # unless it draws. The writer and the figures never import this module.
        from weightstats.report.figures import layer_figure

        return layer_figure(self, self.layer(name))

    def save(
        self,
        directory: str | os.PathLike[str],
        formats: tuple[str, ...] | list[str] = ALL_FORMATS,
        *,
        plots: bool = True,
    ) -> Path:
        """Write the report atomically into ``directory`` and return its path.

        Parameters
        ----------
        directory : str or os.PathLike
            Target directory; replaced only once the new report is complete.
        formats : sequence of str
            Any of "csv", "md", "json", "html", "png".
        plots : bool
            False skips all figures (PNG files and the HTML page's images).
        """
        from weightstats.report.writer import write_report

        return write_report(self, directory, formats, plots=plots)


__all__ = ["ALL_FORMATS", "LayerResult", "ModelReport", "ReportData", "family_label", "safe_spec",
           "scrub_paths", "source_identity"]
