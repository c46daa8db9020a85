"""The ``serotonergic`` SortingAnalyzer extension and :func:`serotonergic_label_units` (the curation idiom).

>>> import spikeinterface_sero as sero          # registers the extension
>>> analyzer = sero.abf_to_analyzer("cell.abf")
>>> units = analyzer.compute("serotonergic", model_folder="my_model").get_data()

The columns and the rules are in ``docs/architecture.md``; the rule itself lives in
:mod:`spikeinterface_sero.decision`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from spikeinterface.core.job_tools import fix_job_kwargs
from spikeinterface.core.sortinganalyzer import AnalyzerExtension, register_result_extension
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
from .arguments import check_flag
from .conformal import rig_guarantee
from .constants import (
    DEFAULT_CI,
    DEFAULT_MIN_SPIKES,
    DEFAULT_N_BOOT,
    MS_AFTER,
    MS_BEFORE,
    POLARITIES,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
)
from .decision import (
    DecisionParams,
    action_current_quality,
    consensus_of,
    decide_units,
    describe_rule,
    describe_training_data,
    spike_probability,
)
from .errors import DemoModelWarning, SeroError, SnippetError
from .features import check_criterion, criteria_classify, features_from_sorting
from .model import load_model
from .model.numpy_engine import default_threads
from .schema import UNIT_SCHEMA, cast_table, property_values
from .seal import watch_units
from .upstream import keep_trailing_empty_segments, set_sorting_property

__all__ = [
    "ComputeSerotonergic",
    "compute_serotonergic",
    "serotonergic_label_units",
    "get_serotonergic_extension",
    "load_sorting_analyzer",
    "analyzer_from_snippets",
    "SERO_PROPERTIES",
    "MANUAL_LABEL",
    "inference_threads",
]

#: the column and sorting property of a person's label (SpikeInterface's curation ``label_definitions`` key)
MANUAL_LABEL = "sero_manual_label"
#: the unit-table columns written as sorting properties (seen by Phy, spikeinterface-gui, neuroconv), with the
#: dtypes of :func:`~spikeinterface_sero.schema.property_values`
SERO_PROPERTIES = (
    "sero_call",
    "sero_label",
    "sero_probability",
    "sero_confidence",
    "sero_reliable",
    "sero_set",
    "sero_rig",
    "sero_type",
    "sero_domain",
    "sero_quality",
    MANUAL_LABEL,
)
_INFERENCE_BATCH = 4096  # spikes per progress-bar step
#: sorting annotation of :func:`analyzer_from_snippets`: how long the recording was is not known
_LENGTH_UNKNOWN = "sero_recording_length_unknown"
_SPIKE_ARRAYS = (
    "spike_probability",
    "member_outputs",
    "spike_unit_index",
    "spike_segment_index",
    "spike_sample_index",
    "spike_waveforms",
)
#: ``ext.data`` key of each segment's start time in the recording's own time base (s)
_SEGMENT_STARTS = "segment_t_start_s"
_OUTPUTS = ("units", "spikes", "waveforms", "segments", "members", "provenance")


class ComputeSerotonergic(AnalyzerExtension):
    """Classify each unit as serotonergic or non-serotonergic from its action-current waveforms.

    Each unit is read on its main channel (``analyzer.get_main_channels()``), dense or sparse. The parameters
    are those of ``analyzer.compute("serotonergic", **params)``, SpikeInterface's extension idiom.

    Parameters
    ----------
    model_folder : str or None, default: None
        A model folder (``model_info.json`` + members); None: the bundled **demonstration** model, trained
        on simulated recordings (not for scientific conclusions).
    method : "cnn" | "criteria", default: "cnn"
        The CNN ensemble, or the classical criteria alone (wide spike, slow and regular firing).
    trust_model : bool, default: False
        Allow a model that needs arbitrary code (Lambda layers, custom objects) to load.
    n_boot : int, default: 1000
        Bootstrap resamples for the interval of the cell probability (at least 10).
    ci : float, default: 0.95
        Coverage of the interval.
    seed : int, default: 0
        Seed of the bootstrap.
    min_spikes : int, default: 20
        A call is ``sero_reliable`` only with at least this many spikes (and the other rules of docs/quality.md).
    min_udi_ms, max_rate_hz, max_cv : float or None, default: None
        Classical criteria thresholds (:func:`spikeinterface_sero.features.criteria_classify`); None: the
        defaults.
    polarity : "negative" | "positive" | None, default: None
        Direction of the spikes in the recording; "positive" flips them for the model. None: the polarity
        the detection recorded in the sorting (property ``spike_polarity``), else "negative".
    flip_positive : bool, default: False
        For analyzers not in the paper's format (:mod:`spikeinterface_sero.adapt`): flip the units whose
        spikes go up on their main channel.
    reextract : bool, default: False
        For analyzers not in the paper's format whose ``waveforms`` are too short for the model's window
        (SpikeInterface's default 1 ms + 2 ms, for instance) and that have their recording: recompute
        ``waveforms`` with the window needed first (SpikeInterface then deletes the extensions that depend on
        ``waveforms``, with a warning). False: such an analyzer is refused with the call that fixes it.
    """

    extension_name = "serotonergic"
    depend_on = ["waveforms"]
    need_recording = False
    use_nodepipeline = False
    need_job_kwargs = True
    need_backward_compatibility_on_load = True  # zarr and binary folders give back other dtypes

    def _set_params(
        self,
        model_folder=None,
        method: str = "cnn",
        trust_model: bool = False,
        n_boot: int = DEFAULT_N_BOOT,
        ci: float = DEFAULT_CI,
        seed: int = 0,
        min_spikes: int = DEFAULT_MIN_SPIKES,
        min_udi_ms=None,
        max_rate_hz=None,
        max_cv=None,
        polarity: str | None = None,
        flip_positive: bool = False,
        reextract: bool = False,
    ):
        if method not in ("cnn", "criteria"):
            raise SeroError(f"method must be 'cnn' or 'criteria', not {method!r}.")
        if polarity is not None and polarity not in POLARITIES:
            raise SeroError(f"polarity must be 'negative', 'positive' or None, not {polarity!r}.")
        decision = DecisionParams(n_boot=n_boot, ci=ci, seed=seed, min_spikes=min_spikes)
        criteria = dict(min_udi_ms=min_udi_ms, max_rate_hz=max_rate_hz, max_cv=max_cv)
        criteria = {name: check_criterion(value, name) for name, value in criteria.items()}
        return dict(
            model_folder=None if model_folder is None else str(model_folder),
            method=method,
            trust_model=check_flag(trust_model, "trust_model"),
            **decision.to_dict(),
            **criteria,
            polarity=polarity,
            flip_positive=check_flag(flip_positive, "flip_positive"),
            reextract=check_flag(reextract, "reextract"),
        )

    def _run(self, verbose=False, **job_kwargs):
        job_kwargs = fix_job_kwargs(job_kwargs)
        analyzer = self.sorting_analyzer
        self.data = compute_unit_decisions(
            analyzer,
            self.params,
            progress_bar=bool(job_kwargs.get("progress_bar", False)),
            threads=inference_threads(job_kwargs),
        )
        if (self.data["provenance"].get("adaptation") or {}).get("reextracted") and getattr(
            self, "_save_to_disk", False
        ):
            # SpikeInterface deleted the extensions depending on the re-extracted 'waveforms', this one's
            # folder (where run() had saved its params) included: save them again before run() saves the rest
            self._save_params()
            self._save_importing_provenance()
        table = _with_manual_labels(_unit_table(self.data, analyzer.unit_ids), analyzer)  # a recompute keeps them
        self.data.update(_stored_table(table))
        _write_unit_properties(analyzer, table)
        if self.data["provenance"].get("model_is_demo"):
            warnings.warn(
                "spikeinterface-sero: these labels come from the bundled DEMONSTRATION model, trained on "
                "simulated recordings; they are not for scientific conclusions. Pass "
                "model_folder=<your or the published model> for real use.",
                DemoModelWarning,
                stacklevel=4,
            )

    def _get_data(self, outputs: str = "units"):
        """``outputs="units"``: the per-unit table; ``"spikes"``: one row per classified spike (unit_id,
        segment_index, sample_index, time_s in the recording's own time base, p_ser: the RAW per-spike ensemble
        output); ``"waveforms"``: the (n_spikes, 160) float32 pA snippets the model was given (after the flip
        and the adaptation), rows aligned with ``"spikes"``; ``"segments"``: segment_index, t_start_s,
        duration_s; ``"members"``: (n_spikes, n_members, 2) member outputs; ``"provenance"``: the model
        (sha256, kernels, demo flag), the rule's wording, the polarity, the adaptations and the time origin."""
        if outputs == "units":
            return _with_manual_labels(_unit_table(self.data, self.sorting_analyzer.unit_ids), self.sorting_analyzer)
        if outputs == "members":
            return self.data["member_outputs"]
        if outputs == "provenance":
            return self.data["provenance"]
        if outputs == "spikes":
            return self._spike_table()
        if outputs == "waveforms":
            if "spike_waveforms" not in self.data:
                raise SeroError(
                    "this 'serotonergic' extension was computed by an earlier version, which did not keep the "
                    "snippets the model saw: compute it again (analyzer.compute('serotonergic', **ext.params))."
                )
            return np.asarray(self.data["spike_waveforms"], dtype=np.float32)
        if outputs == "segments":
            return self._segment_table()
        listed = ", ".join(repr(name) for name in _OUTPUTS)
        raise SeroError(f"outputs must be one of {listed}, not {outputs!r}.")

    def _segment_table(self) -> pd.DataFrame:
        analyzer = self.sorting_analyzer
        n_segments = analyzer.get_num_segments()
        starts = np.asarray(self.data.get(_SEGMENT_STARTS, np.zeros(n_segments)), dtype=np.float64)
        samples = np.asarray(analyzer.rec_attributes["num_samples"], dtype=np.float64)[:n_segments]
        return pd.DataFrame(
            {
                "segment_index": np.arange(n_segments, dtype=np.int64),
                "t_start_s": starts[:n_segments],
                "duration_s": samples / float(analyzer.sampling_frequency),
            }
        )

    def _spike_table(self) -> pd.DataFrame:
        units = np.asarray(self.sorting_analyzer.unit_ids)
        segments = np.asarray(self.data["spike_segment_index"], dtype=np.int64)
        samples = np.asarray(self.data["spike_sample_index"], dtype=np.int64)
        starts = self._segment_table()["t_start_s"].to_numpy()
        return pd.DataFrame(
            {
                "unit_id": units[np.asarray(self.data["spike_unit_index"], dtype=np.int64)],
                "segment_index": segments,
                "sample_index": samples,
                "time_s": starts[segments] + samples / float(self.sorting_analyzer.sampling_frequency),
                "p_ser": np.asarray(self.data["spike_probability"]),
            }
        )

    def _handle_backward_compatibility_on_load(self):
        if isinstance(self.data.get("units"), pd.DataFrame):  # also the whole table of earlier versions
            self.data.update(_stored_table(_unit_table(self.data, self.sorting_analyzer.unit_ids)))

    # -------------------------------------------------------------------- select, merge, split
    def _select_units_extension_data(self, unit_ids):
        return _spike_data_of(self.data, self.sorting_analyzer.unit_ids, list(unit_ids))

    def _select_channels_extension_data(self, channel_ids):
        return self.data

    def _merge_extension_data(
        self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask=None, verbose=False, **job_kwargs
    ):
        labels = self._get_data("units")[MANUAL_LABEL]
        manual, disagreements = {}, []
        for group, new_unit_id in zip(merge_unit_groups, new_unit_ids):
            found = {str(u): str(labels.loc[u]) for u in group}
            if len(set(found.values())) == 1:  # the units' common label, "" included
                manual[new_unit_id] = next(iter(found.values()))
            else:  # a person labelled them differently: the merge has no label, and provenance says so
                disagreements.append(dict(unit_id=str(new_unit_id), merged_labels=found))
        return self._with_new_units(new_sorting_analyzer, list(new_unit_ids), job_kwargs, manual, disagreements)

    def _split_extension_data(self, split_units, new_unit_ids, new_sorting_analyzer, verbose=False, **job_kwargs):
        labels = self._get_data("units")[MANUAL_LABEL]
        manual = {new: str(labels.loc[unit]) for unit, group in zip(split_units, new_unit_ids) for new in group}
        new_ids = [u for group in new_unit_ids for u in group]
        return self._with_new_units(new_sorting_analyzer, new_ids, job_kwargs, manual, [])

    def _with_new_units(
        self, new_analyzer, new_unit_ids: list, job_kwargs: dict, manual: dict, disagreements: list
    ) -> dict:
        """The kept units' data as they are, the new units computed (the ``BaseMetricExtension`` pattern);
        ``manual``: the person's label of each new unit (a merge's common one, a split unit's)."""
        all_units = list(new_analyzer.unit_ids)
        kept = [u for u in all_units if u not in set(new_unit_ids)]
        old = _spike_data_of(self.data, self.sorting_analyzer.unit_ids, kept, new_unit_order=all_units)
        threads = inference_threads(fix_job_kwargs(job_kwargs))
        new = compute_unit_decisions(new_analyzer, self.params, unit_ids=new_unit_ids, threads=threads)
        data = {name: np.concatenate([old[name], new[name]]) for name in _SPIKE_ARRAYS if name in old}
        data[_SEGMENT_STARTS] = old[_SEGMENT_STARTS]  # the same segments, the same times
        kept_table, new_table = _unit_table(old, kept), _unit_table(new, new_unit_ids)
        kept_table[MANUAL_LABEL] = self._get_data("units")[MANUAL_LABEL].reindex(kept).to_numpy()
        new_table[MANUAL_LABEL] = [manual.get(u, "") for u in new_unit_ids]
        table = pd.concat([kept_table, new_table]).reindex(all_units)
        data.update(_stored_table(table))
        data["provenance"] = dict(self.data["provenance"])
        if disagreements:
            data["provenance"]["manual_label_merges"] = [
                *self.data["provenance"].get("manual_label_merges", []),
                *disagreements,
            ]
        _write_unit_properties(new_analyzer, table)
        return data


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
    if analyzer.sorting.get_annotation(_LENGTH_UNKNOWN):  # snippets without their recording: no rate
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
    )
    spike_p = spike_probability(consensus_of(outputs)).astype(np.float32) if outputs.shape[1] else None
    spike_p = np.full(len(spike_unit), np.nan, np.float32) if spike_p is None else spike_p
    provenance["guarantee"] = rig_guarantee(rig_validation)
    analyzer_position = np.array([list(analyzer.unit_ids).index(u) for u in unit_ids], dtype=np.int64)
    return dict(
        **_stored_table(_normalise_units_table(units, unit_ids)),  # the dtypes a reload gives, by construction
        spike_probability=spike_p,
        member_outputs=outputs,
        spike_unit_index=analyzer_position[spike_unit] if spike_unit.size else np.zeros(0, np.int64),
        spike_segment_index=spikes["segment_index"].astype(np.int64),
        spike_sample_index=spikes["sample_index"].astype(np.int64),
        spike_waveforms=np.ascontiguousarray(waveforms, dtype=np.float32),
        **{_SEGMENT_STARTS: starts},
        provenance=provenance,
    )


def _spike_data_of(data: dict, old_unit_ids, keep_unit_ids: list, new_unit_order: list | None = None) -> dict:
    """The stored data restricted to ``keep_unit_ids``, unit indices renumbered in ``new_unit_order``."""
    old_unit_ids = list(old_unit_ids)
    new_unit_order = list(keep_unit_ids) if new_unit_order is None else list(new_unit_order)
    old_index = np.asarray(data["spike_unit_index"], dtype=np.int64)
    keep = np.isin(old_index, [old_unit_ids.index(u) for u in keep_unit_ids])
    renumber = {old_unit_ids.index(u): new_unit_order.index(u) for u in keep_unit_ids}
    out = {name: np.asarray(data[name])[keep] for name in _SPIKE_ARRAYS if name in data}  # earlier: no waveforms
    if _SEGMENT_STARTS in data:
        out[_SEGMENT_STARTS] = np.asarray(data[_SEGMENT_STARTS], dtype=np.float64)
    out["spike_unit_index"] = np.array([renumber[int(i)] for i in old_index[keep]], dtype=np.int64)
    out.update(_stored_table(_unit_table(data, old_unit_ids).loc[keep_unit_ids]))
    out["provenance"] = data["provenance"]
    return out


def _write_unit_properties(analyzer, table: pd.DataFrame) -> None:
    """Mirror the table into the sorting properties :data:`SERO_PROPERTIES` (numeric, bool or fixed-width text)."""
    table = table.reindex(list(analyzer.unit_ids))
    for key in SERO_PROPERTIES:  # read-only analyzers: in memory, with the extension's data
        set_sorting_property(analyzer, key, property_values(table, key))


def _with_manual_labels(table: pd.DataFrame, analyzer) -> pd.DataFrame:
    """``table`` with the ``sero_manual_label`` sorting property as its column, when the sorting has one.

    ``spikeinterface.curation.apply_curation`` writes a curation's labels only as that property (in memory);
    the extension's table shows them beside the model's call, and keeps them through recomputes, merges and
    splits. A missing value (None, NaN) is "".
    """
    sorting = analyzer.sorting
    if MANUAL_LABEL not in sorting.get_property_keys():
        return table
    values = sorting.get_property(MANUAL_LABEL)
    labels = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
    by_unit = dict(zip([str(u) for u in sorting.unit_ids], labels))
    table = table.copy()
    table[MANUAL_LABEL] = [by_unit.get(str(u), "") for u in table.index]
    return table


def _stored_table(table: pd.DataFrame) -> dict:
    """The unit table as stored in ``ext.data``: ``"units"``, its numeric and boolean columns (a DataFrame, as
    SpikeInterface's metric extensions store theirs), and ``"unit_text"``, its text columns as lists of str.

    SpikeInterface writes a DataFrame's text to zarr as fixed-width arrays and to binary folders as CSV (""
    comes back as NaN), and its common extension tests compare DataFrame columns as numbers; a dict is JSON
    in every format, compared as it is.
    """
    table = cast_table(table, UNIT_SCHEMA)
    text = [name for name in table.columns if not pd.api.types.is_numeric_dtype(table[name])]  # bool is numeric
    return {"units": table.drop(columns=text), "unit_text": {name: [str(v) for v in table[name]] for name in text}}


def _unit_table(data: dict, unit_ids) -> pd.DataFrame:
    """The whole unit table from what :func:`_stored_table` stored (or a whole table, as earlier versions did)."""
    table = data["units"].copy()
    for name, values in (data.get("unit_text") or {}).items():
        table[name] = list(values)
    return _normalise_units_table(table, list(unit_ids))


def _normalise_units_table(units: pd.DataFrame, unit_ids: list) -> pd.DataFrame:
    """The unit table as computed: index ``unit_id`` with the analyzer's unit ids, the schema's dtypes
    (binary folders give CSV-parsed types, zarr gives pandas nullable ones)."""
    out = cast_table(units, UNIT_SCHEMA)
    lookup = {str(u): u for u in unit_ids}
    out.index = pd.Index([lookup.get(str(u), u) for u in out.index], name="unit_id")
    return out


register_result_extension(ComputeSerotonergic)
compute_serotonergic = ComputeSerotonergic.function_factory()


def serotonergic_label_units(sorting_analyzer, model_folder=None, *, reextract: bool = False, **params):
    """Label every unit serotonergic or non-serotonergic, in the idiom of ``spikeinterface.curation``.

    Computes the ``serotonergic`` extension and writes the sorting properties :data:`SERO_PROPERTIES`.

    Parameters
    ----------
    sorting_analyzer : SortingAnalyzer
        With ``random_spikes`` and ``waveforms``.
    model_folder : str or None, default: None
        None: the bundled demonstration model.
    reextract : bool, default: False
        When the waveforms are too short for the model's window (1 ms before and 3 ms after the trigger,
        after resampling), recompute them from the recording first (this deletes the extensions that
        depend on ``waveforms``, with a warning).
    **params
        The extension's parameters (:class:`ComputeSerotonergic`).

    Returns
    -------
    pandas.DataFrame
        The per-unit table (``ext.get_data()``).
    """
    return sorting_analyzer.compute("serotonergic", model_folder=model_folder, reextract=reextract, **params).get_data()


def get_serotonergic_extension(sorting_analyzer) -> ComputeSerotonergic:
    """The analyzer's ``serotonergic`` extension, or a SeroError that says how to compute it."""
    if not sorting_analyzer.has_extension("serotonergic"):
        raise SeroError(
            "The analyzer has no 'serotonergic' extension yet: run analyzer.compute('serotonergic') "
            "or spikeinterface_sero.serotonergic_label_units(analyzer) first."
        )
    return sorting_analyzer.get_extension("serotonergic")


def load_sorting_analyzer(folder, load_extensions: bool = True, format: str = "auto", **kwargs):
    """``spikeinterface.core.load_sorting_analyzer`` with the ``serotonergic`` extension registered (and every
    recorded sweep kept, :func:`~spikeinterface_sero.upstream.keep_trailing_empty_segments`).

    Parameters
    ----------
    folder : str or Path
        A binary-folder or zarr analyzer.
    load_extensions : bool, default: True
        Load the extensions now (else on first access).
    format : str, default: "auto"
        As SpikeInterface's.
    **kwargs
        As SpikeInterface's (``backend_options``, ...).

    Returns
    -------
    SortingAnalyzer
    """
    from spikeinterface.core import load_sorting_analyzer as _load

    analyzer = _load(folder, load_extensions=load_extensions, format=format, **kwargs)
    keep_trailing_empty_segments(analyzer.sorting, len(analyzer.rec_attributes["num_samples"]))
    return analyzer


def analyzer_from_snippets(snippets, *, polarity: str = "negative", max_spikes_per_cell=None, seed: int = 0):
    """A SortingAnalyzer without a recording whose ``waveforms`` are ``snippets``, ready for
    ``analyzer.compute("serotonergic")``.

    The authors' per-spike CSV files and ``.npz`` snippet files come without their recording. This analyzer lets
    them go through the ``serotonergic`` extension (:func:`compute_unit_decisions`, hence
    :func:`~spikeinterface_sero.decision.decide_units`, the quality checks and the tables) exactly as the
    snippets of an .abf file do. It lives here, not in :mod:`~spikeinterface_sero.snippets`, because it fills
    SpikeInterface's ``random_spikes`` and ``waveforms`` extensions by hand (as SpikeInterface does itself
    when it reads an old WaveformExtractor folder), which is this module's business.

    Parameters
    ----------
    snippets : Snippets
        (n, 160) pA at 40 kHz with the trigger at index 40, with ``trigger_samples``, ``segment_index`` and
        ``cell_ids``. Each cell becomes a unit (unit id = cell id), all on one channel.
    polarity : "negative" | "positive", default: "negative"
        The direction of the spikes in the snippets (recorded as the ``spike_polarity`` property, which the
        extension reads: "positive" snippets are flipped for the model).
    max_spikes_per_cell : int or None, default: None
        Classify at most this many spikes per cell (SpikeInterface's ``random_spikes``, seeded); None: all.
    seed : int, default: 0
        Seed of the cap.

    Returns
    -------
    SortingAnalyzer
        In memory, without a recording. Spike times are the trigger samples. When the snippets do not say
        how long each segment was (``segment_durations_s`` empty, as for CSV files), a segment is taken to end
        with its last window and the firing rate is NaN; the CV and LV of the intervals are computed.
    """
    from spikeinterface.core import NumpyRecording, NumpySorting
    from spikeinterface.core.analyzer_extension_core import ComputeRandomSpikes, ComputeWaveforms
    from spikeinterface.core.recording_tools import get_rec_attributes
    from spikeinterface.core.sortinganalyzer import SortingAnalyzer

    if polarity not in POLARITIES:
        raise SeroError(f"polarity must be 'negative' or 'positive', not {polarity!r}.")
    waveforms = np.asarray(snippets.waveforms, dtype=np.float32)
    if waveforms.ndim != 2 or waveforms.shape[1] != SNIPPET_LENGTH or not len(waveforms):
        raise SeroError(f"snippets must be a non-empty (n, {SNIPPET_LENGTH}) array, not of shape {waveforms.shape}.")
    if abs(float(snippets.sampling_frequency) - SAMPLING_FREQUENCY) > 0.5:
        raise SeroError(f"snippets must be at 40 kHz, not {snippets.sampling_frequency:g} Hz.")
    if max_spikes_per_cell is not None:
        snippets = snippets.capped(max_spikes_per_cell, seed)
        waveforms = np.asarray(snippets.waveforms, dtype=np.float32)
    samples = np.asarray(snippets.trigger_samples, dtype=np.int64)
    segments = np.asarray(snippets.segment_index, dtype=np.int64)
    cells, unit_index = snippets.cell_index()
    unit_ids = np.array(cells)
    n_segments = max(int(segments.max()) + 1, len(snippets.segment_durations_s))
    durations = list(snippets.segment_durations_s)
    num_samples = snippets.segment_samples()
    # the sorting holds every detected spike (the firing statistics), the waveforms only the cut ones
    every = _every_spike(snippets, cells, samples, segments, unit_index)
    spikes = np.zeros(
        every[0].size, dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")]
    )
    order = np.lexsort((every[2], every[0], every[1]))  # SpikeInterface's spike-vector order
    spikes["sample_index"], spikes["segment_index"], spikes["unit_index"] = (part[order] for part in every)
    chosen, cut_order = _places(spikes, samples, segments, unit_index, len(unit_ids))
    sorting = NumpySorting(spikes, SAMPLING_FREQUENCY, unit_ids)
    sorting.set_property("cell_id", unit_ids)
    sorting.set_property("main_channel_id", np.array(["snippets"] * len(unit_ids)))
    sorting.set_property(POLARITY_PROPERTY, np.array([polarity] * len(unit_ids)))
    if snippets.n_dropped_edge:
        sorting.set_property("n_dropped_edge", np.array([int(snippets.n_dropped_edge.get(c, 0)) for c in unit_ids]))
    placeholder = NumpyRecording(
        [np.zeros((1, 1), np.float32)] * n_segments, SAMPLING_FREQUENCY, channel_ids=["snippets"]
    )
    placeholder.set_property("physical_unit", ["pA"])
    placeholder.set_dummy_probe_from_locations(np.zeros((1, 2)))
    attributes = get_rec_attributes(placeholder)
    attributes.update(num_samples=num_samples, probegroup=placeholder.get_probegroup())
    analyzer = SortingAnalyzer.create_memory(
        sorting, None, None, return_in_uV=True, peak_sign="neg", peak_mode="extremum", rec_attributes=attributes
    )
    if not durations:
        analyzer.sorting.annotate(**{_LENGTH_UNKNOWN: True})
    # both extensions filled by hand: random_spikes = the spikes that have a waveform
    random_spikes = ComputeRandomSpikes(analyzer)
    if chosen.size == spikes.size:
        random_spikes.params = dict(method="all", max_spikes_per_unit=500, margin_size=None, seed=None)
    else:
        largest = int(np.bincount(unit_index, minlength=len(unit_ids)).max())
        random_spikes.params = dict(method="uniform", max_spikes_per_unit=largest, margin_size=None, seed=seed)
    random_spikes.data["random_spikes_indices"] = chosen
    random_spikes.run_info = dict(run_completed=True, runtime_s=0.0)
    analyzer.extensions["random_spikes"] = random_spikes
    extension = ComputeWaveforms(analyzer)
    extension.params = dict(
        ms_before=MS_BEFORE, ms_after=MS_AFTER, dtype="float32"
    )  # its _set_params reads the recording
    extension.data["waveforms"] = waveforms[cut_order][:, :, None]
    extension.run_info = dict(run_completed=True, runtime_s=0.0)
    analyzer.extensions["waveforms"] = extension
    return analyzer


def _every_spike(snippets, cells, samples, segments, unit_index):
    """(samples, segments, unit indices) of every detected spike: ``snippets.all_*`` (kept before a cap) on
    the snippets' cells, else the cut spikes themselves (also when the two do not fit together)."""
    own = samples, segments, unit_index
    if snippets.all_trigger_samples is None or snippets.all_unit_ids is None or snippets.all_segment_index is None:
        return own
    # the channel of each cell: a channel holding two cells (several files) is ambiguous
    unit_of_spike = np.asarray(snippets.unit_ids).astype(str)
    index_of_unit = dict(zip(unit_of_spike.tolist(), unit_index.tolist()))
    if len(index_of_unit) != len(cells) or len(set(index_of_unit.values())) != len(cells):
        return own
    names, inverse = np.unique(np.asarray(snippets.all_unit_ids).astype(str), return_inverse=True)
    index_of_name = np.array([index_of_unit.get(name, -1) for name in names], dtype=np.int64)
    every_unit = index_of_name[inverse.reshape(-1)]
    known = every_unit >= 0  # spikes of a channel without a cut spike have no cell here
    every = (
        np.asarray(snippets.all_trigger_samples, dtype=np.int64)[known],
        np.asarray(snippets.all_segment_index, dtype=np.int64)[known],
        every_unit[known],
    )
    return every if every[0].size >= samples.size else own


def _places(spikes, samples, segments, unit_index, n_units):
    """The indices in the spike vector ``spikes`` of the cut spikes (sorted, as ``random_spikes`` keeps them)
    and the order of the cut spikes that follows them."""
    span = int(max(spikes["sample_index"].max(initial=0), samples.max(initial=0))) + 1

    def key(segment, sample, unit):
        return (segment * span + sample) * n_units + unit

    vector_keys = key(spikes["segment_index"], spikes["sample_index"], spikes["unit_index"])
    cut_keys = key(segments, samples, unit_index)
    places = np.minimum(np.searchsorted(vector_keys, cut_keys), max(vector_keys.size - 1, 0))
    if vector_keys.size == 0 or not np.array_equal(vector_keys[places], cut_keys):
        raise SeroError(
            "the snippets' spikes are not among their own list of every detected spike (all_trigger_samples); "
            "the snippets file is inconsistent: write it again with `sero snippets`."
        )
    cut_order = np.argsort(places, kind="stable")
    return places[cut_order], cut_order
