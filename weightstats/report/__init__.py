"""Reports: per-model results, tables, figures and the self-contained HTML page."""

from weightstats.report.atomic import atomic_directory
from weightstats.report.model_report import LayerResult, ModelReport, family_label

__all__ = ["LayerResult", "ModelReport", "atomic_directory", "family_label"]
