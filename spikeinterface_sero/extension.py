"""The ``serotonergic`` SortingAnalyzer extension: one more step in a SpikeInterface workflow.

>>> import spikeinterface_sero as sero          # registers the extension
>>> analyzer = sero.abf_to_analyzer("cell.abf")  # or any analyzer with 40 kHz, 1 ms + 3 ms waveforms
>>> units = analyzer.compute("serotonergic").get_data()         # the bundled demo model
>>> units = analyzer.compute("serotonergic", model_folder="my_model").get_data()
>>> units[["sero_label", "sero_probability", "sero_type"]]

Per unit (cell) it keeps a table (index unit_id): ``sero_label``, ``sero_probability`` and its 95 %
interval, ``sero_reliable`` (enough spikes and an interval clear of 0.5), ``n_spikes``, ``fraction_spikes_ser``, the firing features (Elephant), the classical-criteria
label and ``sero_type`` (typical / atypical); per spike the consensus P(SER) and every member's output.
It mirrors ``sero_label`` and ``sero_probability`` (and ``sero_type``) into sorting properties so that Phy,
spikeinterface-gui and neuroconv see them without this package.

``method="criteria"`` classifies with the classical criteria alone (wide spike, slow and regular firing),
the baseline the CNN is compared with.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import warnings

import numpy as np
import pandas as pd
from spikeinterface.core.sortinganalyzer import AnalyzerExtension, register_result_extension

from .errors import SeroError

__all__ = ["ComputeSerotonergic", "compute_serotonergic", "load_sorting_analyzer", "SERO_PROPERTIES"]

SERO_PROPERTIES = ("sero_label", "sero_probability", "sero_type")
_UNIT_COLUMNS = [
    "sero_label",
    "sero_probability",
    "sero_probability_low",
    "sero_probability_high",
    "sero_reliable",
    "n_spikes",
    "fraction_spikes_ser",
    "firing_rate_hz",
    "cv_isi",
    "lv",
    "udi_ms",
    "criteria_label",
    "sero_type",
    "sero_domain",
    "sero_method",
]


_WARN_DEMO: contextvars.ContextVar[bool] = contextvars.ContextVar("sero_warn_demo", default=True)


@contextlib.contextmanager
def demo_model_warning(enabled: bool):
    """Turn the "labels come from the DEMONSTRATION model" warning on or off in this context (callers that
    say it another way, e.g. a ``model`` column or a CLI note, switch it off)."""
    token = _WARN_DEMO.set(bool(enabled))
    try:
        yield
    finally:
        _WARN_DEMO.reset(token)


def _unit_seed(seed: int, unit_id) -> int:
    """A per-unit seed, so that a unit's interval does not depend on which other units are computed."""
    h = hashlib.sha256(f"{seed}:{unit_id}".encode()).digest()
    return int.from_bytes(h[:4], "little")


class ComputeSerotonergic(AnalyzerExtension):
    """Classify each unit as serotonergic or non-serotonergic from its action-current snippets.

    Parameters
    ----------
    model_folder : str or None
        A model folder (``model_info.json`` + members); ``None`` = the bundled **demonstration** model,
        trained on simulated recordings (not for scientific conclusions).
    method : "cnn" or "criteria"
        The CNN ensemble (default), or the classical criteria alone.
    trust_model : bool
        Allow a model that needs arbitrary code (Lambda layers, custom objects) to load.
    n_boot : int
        Bootstrap resamples for the 95 % interval of the cell probability.
    seed : int
        Seed of the bootstrap.
    min_udi_ms, max_rate_hz, max_cv : float or None
        Classical criteria (see :func:`spikeinterface_sero.features.criteria_classify`); None = the defaults.
    min_spikes : int
        A call is ``sero_reliable`` only with at least this many spikes and a 95 % interval that excludes
        0.5 (the bootstrap interval reflects the spread over the spikes there are, so it is optimistic for
        a handful of spikes; the paper's training cells had at least 15).
    polarity : "negative" or "positive"
        Polarity of the spikes for the UDI measurement; "positive" flips positive-going units (recorded in
        the params).
    flip_positive : bool
        For analyzers not in the paper's format (see :mod:`spikeinterface_sero.adapt`): flip the units whose
        spikes go up on their extremum channel (recorded in ``params["adaptation"]``).
    reextract : bool
        When the analyzer's waveforms are too short for 1 ms before and 3 ms after the trigger, recompute
        them from the recording with the window needed (deletes the extensions that depend on them).
    """

    extension_name = "serotonergic"
    depend_on = ["waveforms"]
    need_recording = False
    use_nodepipeline = False
    need_job_kwargs = False
    need_backward_compatibility_on_load = True  # normalise the reloaded unit table (zarr gives nullable dtypes)

    def _set_params(
        self,
        model_folder=None,
        method: str = "cnn",
        trust_model: bool = False,
        n_boot: int = 1000,
        seed: int = 0,
        min_udi_ms=None,
        max_rate_hz=None,
        max_cv=None,
        polarity: str = "negative",
        flip_positive: bool = False,
        reextract: bool = False,
        min_spikes: int = 20,
    ):
        if method not in ("cnn", "criteria"):
            raise SeroError(f"method must be 'cnn' or 'criteria', not {method!r}.")
        if polarity not in ("negative", "positive"):
            raise SeroError(f"polarity must be 'negative' or 'positive', not {polarity!r}.")
        if int(n_boot) < 0:
            raise SeroError(f"n_boot must be >= 0, not {n_boot!r}.")
        if int(min_spikes) < 1:
            raise SeroError(f"min_spikes must be >= 1, not {min_spikes!r}.")
        params = dict(
            model_folder=None if model_folder is None else str(model_folder),
            method=method,
            trust_model=bool(trust_model),
            n_boot=int(n_boot),
            seed=int(seed),
            min_udi_ms=None if min_udi_ms is None else float(min_udi_ms),
            max_rate_hz=None if max_rate_hz is None else float(max_rate_hz),
            max_cv=None if max_cv is None else float(max_cv),
            polarity=polarity,
            flip_positive=bool(flip_positive),
            reextract=bool(reextract),
            min_spikes=int(min_spikes),
        )
        if method == "cnn":
            ensemble = self._load_ensemble(params)
            params["model_description"] = str(ensemble.info.get("description", ""))[:500]
            params["model_is_demo"] = bool(ensemble.is_demo)
            params["model_kernels"] = [int(k) for k in ensemble.kernels]
        # any analyzer (adapt.py): what is resampled, flipped, re-aligned; a re-extraction of the waveforms
        # happens here, before anything of this extension is written
        adapted = _adaptation(self.sorting_analyzer, params, reextract=params["reextract"], info_only=True)
        params["adaptation"] = adapted[2]
        # out-of-domain snippets were just built: keep them for _run instead of adapting twice
        self._adapted = adapted if adapted[0] is not None else None
        return params

    # ------------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _load_ensemble(params):
        from .model import load_model

        return load_model(params["model_folder"], trust=params["trust_model"])

    def _criteria_kwargs(self) -> dict:
        return {k: self.params[k] for k in ("min_udi_ms", "max_rate_hz", "max_cv") if self.params.get(k) is not None}

    def _classify(self, analyzer) -> dict:
        """Everything the extension stores, computed on ``analyzer`` (used by run, merge and split)."""
        from .features import add_sero_type, criteria_classify, features_from_sorting

        adapted = getattr(self, "_adapted", None) if analyzer is self.sorting_analyzer else None
        self._adapted = None
        snippets, domain = _analyzer_snippets(analyzer, self.params, adapted)
        unit_ids = list(analyzer.unit_ids)
        by_unit = {u: snippets.waveforms[snippets.unit_ids == str(u)] for u in unit_ids}
        durations = [
            analyzer.get_num_samples(s) / analyzer.sampling_frequency for s in range(analyzer.get_num_segments())
        ]
        # snippets come oriented negative-going (flipped when polarity="positive")
        feats = features_from_sorting(analyzer.sorting, by_unit, durations, polarity="negative")
        feats = criteria_classify(feats, **self._criteria_kwargs())
        n = len(snippets)
        if self.params["method"] == "cnn":
            from .model import cell_decisions

            ensemble = self._load_ensemble(self.params)
            members = (
                ensemble.predict_members(snippets.waveforms).astype(np.float32)
                if n
                else np.zeros((0, len(ensemble.kernels), 2), np.float32)
            )
            consensus = members.mean(axis=1)
            spike_p = (consensus[:, 0] / np.maximum(consensus.sum(axis=1), 1e-12)).astype(np.float32)
            rows = []
            for u in unit_ids:
                m = snippets.unit_ids == str(u)
                if not m.any():
                    rows.append(
                        pd.DataFrame(
                            {
                                "sero_label": ["undetermined"],
                                "sero_probability": [np.nan],
                                "sero_probability_low": [np.nan],
                                "sero_probability_high": [np.nan],
                                "n_spikes": [0],
                                "fraction_spikes_ser": [np.nan],
                            },
                            index=[u],
                        )
                    )
                    continue
                t = cell_decisions(
                    consensus[m],
                    np.full(int(m.sum()), str(u)),
                    n_boot=self.params["n_boot"],
                    seed=_unit_seed(self.params["seed"], u),
                )
                t.index = [u]
                rows.append(t)
            table = pd.concat(rows)
        else:
            members = np.zeros((n, 0, 2), np.float32)
            spike_p = np.full(n, np.nan, np.float32)
            table = pd.DataFrame(index=unit_ids)
            table["sero_label"] = feats["criteria_label"].to_numpy()
            table["sero_probability"] = np.nan
            table["sero_probability_low"] = np.nan
            table["sero_probability_high"] = np.nan
            table["n_spikes"] = [int((snippets.unit_ids == str(u)).sum()) for u in unit_ids]
            table["fraction_spikes_ser"] = np.nan
        table.index = pd.Index(unit_ids, name="unit_id")
        for col in ("firing_rate_hz", "cv_isi", "lv", "udi_ms", "criteria_label"):
            table[col] = feats.loc[unit_ids, col].to_numpy()
        table = add_sero_type(table, cnn_col="sero_label", criteria_col="criteria_label")
        # the bootstrap interval only reflects the spread over the spikes there are: with few spikes it is
        # optimistic, so a call is "reliable" only with enough spikes and an interval clear of 0.5
        enough = table["n_spikes"].to_numpy() >= self.params.get("min_spikes", 20)
        low = table["sero_probability_low"].to_numpy(dtype=float)
        high = table["sero_probability_high"].to_numpy(dtype=float)
        table["sero_reliable"] = enough & ((low > 0.5) | (high < 0.5))
        table["sero_domain"] = domain
        table["sero_method"] = self.params["method"]
        table = table[[c for c in _UNIT_COLUMNS if c in table.columns]]
        table["n_spikes"] = table["n_spikes"].astype("int64")
        return dict(
            units=table,
            spike_probability=spike_p,
            member_outputs=members,
            spike_unit_index=np.array(
                [unit_ids.index(u) if u in unit_ids else -1 for u in _as_unit_keys(snippets.unit_ids, unit_ids)],
                dtype=np.int64,
            ),
        )

    def _write_properties(self, analyzer, table: pd.DataFrame) -> None:
        units = list(analyzer.unit_ids)
        t = table.reindex(units)
        # fixed-width unicode, not object: zarr refuses to store object-dtype properties
        labels = np.asarray([str(v) for v in t["sero_label"]], dtype=str)
        probs = np.asarray(t["sero_probability"], dtype=np.float64)
        types = np.asarray([str(v) for v in t["sero_type"]], dtype=str)
        domains = np.asarray([str(v) for v in t["sero_domain"]], dtype=str)
        for key, values in (
            ("sero_label", labels),
            ("sero_probability", probs),
            ("sero_type", types),
            ("sero_domain", domains),
        ):
            try:
                analyzer.set_sorting_property(key, values)
            except Exception:  # read-only analyzers (e.g. loaded lazily): keep the result in the extension only
                analyzer.sorting.set_property(key, values)

    def _handle_backward_compatibility_on_load(self):
        units = self.data.get("units")
        if isinstance(units, pd.DataFrame):
            self.data["units"] = _normalise_units_table(units, list(self.sorting_analyzer.unit_ids))

    # ------------------------------------------------------------------------------------------- API
    def _run(self, verbose=False, **job_kwargs):
        analyzer = self.sorting_analyzer
        self.data = self._classify(analyzer)
        self._write_properties(analyzer, self.data["units"])
        if self.params["method"] == "cnn" and self.params.get("model_is_demo") and _WARN_DEMO.get():
            warnings.warn(
                "spikeinterface-sero: these labels come from the bundled DEMONSTRATION model, trained on "
                "simulated recordings; they are not for scientific conclusions. Pass "
                "model_folder=<your or the published model> for real use.",
                stacklevel=3,
            )

    def _get_data(self, outputs: str = "units"):
        """``outputs="units"``: the per-unit table; ``"spikes"``: one row per classified spike (unit_id,
        segment_index, sample_index, p_ser); ``"members"``: (n_spikes, n_members, 2) member outputs."""
        if outputs == "units":
            return self.data["units"]
        if outputs == "members":
            return self.data["member_outputs"]
        if outputs == "spikes":
            analyzer = self.sorting_analyzer
            spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
            units = np.asarray(analyzer.unit_ids)
            return pd.DataFrame(
                {
                    "unit_id": units[spikes["unit_index"]],
                    "segment_index": spikes["segment_index"],
                    "sample_index": spikes["sample_index"],
                    "p_ser": self.data["spike_probability"],
                }
            )
        raise SeroError(f"outputs must be 'units', 'spikes' or 'members', not {outputs!r}.")

    def _spike_mask(self, keep_unit_ids) -> np.ndarray:
        units = np.asarray(self.sorting_analyzer.unit_ids)
        idx = np.asarray(self.data["spike_unit_index"])
        return (
            np.isin(units[idx], np.asarray(list(keep_unit_ids), dtype=units.dtype))
            if idx.size
            else np.zeros(0, dtype=bool)
        )

    def _select_units_extension_data(self, unit_ids):
        mask = self._spike_mask(unit_ids)
        new_units = list(unit_ids)
        old_units = np.asarray(self.sorting_analyzer.unit_ids)
        old_idx = np.asarray(self.data["spike_unit_index"])[mask]
        remap = {u: i for i, u in enumerate(new_units)}
        new_idx = np.array([remap[u] for u in old_units[old_idx]], dtype=np.int64)
        table = self.data["units"].loc[new_units].copy()
        table.index.name = "unit_id"
        return dict(
            units=table,
            spike_probability=self.data["spike_probability"][mask],
            member_outputs=self.data["member_outputs"][mask],
            spike_unit_index=new_idx,
        )

    # SpikeInterface 0.104 name of the same hook
    _select_extension_data = _select_units_extension_data

    def _select_channels_extension_data(self, channel_ids):
        return self.data

    def _merge_extension_data(
        self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask=None, verbose=False, **job_kwargs
    ):
        data = self._classify(new_sorting_analyzer)
        self._write_properties(new_sorting_analyzer, data["units"])
        return data

    def _split_extension_data(self, split_units, new_unit_ids, new_sorting_analyzer, verbose=False, **job_kwargs):
        data = self._classify(new_sorting_analyzer)
        self._write_properties(new_sorting_analyzer, data["units"])
        return data


_STR_COLUMNS = ("sero_label", "criteria_label", "sero_type", "sero_domain", "sero_method")


def _normalise_units_table(units: pd.DataFrame, unit_ids: list) -> pd.DataFrame:
    """The unit table as computed: index ``unit_id`` with the analyzer's unit ids, plain numpy dtypes
    (binary folders give CSV-parsed types, zarr gives pandas nullable ones)."""
    out = units[
        [c for c in _UNIT_COLUMNS if c in units.columns] + [c for c in units.columns if c not in _UNIT_COLUMNS]
    ].copy()
    lookup = {str(u): u for u in unit_ids}
    out.index = pd.Index([lookup.get(str(u), u) for u in out.index], name="unit_id")
    for col in out.columns:
        if col in _STR_COLUMNS:
            out[col] = np.asarray([str(v) for v in out[col]], dtype=object)
        elif col == "n_spikes":
            out[col] = out[col].astype("int64")
        elif col == "sero_reliable":
            out[col] = np.asarray([str(v).strip().lower() in ("true", "1", "1.0") for v in out[col]], dtype=bool)
        else:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out


def _as_unit_keys(spike_units: np.ndarray, unit_ids: list):
    """Map the snippets' string unit ids back to the analyzer's unit ids (which may be ints)."""
    lookup = {str(u): u for u in unit_ids}
    return [lookup.get(str(s), s) for s in spike_units]


def _adaptation(analyzer, params, reextract: bool = False, info_only: bool = False):
    """(Snippets, domain, adaptation info or None): direct when the waveforms are the paper's format (160
    samples at 40 kHz, trigger at 40, not voltage); otherwise :func:`spikeinterface_sero.adapt.
    adapt_analyzer_snippets` (extremum channel, resampling to 40 kHz, re-alignment on the trigger)."""
    from .adapt import adapt_analyzer_snippets, is_paper_format
    from .snippets import snippets_from_analyzer

    if is_paper_format(analyzer):
        if info_only:
            return None, "in_domain", None
        sn = snippets_from_analyzer(analyzer)
        if params.get("polarity") == "positive":
            sn.waveforms = -sn.waveforms
        return sn, "in_domain", None
    return adapt_analyzer_snippets(
        analyzer,
        polarity=params.get("polarity", "negative"),
        flip_positive=bool(params.get("flip_positive", False)),
        reextract=reextract,
    )


def _analyzer_snippets(analyzer, params, adapted=None):
    """(Snippets in the paper's format, domain: one label, or one per unit in ``analyzer.unit_ids`` order).
    Out-of-domain input gives one OutOfDomainWarning per call."""
    from .adapt import OutOfDomainWarning, out_of_domain_message

    sn, domain, info = adapted if adapted is not None else _adaptation(analyzer, params)
    if info is None:
        return sn, domain
    if domain != "in_domain":
        warnings.warn(out_of_domain_message(info), OutOfDomainWarning, stacklevel=4)
    return sn, np.array([info["unit_domains"][str(u)] for u in analyzer.unit_ids], dtype=object)


register_result_extension(ComputeSerotonergic)
compute_serotonergic = ComputeSerotonergic.function_factory()


def load_sorting_analyzer(folder, load_extensions: bool = True, format: str = "auto", **kwargs):
    """``spikeinterface.core.load_sorting_analyzer`` with the ``serotonergic`` extension registered
    (importing this package registers it; this wrapper makes the dependency explicit)."""
    from spikeinterface.core import load_sorting_analyzer as _load

    return _load(folder, load_extensions=load_extensions, format=format, **kwargs)
