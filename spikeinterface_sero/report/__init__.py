"""What a person reads: a page per cell, its detection view, the population view and an ``index.html`` summary
of a run, every one read from the ``serotonergic`` extension (``docs/report.md``)."""

from .cell_page import cell_thumbnail, plot_cell
from .detection import DetectorLines, plot_detection
from .figures import THUMBNAILS, cell_plot_name, detection_plot_name
from .pages import write_cell_reports
from .population import plot_population
from .reader import CellView, RunView, read_run
from .summary import REPORT_TABLE, write_summary_html
from .words import COLOURS, DEMO_BANNER, NO_GUARANTEE

__all__ = [
    "REPORT_TABLE",
    "THUMBNAILS",
    "COLOURS",
    "DEMO_BANNER",
    "NO_GUARANTEE",
    "write_cell_reports",
    "write_summary_html",
    "cell_plot_name",
    "detection_plot_name",
    "plot_cell",
    "cell_thumbnail",
    "plot_detection",
    "plot_population",
    "read_run",
    "RunView",
    "CellView",
    "DetectorLines",
]
