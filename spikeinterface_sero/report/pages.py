"""Writing the figures of one classified analyzer: a page per cell, its detection view and their thumbnails,
and the run's words (rule, interval, guarantee, demo) beside them for the summary page."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..files import atomic_path
from .cell_page import cell_thumbnail, plot_cell
from .detection import DetectorLines, detection_params, detection_thumbnail, plot_detection
from .figures import THUMBNAILS, cell_plot_name, detection_plot_name, save_png, stamp
from .reader import RunView, read_run
from .words import plain

__all__ = ["write_cell_reports", "RUNS", "read_run_words"]

#: the subfolder of a report holding each recording's run words (JSON), read by the summary page
RUNS = "views/runs"


def _detection_source(analyzer):
    """The detector's lines of the analyzer's recording when this package's detector found its spikes (the
    sorting's ``sero_detection`` annotation) and the recording is at hand; None otherwise (no detection view)."""
    sorting = analyzer.sorting
    if not analyzer.has_recording() or "sero_detection" not in sorting.get_annotation_keys():
        return None
    settings = sorting.get_annotation("sero_detection")
    return DetectorLines(analyzer.recording, detection_params(settings)) if settings else None


def _write_run_words(report_dir: Path, file, run: RunView) -> None:
    key = hashlib.sha1(plain(file).encode("utf-8")).hexdigest()[:12]
    folder = report_dir / RUNS
    folder.mkdir(parents=True, exist_ok=True)
    words = dict(file=plain(file), rule=run.rule, guarantee=run.guarantee, demo=run.demo, model=run.model)
    with atomic_path(folder / f"{key}.json") as temporary:
        temporary.write_text(json.dumps(words, indent=1), encoding="utf-8")


def read_run_words(report_dir) -> list[dict]:
    """The run words every recording of a report left (:func:`write_cell_reports`), unreadable ones skipped."""
    found = []
    for path in sorted((Path(report_dir) / RUNS).glob("*.json")):
        try:
            words = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(words, dict):
            found.append({key: plain(words.get(key)) for key in ("file", "rule", "guarantee", "model")})
            found[-1]["demo"] = words.get("demo") is True
    return found


def _spike_samples(analyzer, unit_id, n_segments: int) -> list:
    """A unit's triggers per segment of the recording (SpikeInterface's NumpySorting drops trailing segments
    without spikes)."""
    sorting = analyzer.sorting
    return [
        sorting.get_unit_spike_train(unit_id, segment_index=segment)
        if segment < sorting.get_num_segments()
        else np.zeros(0, np.int64)
        for segment in range(n_segments)
    ]


def write_cell_reports(analyzer, report_dir, *, file=None, dpi: int = 100, detection: bool = True) -> list[Path]:
    """One PNG per cell (unit) of a classified analyzer in ``report_dir``, and its detection view; returns
    the paths written.

    Every figure reads the ``serotonergic`` extension (the snippets the model saw, its table and provenance):
    any analyzer the extension classified can be reported, whatever its sampling rate or waveform window.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    report_dir : str or Path
        The folder (made when missing).
    file : str or None, default: None
        The recording the analyzer comes from (shown on the plot and part of the PNG names; pass the same
        string as in the results table so that :func:`write_summary_html` links to the plots).
    dpi : int, default: 100
        Resolution of the PNGs.
    detection : bool, default: True
        Also draw each cell's detection view (:func:`plot_detection`, ``<cell>_detection.png``), a cell
        without spikes included, when the spikes come from this package's detector and the analyzer has its
        recording. The detector's baseline is computed once per segment for all cells.

    Returns
    -------
    list of Path
        The cell PNGs, each followed by its detection view when one was drawn.
    """
    report_dir = Path(report_dir)
    (report_dir / THUMBNAILS).mkdir(parents=True, exist_ok=True)
    run, cells = read_run(analyzer, file=file)
    _write_run_words(report_dir, file, run)
    lines = _detection_source(analyzer) if detection else None
    main_channels = analyzer.sorting.get_property("main_channel_id")
    paths = []
    for i, cell in enumerate(cells):
        path = save_png(plot_cell(cell, run, dpi=dpi), report_dir / cell_plot_name(cell.cell_id, file, cell.channel))
        save_png(cell_thumbnail(cell, run), report_dir / THUMBNAILS / path.name)
        paths.append(path)
        if lines is None:
            continue
        samples = _spike_samples(analyzer, cell.unit_id, lines.recording.get_num_segments())
        channel_id = main_channels[i] if main_channels is not None else cell.unit_id
        figure = plot_detection(
            lines.recording,
            samples,
            lines.params,
            channel_id=channel_id,
            title=cell.cell_id,
            n_dropped_edge=cell.n_dropped,
            dpi=dpi,
            lines=lines,
        )
        stamp(figure, run)
        path = save_png(figure, report_dir / detection_plot_name(cell.cell_id, file, cell.channel))
        thumbnail = detection_thumbnail(lines, samples, channel_id)
        stamp(thumbnail, run, small=True)
        save_png(thumbnail, report_dir / THUMBNAILS / path.name)
        paths.append(path)
    return paths
