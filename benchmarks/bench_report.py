"""The report's cost: a cell's figures with and without its detection view, and how often the detector's
baseline pass runs for them.

    python benchmarks/bench_report.py [--seconds 300] [--channels 2]

The recording is a synthetic 40 kHz trace per channel (``testing.long_synthetic_trace``) written as an
int16 .abf file; it is detected and classified with the classical criteria (no model needed), then
``report.write_cell_reports`` is timed with ``detection=False`` and ``detection=True``. The baseline passes
are counted by wrapping the detector's ``_pass_baseline``; the report computes them once per segment
(``report.DetectorLines``), shared by every cell, its detection view and its thumbnail.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--channels", type=int, default=2)
    args = parser.parse_args(argv)

    import sys

    from spikeinterface_sero import abf_to_analyzer
    from spikeinterface_sero.constants import SAMPLING_FREQUENCY
    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.detection import detection_trace
    from spikeinterface_sero.report import write_cell_reports
    from spikeinterface_sero.testing import long_synthetic_trace

    calls = []
    detector = sys.modules[detection_trace.__module__]  # the module of the detector's baseline pass
    original = detector._pass_baseline

    def counted(*arguments, **keywords):
        start = time.perf_counter()
        result = original(*arguments, **keywords)
        calls.append(time.perf_counter() - start)
        return result

    detector._pass_baseline = counted
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        traces = np.stack([long_synthetic_trace(args.seconds, seed=c)[0] for c in range(args.channels)], axis=1)
        path = write_abf(folder / "long.abf", traces, SAMPLING_FREQUENCY)
        analyzer = abf_to_analyzer(path)
        analyzer.compute("serotonergic", method="criteria")
        calls.clear()
        figures = {}
        for detection in (False, True):
            start = time.perf_counter()
            write_cell_reports(analyzer, folder / f"report_{detection}", file=str(path), detection=detection)
            figures[detection] = time.perf_counter() - start
    result = dict(
        seconds=args.seconds,
        channels=args.channels,
        figures_without_detection_s=round(figures[False], 2),
        figures_with_detection_s=round(figures[True], 2),
        baseline_passes=len(calls),
        baseline_passes_s=round(sum(calls), 2),
        segments=analyzer.get_num_segments(),
    )
    print(result)
    return result


if __name__ == "__main__":
    main()
