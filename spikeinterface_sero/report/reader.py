"""The one place the report reads a classified analyzer: the ``serotonergic`` extension's table, spikes,
the snippets the model saw, its provenance and the rule's wording. Nothing here re-extracts or recomputes a
decision."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..decision import consensus_of, describe_rule
from ..extension import get_serotonergic_extension
from ..features import DEFAULT_MAX_CV, DEFAULT_MAX_RATE_HZ, DEFAULT_MIN_UDI_MS
from .words import NO_GUARANTEE, plain

__all__ = ["RunView", "CellView", "read_run", "run_words"]


@dataclass
class RunView:
    """What one classification run says about itself: its method, model, rule (with its interval) and guarantee."""

    method: str = "cnn"
    demo: bool = False
    model: str = ""
    kernels: list = field(default_factory=list)
    rule: str = ""
    guarantee: str = NO_GUARANTEE
    criteria: dict = field(default_factory=dict)
    calibration: dict | None = None


@dataclass
class CellView:
    """One unit as the report shows it, every value read from the extension or the sorting."""

    unit_id: object
    cell_id: str
    channel: str
    file: str | None
    row: pd.Series
    waveforms: np.ndarray  # (n, 160) pA: the snippets the model was given
    p_ser: np.ndarray  # the raw per-spike ensemble outputs (not calibrated)
    times: np.ndarray  # every detected spike, sweeps laid end to end (s)
    isi: np.ndarray  # intervals within sweeps (s)
    durations: list
    offsets: np.ndarray
    n_dropped: int | None
    # the classified spikes' consensus (n, 2), rows aligned with p_ser, and their times from the start of the
    # recording (s, the time base of sero_safe_after_s and the stable stretch)
    consensus: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    spike_times_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _criteria(params: dict) -> dict:
    defaults = dict(min_udi_ms=DEFAULT_MIN_UDI_MS, max_rate_hz=DEFAULT_MAX_RATE_HZ, max_cv=DEFAULT_MAX_CV)
    return {name: float(params[name]) if params.get(name) is not None else d for name, d in defaults.items()}


def run_words(params: dict, provenance: dict) -> RunView:
    """The run's words from the extension's params and provenance (``rule`` and ``guarantee`` when stored)."""
    method = str(params.get("method") or provenance.get("method") or "cnn")
    criteria = _criteria(params)
    demo = bool(method == "cnn" and provenance.get("model_is_demo"))
    description = plain(provenance.get("model_description"))
    model = "DEMO (simulated data)" if demo else (description or plain(provenance.get("model_folder")) or "model")
    if method != "cnn":
        model = "classical criteria (no CNN)"
    rule = plain(provenance.get("rule")) or describe_rule({**params, "method": method})  # stored, else its words
    return RunView(
        method=method,
        demo=demo,
        model=model,
        kernels=[int(k) for k in provenance.get("model_kernels") or []],
        rule=rule,
        guarantee=plain(provenance.get("guarantee")).strip().rstrip(".") or NO_GUARANTEE,
        criteria=criteria,
        calibration=provenance.get("calibration") or None,
    )


def _model_waveforms(ext, unit_ids) -> dict:
    """The snippets the model saw (``get_data("waveforms")``, rows aligned with ``"spikes"``), per unit id."""
    units = ext.get_data(outputs="spikes")["unit_id"].astype(str).to_numpy()
    waveforms = np.asarray(ext.get_data(outputs="waveforms"), dtype=np.float32)
    return {str(u): waveforms[units == str(u)] for u in unit_ids}


def _time_origin(ext) -> float:
    """The recording's first segment start, from which the unit table's times are counted."""
    segments = ext.get_data(outputs="segments")
    return float(segments["t_start_s"].iloc[0]) if len(segments) else 0.0


def _segment_layout(analyzer):
    fs = float(analyzer.sampling_frequency)
    durations = [analyzer.get_num_samples(s) / fs for s in range(analyzer.get_num_segments())]
    offsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]]) if durations else np.zeros(0)
    return durations, offsets


def _spike_times(sorting, unit_id, offsets):
    """(every detected spike's time with sweeps laid end to end in s, intervals within sweeps in s)."""
    times, intervals = [], []
    for segment, offset in enumerate(offsets):
        if segment >= sorting.get_num_segments():
            break
        samples = np.sort(sorting.get_unit_spike_train(unit_id, segment_index=segment, use_cache=False))
        seconds = samples / float(sorting.sampling_frequency)
        times.append(seconds + offset)
        intervals.append(np.diff(seconds))
    t = np.concatenate(times) if times else np.zeros(0)
    isi = np.concatenate(intervals) if intervals else np.zeros(0)
    return t, isi[isi > 0]


def read_run(analyzer, file=None) -> tuple[RunView, list[CellView]]:
    """The run's words and every unit of a classified analyzer, as the report shows them.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    file : str or None, default: None
        The recording the analyzer comes from.

    Returns
    -------
    (RunView, list of CellView)
    """
    ext = get_serotonergic_extension(analyzer)
    run = run_words(dict(ext.params), dict(ext.get_data(outputs="provenance")))
    units = ext.get_data()
    spikes = ext.get_data(outputs="spikes")
    spike_units = spikes["unit_id"].astype(str).to_numpy()
    spike_times = spikes["time_s"].to_numpy(dtype=float) - _time_origin(ext)
    members = np.asarray(ext.get_data(outputs="members"), dtype=np.float64)
    consensus = consensus_of(members) if members.ndim == 3 and members.shape[1] else np.zeros((len(spikes), 2))
    waveforms = _model_waveforms(ext, analyzer.unit_ids)
    sorting = analyzer.sorting
    cell_property = sorting.get_property("cell_id")
    dropped = sorting.get_property("n_dropped_edge")
    durations, offsets = _segment_layout(analyzer)
    cells = []
    for i, unit in enumerate(analyzer.unit_ids):
        times, isi = _spike_times(sorting, unit, offsets)
        cells.append(
            CellView(
                unit_id=unit,
                cell_id=plain(cell_property[i]) if cell_property is not None else str(unit),
                channel=str(unit),
                file=None if file is None else str(file),
                row=units.loc[unit] if unit in units.index else pd.Series(dtype=object),
                waveforms=waveforms[str(unit)],
                p_ser=spikes["p_ser"].to_numpy(dtype=float)[spike_units == str(unit)],
                times=times,
                isi=isi,
                durations=durations,
                offsets=offsets,
                n_dropped=int(dropped[i]) if dropped is not None else None,
                consensus=consensus[spike_units == str(unit)],
                spike_times_s=spike_times[spike_units == str(unit)],
            )
        )
    return run, cells
