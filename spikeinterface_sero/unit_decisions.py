"""What the ``serotonergic`` extension stores, computed from an analyzer (:func:`compute_unit_decisions`, the
one call of its ``_run``), and the stored form of its unit table.

The columns and the rules are in ``docs/architecture.md``; the rule itself lives in
:mod:`spikeinterface_sero.decision`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .adapt import (
    OutOfDomainWarning,
    adapt_analyzer_snippets,
    add_domain_parts,
    is_paper_format,
    out_of_domain_message,
    recording_domains,
)
from .analyzers import POLARITY_PROPERTY, main_channel_waveforms
from .conformal import rig_guarantee
from .constants import POLARITIES
from .decision import (
    DecisionParams,
    action_current_quality,
    consensus_of,
    decide_units,
    describe_rule,
    describe_training_data,
    spike_probability,
)
from .errors import SeroError, SnippetError
from .features import criteria_classify, features_from_sorting
from .model import load_model
from .model.numpy_engine import default_threads
from .schema import UNIT_SCHEMA, cast_table
from .seal import watch_units
from .sessions import describe_session
from .snippet_analyzer import LENGTH_UNKNOWN
from .upstream import keep_trailing_empty_segments

__all__ = [
    "compute_unit_decisions",
    "inference_threads",
    "stored_table",
    "unit_table",
    "normalise_units_table",
    "SPIKE_ARRAYS",
    "SEGMENT_STARTS",
]


_INFERENCE_BATCH = 4096  # spikes per progress-bar step
#: the per-spike arrays of what :func:`compute_unit_decisions` returns (rows aligned, one per classified spike)
SPIKE_ARRAYS = (
    "spike_probability",
    "member_outputs",
    "spike_unit_index",
    "spike_segment_index",
    "spike_sample_index",
    "spike_waveforms",
)
#: ``ext.data`` key of each segment's start time in the recording's own time base (s)
SEGMENT_STARTS = "segment_t_start_s"


def _given(values: dict) -> dict:
    return {name: value for name, value in values.items() if value is not None}


def inference_threads(job_kwargs: dict) -> int | None:
    """Threads of the numpy inference engine for SpikeInterface's job keywords (fixed by ``fix_job_kwargs``).

    SpikeInterface runs ``n_jobs`` workers of ``max_threads_per_worker`` threads each (None: no limit), and
    one process (``n_jobs=1``) without a thread limit. The ensemble is vectorised over spikes in this process,
    so the same compute becomes engine threads: ``n_jobs * max_threads_per_worker`` (with no limit, at least
    the cores available); ``n_jobs=1`` gives None, the engine's own default (``SERO_NUM_THREADS``,
    ``OMP_NUM_THREADS`` or the cores available, which is what the batch runner sets per worker). The chunk
    keywords, ``pool_engine`` and ``mp_context`` are accepted and have nothing to do here: the extension
    reads stored waveforms, not the recording.
    """
    n_jobs = int(job_kwargs.get("n_jobs") or 1)
    if n_jobs <= 1:
        return None
    per_worker = job_kwargs.get("max_threads_per_worker", 1)
    if per_worker is None:
        return max(n_jobs, default_threads())
    return n_jobs * max(1, int(per_worker))


def _resolve_polarity(analyzer, polarity: str | None) -> str:
    if polarity is not None:
        return polarity
    if POLARITY_PROPERTY in analyzer.sorting.get_property_keys():
        found = sorted({str(v) for v in analyzer.sorting.get_property(POLARITY_PROPERTY)})
        if len(found) > 1:
            raise SeroError(
                f"the units were detected with different polarities ({', '.join(found)}); compute "
                "'serotonergic' on each group of units (analyzer.select_units) with polarity=..."
            )
        if found and found[0] in POLARITIES:
            return found[0]
    return "negative"


def _model_snippets(analyzer, params: dict, polarity: str, unit_ids: list):
    """(waveforms (n, 160) of the selected units' spikes, spike vector rows, domain per unit, adaptation)."""
    adaptation, reextract = None, bool(params.get("reextract", False))  # analyzers saved before it: False
    if not is_paper_format(analyzer):
        window = _waveform_window(analyzer)
        try:
            snippets, overall, adaptation = adapt_analyzer_snippets(
                analyzer, polarity=polarity, flip_positive=params["flip_positive"], reextract=reextract
            )
        except SnippetError:
            # re-extracted into the paper's own window (40 kHz spikes already at their triggers): read as such
            if not (reextract and is_paper_format(analyzer)):
                raise
            adaptation = dict(applied=False, reextracted=dict(previous=window, **_waveform_window(analyzer)))
        else:
            domain = [adaptation["unit_domains"][str(u)] for u in unit_ids]
            if overall != "in_domain":
                warnings.warn(out_of_domain_message(adaptation), OutOfDomainWarning, stacklevel=5)
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    if adaptation is None or not adaptation.get("applied", True):
        waveforms = main_channel_waveforms(analyzer)
        waveforms = -waveforms if polarity == "positive" else waveforms
        domain = ["in_domain"] * len(unit_ids)
    else:
        waveforms = snippets.waveforms
    domain = [add_domain_parts(d, parts) for d, parts in zip(domain, recording_domains(analyzer, unit_ids))]
    keep = np.isin(spikes["unit_index"], [list(analyzer.unit_ids).index(u) for u in unit_ids])
    return waveforms[keep], spikes[keep], domain, adaptation


def _waveform_window(analyzer) -> dict:
    params = analyzer.get_extension("waveforms").params
    return dict(ms_before=float(params["ms_before"]), ms_after=float(params["ms_after"]))


def _spike_times_from_start(analyzer, spikes, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """Each spike's time from the start of the recording (s) and when the recording ended."""
    fs = float(analyzer.sampling_frequency)
    origin = float(starts[0]) if len(starts) else 0.0
    segments = spikes["segment_index"].astype(np.int64)
    times = starts[segments] - origin + spikes["sample_index"] / fs if len(spikes) else np.zeros(0)
    last = analyzer.get_num_segments() - 1
    end_s = float(starts[last] - origin + analyzer.get_num_samples(last) / fs) if last >= 0 else None
    return np.asarray(times, dtype=np.float64), end_s


def _segment_start_times(analyzer) -> tuple[np.ndarray, str]:
    """Each segment's start in the recording's own time base (multi-sweep ABF files: 0, 15, 30 s ...) and
    where it came from: the analyzer's recording, else the sorting's registered one, else 0 (unknown)."""
    n_segments = analyzer.get_num_segments()
    if analyzer.has_recording() or analyzer.has_temporary_recording():
        recording = analyzer.recording
        starts = [recording.get_start_time(segment_index=k) for k in range(n_segments)]
        return np.asarray(starts, dtype=np.float64), "recording"
    sorting = analyzer.sorting
    if sorting.has_recording():
        starts = [sorting.sample_index_to_time(0, segment_index=k) for k in range(n_segments)]
        return np.asarray(starts, dtype=np.float64), "registered recording of the sorting"
    return np.zeros(n_segments), "unknown: no recording at compute time, each segment starts at 0 s"


def _features(analyzer, waveforms: np.ndarray, spike_unit_index: np.ndarray, unit_ids: list, params: dict):
    durations = [analyzer.get_num_samples(s) / analyzer.sampling_frequency for s in range(analyzer.get_num_segments())]
    by_unit = {u: waveforms[spike_unit_index == i] for i, u in enumerate(unit_ids)}
    features = features_from_sorting(analyzer.sorting, by_unit, durations, unit_ids=unit_ids, polarity="negative")
    if analyzer.sorting.get_annotation(LENGTH_UNKNOWN):  # snippets without their recording: no rate
        features["firing_rate_hz"] = np.nan
    criteria = {name: params[name] for name in ("min_udi_ms", "max_rate_hz", "max_cv")}
    return criteria_classify(features, **_given(criteria))


def _intervals(analyzer, unit_id, starts: np.ndarray, stretch: tuple[float, float]) -> np.ndarray:
    """Inter-spike intervals of a unit within each segment, in seconds (every spike, not only the cap), of the
    spikes in its stable stretch (``stretch``: from, to, in seconds from the start of the recording)."""
    sorting, fs = analyzer.sorting, float(analyzer.sampling_frequency)
    first, last = stretch if np.isfinite(stretch[0]) and np.isfinite(stretch[1]) else (-np.inf, np.inf)
    parts = []
    for k in range(sorting.get_num_segments()):
        samples = np.sort(sorting.get_unit_spike_train(unit_id, segment_index=k, use_cache=False))
        times = starts[k] - starts[0] + samples / fs if len(starts) else samples / fs
        parts.append(np.diff(times[(times >= first) & (times <= last)]))
    return np.concatenate(parts) if parts else np.zeros(0)


def _predict(ensemble, waveforms: np.ndarray, progress_bar: bool, threads: int | None = None) -> np.ndarray:
    if waveforms.shape[0] == 0:
        return np.zeros((0, len(ensemble.kernels), 2), np.float32)
    if threads is not None and ensemble.engine == "numpy":
        ensemble = ensemble.with_engine("numpy")  # a view with its own threads: the loaded model is shared
        ensemble.threads = int(threads)
    starts = range(0, waveforms.shape[0], _INFERENCE_BATCH)
    parts = [
        ensemble.predict_members(waveforms[start : start + _INFERENCE_BATCH])
        for start in tqdm(starts, desc="serotonergic", unit="batch", disable=not progress_bar)
    ]
    return np.concatenate(parts).astype(np.float32)


def compute_unit_decisions(
    analyzer, params: dict, *, unit_ids=None, progress_bar: bool = False, threads: int | None = None
) -> dict:
    """Everything the extension stores, computed on ``analyzer`` for ``unit_ids`` (None: all units).

    ``threads``: of the numpy inference engine (:func:`inference_threads`; None: the engine's default).

    Reads the analyzer and changes nothing: the snippets on each unit's main channel (adapted to the
    paper's format if needed), the classical features, the ensemble's member outputs and
    :func:`spikeinterface_sero.decision.decide_units`.
    """
    unit_ids = list(analyzer.unit_ids) if unit_ids is None else list(unit_ids)
    # SpikeInterface's copies of a sorting drop trailing sweeps without spikes: the rate needs every sweep
    keep_trailing_empty_segments(analyzer.sorting, len(analyzer.rec_attributes["num_samples"]))
    polarity = _resolve_polarity(analyzer, params["polarity"])
    waveforms, spikes, domain, adaptation = _model_snippets(analyzer, params, polarity, unit_ids)
    position = {list(analyzer.unit_ids).index(u): i for i, u in enumerate(unit_ids)}
    spike_unit = np.array([position[int(i)] for i in spikes["unit_index"]], dtype=np.int64)
    features = _features(analyzer, waveforms, spike_unit, unit_ids, params)
    starts, time_origin = _segment_start_times(analyzer)
    provenance = dict(
        polarity=polarity,
        adaptation=adaptation,
        method=params["method"],
        rule=describe_rule(params),
        time_origin=time_origin,
    )
    calibration, training_data, rig_validation = None, None, None
    if params["method"] == "cnn":
        ensemble = load_model(params["model_folder"], trust=params["trust_model"])
        outputs = _predict(ensemble, waveforms, progress_bar, threads)
        calibration = ensemble.info.get("calibration") or None
        training_data = ensemble.info.get("training_data") or None
        rig_validation = ensemble.info.get("rig_validation") or None  # docs/validate.md
        provenance.update(
            model_is_demo=bool(ensemble.is_demo),
            model_kernels=[int(k) for k in ensemble.kernels],
            model_description=str(ensemble.info.get("description", ""))[:500],
            calibration=calibration,
            training_data=describe_training_data(training_data),
            model_folder=str(ensemble.info.get("folder", "")),
            model_members=[
                dict(kernel=int(m["kernel"]), sha256=str(m.get("sha256", ""))) for m in ensemble.info.get("members", [])
            ],
        )
    else:
        outputs = np.zeros((waveforms.shape[0], 0, 2), np.float32)
        provenance.update(model_is_demo=False, model_kernels=[], model_description="classical criteria")
    decision = DecisionParams(
        n_boot=params["n_boot"], ci=params["ci"], seed=params["seed"], min_spikes=params["min_spikes"]
    )
    times, end_s = _spike_times_from_start(analyzer, spikes, starts)
    stable, seal = watch_units(waveforms, spike_unit, unit_ids, times, end_s)  # classify the stable stretch only
    quality = action_current_quality(
        waveforms[stable],
        spike_unit[stable],
        unit_ids,
        firing_rate_hz=features.reindex(unit_ids)["firing_rate_hz"].to_numpy(dtype=float),
        isis_s=[
            _intervals(analyzer, u, starts, tuple(seal.loc[u, ["sero_stable_start_s", "sero_stable_end_s"]]))
            for u in unit_ids
        ],
        training_data=training_data,
        rig_validation=rig_validation,
    )
    units, _ = decide_units(
        outputs[stable],
        spike_unit[stable],
        unit_ids,
        params=decision,
        features=features,
        method=params["method"],
        domain=domain,
        quality=quality,
        calibration=calibration,
        rig_validation=rig_validation,
        spike_times_s=times[stable],
        seal=seal,
        rig_session=params.get("rig_session"),
    )
    spike_p = spike_probability(consensus_of(outputs)).astype(np.float32) if outputs.shape[1] else None
    spike_p = np.full(len(spike_unit), np.nan, np.float32) if spike_p is None else spike_p
    provenance["guarantee"] = rig_guarantee(rig_validation)
    provenance["session"] = describe_session(params.get("rig_session"))
    analyzer_position = np.array([list(analyzer.unit_ids).index(u) for u in unit_ids], dtype=np.int64)
    return dict(
        **stored_table(normalise_units_table(units, unit_ids)),  # the dtypes a reload gives, by construction
        spike_probability=spike_p,
        member_outputs=outputs,
        spike_unit_index=analyzer_position[spike_unit] if spike_unit.size else np.zeros(0, np.int64),
        spike_segment_index=spikes["segment_index"].astype(np.int64),
        spike_sample_index=spikes["sample_index"].astype(np.int64),
        spike_waveforms=np.ascontiguousarray(waveforms, dtype=np.float32),
        **{SEGMENT_STARTS: starts},
        provenance=provenance,
    )


def stored_table(table: pd.DataFrame) -> dict:
    """The unit table as stored in ``ext.data``: ``"units"``, its numeric and boolean columns (a DataFrame, as
    SpikeInterface's metric extensions store theirs), and ``"unit_text"``, its text columns as lists of str.

    SpikeInterface writes a DataFrame's text to zarr as fixed-width arrays and to binary folders as CSV (""
    comes back as NaN), and its common extension tests compare DataFrame columns as numbers; a dict is JSON
    in every format, compared as it is.
    """
    table = cast_table(table, UNIT_SCHEMA)
    text = [name for name in table.columns if not pd.api.types.is_numeric_dtype(table[name])]  # bool is numeric
    return {"units": table.drop(columns=text), "unit_text": {name: [str(v) for v in table[name]] for name in text}}


def unit_table(data: dict, unit_ids) -> pd.DataFrame:
    """The whole unit table from what :func:`stored_table` stored (or a whole table, as earlier versions did)."""
    table = data["units"].copy()
    for name, values in (data.get("unit_text") or {}).items():
        table[name] = list(values)
    return normalise_units_table(table, list(unit_ids))


def normalise_units_table(units: pd.DataFrame, unit_ids: list) -> pd.DataFrame:
    """The unit table as computed: index ``unit_id`` with the analyzer's unit ids, the schema's dtypes
    (binary folders give CSV-parsed types, zarr gives pandas nullable ones)."""
    out = cast_table(units, UNIT_SCHEMA)
    lookup = {str(u): u for u in unit_ids}
    out.index = pd.Index([lookup.get(str(u), u) for u in out.index], name="unit_id")
    return out
