"""The ``serotonergic`` SortingAnalyzer extension and :func:`serotonergic_label_units` (the curation idiom).

>>> import spikeinterface_sero as sero          # registers the extension
>>> analyzer = sero.abf_to_analyzer("cell.abf")
>>> units = analyzer.compute("serotonergic", model_folder="my_model").get_data()

The columns and the rules are in ``docs/architecture.md``; what ``_run`` computes is
:func:`compute_unit_decisions` (module ``unit_decisions``), the rule itself lives in
:mod:`spikeinterface_sero.decision`, and :func:`analyzer_from_snippets` (module ``snippet_analyzer``) builds
the recording-free analyzer of CSV and ``.npz`` snippets; both are importable from here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from spikeinterface.core.job_tools import fix_job_kwargs
from spikeinterface.core.sortinganalyzer import AnalyzerExtension, register_result_extension

from .arguments import check_flag
from .constants import DEFAULT_CI, DEFAULT_MIN_SPIKES, DEFAULT_N_BOOT, POLARITIES
from .decision import DecisionParams
from .errors import DemoModelWarning, SeroError
from .features import check_criterion
from .schema import property_values
from .sessions import check_rig_session
from .snippet_analyzer import analyzer_from_snippets
from .unit_decisions import (
    SEGMENT_STARTS,
    SPIKE_ARRAYS,
    compute_unit_decisions,
    inference_threads,
    stored_table,
    unit_table,
)
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
    "compute_unit_decisions",
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
    rig_session : dict or None, default: None
        The session check of the session the recording belongs to
        (:func:`spikeinterface_sero.sessions.judge_session` on the session's cells' ``sero_rig_distance``;
        ``classify_files`` and ``sero classify`` judge it): a session unlike every validated rig makes its cells
        ``session_unlike_validated_rigs``, not reliable. None: the cells are judged alone.
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
        rig_session: dict | None = None,
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
            rig_session=check_rig_session(rig_session),
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
        table = _with_manual_labels(unit_table(self.data, analyzer.unit_ids), analyzer)  # a recompute keeps them
        self.data.update(stored_table(table))
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
            return _with_manual_labels(unit_table(self.data, self.sorting_analyzer.unit_ids), self.sorting_analyzer)
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
        starts = np.asarray(self.data.get(SEGMENT_STARTS, np.zeros(n_segments)), dtype=np.float64)
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
            self.data.update(stored_table(unit_table(self.data, self.sorting_analyzer.unit_ids)))

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
        data = {name: np.concatenate([old[name], new[name]]) for name in SPIKE_ARRAYS if name in old}
        data[SEGMENT_STARTS] = old[SEGMENT_STARTS]  # the same segments, the same times
        kept_table, new_table = unit_table(old, kept), unit_table(new, new_unit_ids)
        kept_table[MANUAL_LABEL] = self._get_data("units")[MANUAL_LABEL].reindex(kept).to_numpy()
        new_table[MANUAL_LABEL] = [manual.get(u, "") for u in new_unit_ids]
        table = pd.concat([kept_table, new_table]).reindex(all_units)
        data.update(stored_table(table))
        data["provenance"] = dict(self.data["provenance"])
        if disagreements:
            data["provenance"]["manual_label_merges"] = [
                *self.data["provenance"].get("manual_label_merges", []),
                *disagreements,
            ]
        _write_unit_properties(new_analyzer, table)
        return data


def _spike_data_of(data: dict, old_unit_ids, keep_unit_ids: list, new_unit_order: list | None = None) -> dict:
    """The stored data restricted to ``keep_unit_ids``, unit indices renumbered in ``new_unit_order``."""
    old_unit_ids = list(old_unit_ids)
    new_unit_order = list(keep_unit_ids) if new_unit_order is None else list(new_unit_order)
    old_index = np.asarray(data["spike_unit_index"], dtype=np.int64)
    keep = np.isin(old_index, [old_unit_ids.index(u) for u in keep_unit_ids])
    renumber = {old_unit_ids.index(u): new_unit_order.index(u) for u in keep_unit_ids}
    out = {name: np.asarray(data[name])[keep] for name in SPIKE_ARRAYS if name in data}  # earlier: no waveforms
    if SEGMENT_STARTS in data:
        out[SEGMENT_STARTS] = np.asarray(data[SEGMENT_STARTS], dtype=np.float64)
    out["spike_unit_index"] = np.array([renumber[int(i)] for i in old_index[keep]], dtype=np.int64)
    out.update(stored_table(unit_table(data, old_unit_ids).loc[keep_unit_ids]))
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
