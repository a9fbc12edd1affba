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

from weightstats.report.layer import LayerResult
from weightstats.report.model import ReportData, safe_spec, scrub_paths, source_identity
from weightstats.report.tables import ALL_FORMATS
from weightstats.report.text import family_label

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure


@dataclass
class ModelReport(ReportData):
    """All per-layer fits of one model (see :class:`ReportData`), saved with :meth:`save`."""

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
