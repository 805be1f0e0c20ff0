"""`emonet report`: a folder of results of `emonet analyze` at a glance, as one table
(`index.csv`) and one page (`report.html`). Reads results only: no torch, no model."""

from emonet_cli.views.report.build import Report, report_results

__all__ = ["Report", "report_results"]
