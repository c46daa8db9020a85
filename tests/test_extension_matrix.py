"""The ``serotonergic`` extension through every SortingAnalyzer operation, format and sparsity.

Modelled on SpikeInterface's ``AnalyzerExtensionCommonTestSuite`` and its core analyzer tests (written
anew: their test files are not installed). Two analyzers:

* **paper**: a 3-channel .abf file (40 kHz, pA, one simulated cell per channel) read by
  ``abf_to_analyzer``; waveforms 1 ms + 3 ms; the sparse variant uses an explicit ``ChannelSparsity`` in
  which a unit's main channel is not at its global channel index within its sparse channels;
* **adapted**: a SpikeInterface ground-truth recording (24 kHz, µV, 4 channels), waveforms 2 ms + 4 ms;
  the sparse variant keeps each unit's 2 best channels.

Each is built in memory, binary_folder and zarr, dense and sparse, and put through compute, recompute
with its own params, delete, select, remove, soft and hard merge, split, save_as to every format and
reload (eager, ``load_extensions=False``, lazy, read-only). After every operation the unit table has one
row per unit with the kept units unchanged, the per-spike table one row per ``random_spikes`` spike, the
text columns survive every format, and the sorting properties follow.

Then invariances: renaming units (also to ids that are other channels' ids), sparse == dense, each unit
read on its main channel; and the parameters refused at ``compute()`` time (n_boot, n_jobs).

Model: the bundled demo model (the default); ``n_boot=20`` to stay fast.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from spikeinterface.core import (
    ChannelSparsity,
    NumpySorting,
    create_sorting_analyzer,
    generate_ground_truth_recording,
    load_sorting_analyzer,
)
from spikeinterface.core.sortinganalyzer import get_extension_class

import spikeinterface_sero as sero  # registers the extension
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.errors import SeroError

# the demo model's "DEMONSTRATION" warning and the adapted analyzer's out-of-domain warning
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N_BOOT = 20
PARAMS = dict(n_boot=N_BOOT)
FORMATS = ("memory", "binary_folder", "zarr")
LABELS = ("serotonergic", "non_serotonergic")
TEXT_COLUMNS = ("sero_label", "criteria_label", "sero_type", "sero_domain", "sero_method")
UNIT_COLUMNS = (
    "sero_label",
    "sero_probability",
    "sero_probability_low",
    "sero_probability_high",
    "sero_reliable",
    "n_spikes",
    "fraction_spikes_ser",
    "criteria_label",
    "sero_type",
    "sero_domain",
    "sero_method",
)
PROPERTIES = ("sero_label", "sero_probability", "sero_type")
SPIKE_KEYS = ["unit_id", "segment_index", "sample_index"]
HARD_RTOL = 1e-5  # recomputed (not copied) results: same spikes, same model, maybe another batch grouping

# paper analyzer: units "0", "1", "2" on channels "0", "1", "2". Unit "1" has its main channel in sparse
# column 0 (global index 1 is channel "2"); unit "2" has it in column 1 (global index 2 is out of range).
PAPER_SPARSITY_MASK = np.array([[1, 0, 1], [0, 1, 1], [0, 1, 1]], dtype=bool)
ADAPTED_SPARSITY = dict(method="best_channels", num_channels=2)


# --------------------------------------------------------------------------------------------- sources
@pytest.fixture(scope="module")
def paper_abf(tmp_path_factory):
    """A 3-channel 40 kHz .abf file in pA, one simulated cell (SER, NSER, atypical SER) per channel."""
    cells = [("serotonergic", 4.0), ("non_serotonergic", 8.0), ("atypical_serotonergic", 6.0)]
    sims = [
        simulate_drn_recording(cell_type, duration_s=4.0, seed=i, firing_rate_hz=rate)
        for i, (cell_type, rate) in enumerate(cells)
    ]
    data = np.stack([s.traces for s in sims], axis=1)
    return write_abf(tmp_path_factory.mktemp("abf") / "three_cells.abf", data, 40_000.0, units="pA")


@pytest.fixture(scope="module")
def paper_base(paper_abf):
    """``abf_to_analyzer``'s analyzer (never computed on: tests copy it)."""
    analyzer = sero.abf_to_analyzer(paper_abf)
    assert analyzer.sampling_frequency == 40_000.0
    assert [str(u) for u in analyzer.unit_ids] == ["0", "1", "2"]
    assert [str(c) for c in analyzer.channel_ids] == ["0", "1", "2"]
    assert list(analyzer.recording.get_property("physical_unit")) == ["pA"] * 3
    assert analyzer.get_extension("waveforms").nbefore == 40 and analyzer.get_extension("waveforms").nafter == 120
    return analyzer


@pytest.fixture(scope="module")
def adapted_source(tmp_path_factory):
    """(sorting, recording): 24 kHz, µV, 4 channels, 3 units: not the paper's format. The recording is saved
    to a binary folder so that analyzers reloaded from disk keep it (a generated recording does not)."""
    recording, sorting = generate_ground_truth_recording(
        durations=[4.0], sampling_frequency=24_000.0, num_channels=4, num_units=3, seed=11
    )
    recording.set_property("physical_unit", ["uV"] * recording.get_num_channels())
    recording = recording.save(folder=tmp_path_factory.mktemp("adapted") / "recording", progress_bar=False)
    return sorting, recording


def _folder(tmp_path, fmt, name):
    if fmt == "memory":
        return None
    return tmp_path / (f"{name}.zarr" if fmt == "zarr" else name)


def _analyzer(sorting, recording, *, fmt="memory", folder=None, sparsity=None, sparse=False, window=(1.0, 3.0)):
    kwargs = dict(format=fmt, folder=folder, return_in_uV=True)
    if sparsity is not None:
        kwargs["sparsity"] = sparsity
    elif sparse:
        kwargs.update(sparse=True, sparsity_kwargs=dict(ADAPTED_SPARSITY))
    else:
        kwargs["sparse"] = False
    analyzer = create_sorting_analyzer(sorting, recording, **kwargs)
    analyzer.compute(
        ["random_spikes", "waveforms"],
        extension_params={
            "random_spikes": dict(method="all"),
            "waveforms": dict(ms_before=window[0], ms_after=window[1]),
        },
    )
    return analyzer


def _build(kind, fmt, sparse, folder, paper_base, adapted_source):
    if kind == "paper":
        sparsity = ChannelSparsity(PAPER_SPARSITY_MASK, paper_base.unit_ids, paper_base.channel_ids) if sparse else None
        return _analyzer(paper_base.sorting, paper_base.recording, fmt=fmt, folder=folder, sparsity=sparsity)
    sorting, recording = adapted_source
    return _analyzer(sorting, recording, fmt=fmt, folder=folder, sparse=sparse, window=(2.0, 4.0))


def _compute(analyzer, **params):
    """compute("serotonergic") in a module fixture, its warnings recorded and dropped (test marks do not
    filter warnings there, and importing elephant.spade sets a global 'once' filter for UserWarning)."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return analyzer.compute("serotonergic", **dict(PARAMS, **params))


@dataclass
class Case:
    kind: str
    fmt: str
    sparse: bool
    analyzer: object
    units: pd.DataFrame  # the unit table right after compute
    spikes: pd.DataFrame  # the per-spike table right after compute
    params: dict

    @property
    def unit_ids(self):
        return list(self.analyzer.unit_ids)


COMBOS = [(kind, fmt, sparse) for kind in ("paper", "adapted") for fmt in FORMATS for sparse in (False, True)]


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{k}-{f}-{'sparse' if s else 'dense'}" for k, f, s in COMBOS])
def case(request, tmp_path_factory, paper_base, adapted_source):
    kind, fmt, sparse = request.param
    folder = _folder(tmp_path_factory.mktemp(f"{kind}_{fmt}"), fmt, "analyzer")
    analyzer = _build(kind, fmt, sparse, folder, paper_base, adapted_source)
    assert analyzer.is_sparse() == sparse
    ext = _compute(analyzer)
    return Case(
        kind, fmt, sparse, analyzer, ext.get_data().copy(), ext.get_data(outputs="spikes").copy(), dict(ext.params)
    )


@pytest.fixture(scope="module")
def paper_reference(paper_base):
    """The dense in-memory paper analyzer, computed."""
    analyzer = _analyzer(paper_base.sorting, paper_base.recording)
    _compute(analyzer)
    return analyzer


@pytest.fixture(scope="module")
def adapted_reference(adapted_source):
    analyzer = _analyzer(*adapted_source, window=(2.0, 4.0))
    _compute(analyzer)
    return analyzer


# --------------------------------------------------------------------------------------------- checks
def _random_spike_vector(analyzer):
    return analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]


def _random_spike_counts(analyzer) -> dict:
    counts = np.bincount(_random_spike_vector(analyzer)["unit_index"], minlength=analyzer.get_num_units())
    return {u: int(n) for u, n in zip(analyzer.unit_ids, counts)}


def _random_spike_keys(analyzer) -> list:
    spikes = _random_spike_vector(analyzer)
    units = np.asarray(analyzer.unit_ids)
    return sorted(
        zip(
            [str(u) for u in units[spikes["unit_index"]]],
            spikes["segment_index"].astype(int).tolist(),
            spikes["sample_index"].astype(int).tolist(),
        )
    )


def _keyed(spikes: pd.DataFrame) -> pd.DataFrame:
    """The per-spike table indexed by (unit_id as str, segment_index, sample_index)."""
    out = spikes.copy()
    out["unit_id"] = out["unit_id"].astype(str)
    out["segment_index"] = out["segment_index"].astype(np.int64)
    out["sample_index"] = out["sample_index"].astype(np.int64)
    return out.set_index(SPIKE_KEYS).sort_index()


def assert_units_equal(actual: pd.DataFrame, expected: pd.DataFrame, *, exact: bool = True, rtol: float = 1e-9):
    """Same unit ids, columns and values; numeric columns keep their dtype, text columns stay plain str."""
    assert [str(u) for u in actual.index] == [str(u) for u in expected.index]
    assert actual.index.name == expected.index.name
    assert list(actual.columns) == list(expected.columns)
    for column in expected.columns:
        if column in TEXT_COLUMNS:
            bad = [v for v in actual[column] if not isinstance(v, str)]
            assert not bad, f"{column}: non-text values {bad!r}"
        else:
            assert actual[column].dtype == expected[column].dtype, (
                column,
                actual[column].dtype,
                expected[column].dtype,
            )
    pd.testing.assert_frame_equal(
        actual.set_axis([str(u) for u in actual.index]),
        expected.set_axis([str(u) for u in expected.index]),
        check_dtype=False,
        check_index_type=False,
        check_exact=exact,
        rtol=rtol,
        atol=0.0 if exact else 1e-7,
    )


def assert_spikes_equal(actual: pd.DataFrame, expected: pd.DataFrame, *, exact: bool = True):
    assert list(actual.columns) == list(expected.columns)
    a, e = _keyed(actual), _keyed(expected)
    assert list(a.index) == list(e.index)
    np.testing.assert_allclose(
        a["p_ser"].to_numpy(float), e["p_ser"].to_numpy(float), rtol=0, atol=0 if exact else 1e-5, equal_nan=True
    )


def assert_data_equal(actual_ext, expected_ext):
    """Every entry of ``ext.data`` (arrays, tables, dicts) equal after a copy or a round trip."""
    assert set(actual_ext.data) == set(expected_ext.data)
    for name, expected in expected_ext.data.items():
        actual = actual_ext.data[name]
        if isinstance(expected, pd.DataFrame):
            assert isinstance(actual, pd.DataFrame), name
            assert_units_equal(actual, expected)
        elif isinstance(expected, dict):
            assert json.loads(json.dumps(actual, default=str)) == json.loads(json.dumps(expected, default=str)), name
        else:
            np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=name)


def assert_n_spikes(units: pd.DataFrame, counts: dict) -> None:
    """n_spikes: every ``random_spikes`` spike of a unit whose seal stayed stable, else those of its stable
    stretch (docs/seal.md: a merge of two cells is a second cell)."""
    for unit_id, row in units.iterrows():
        if row["sero_seal"] in ("stable", "not_watched"):
            assert row["n_spikes"] == counts[unit_id], (unit_id, row["sero_seal"])
        else:
            assert 0 < row["n_spikes"] <= counts[unit_id], (unit_id, row["sero_seal"])


def assert_table_shape(analyzer, ext):
    """One unit row per unit, n_spikes as :func:`assert_n_spikes`, one spike row per random_spikes spike."""
    units = ext.get_data()
    assert [str(u) for u in units.index] == [str(u) for u in analyzer.unit_ids]
    for column in UNIT_COLUMNS:
        assert column in units.columns, column
    assert_n_spikes(units, _random_spike_counts(analyzer))
    assert set(units["sero_label"]) <= set(LABELS)
    assert set(units["sero_method"]) == {"cnn"}
    p = units["sero_probability"].to_numpy(float)
    assert np.all((0 <= p) & (p <= 1))
    assert np.all(units["sero_probability_low"].to_numpy(float) <= p + 1e-12)
    assert np.all(p <= units["sero_probability_high"].to_numpy(float) + 1e-12)
    spikes = ext.get_data(outputs="spikes")
    assert len(spikes) == analyzer.get_extension("random_spikes").get_data().size
    assert sorted(zip(spikes["unit_id"].astype(str), spikes["segment_index"], spikes["sample_index"])) == (
        _random_spike_keys(analyzer)
    )


def assert_properties(analyzer, units: pd.DataFrame):
    """The sorting properties mirror the unit table, unit for unit."""
    sorting = analyzer.sorting
    table = units.set_axis([str(u) for u in units.index]).loc[[str(u) for u in analyzer.unit_ids]]
    for key in PROPERTIES:
        assert key in sorting.get_property_keys(), key
    assert [str(v) for v in sorting.get_property("sero_label")] == table["sero_label"].tolist()
    assert [str(v) for v in sorting.get_property("sero_type")] == table["sero_type"].tolist()
    np.testing.assert_allclose(
        np.asarray(sorting.get_property("sero_probability"), dtype=float),
        table["sero_probability"].to_numpy(float),
        rtol=0,
        atol=1e-12,
        equal_nan=True,
    )


def assert_same_as_case(analyzer, case: Case, *, exact=True):
    ext = analyzer.get_extension("serotonergic")
    assert ext is not None
    assert ext.params == case.params
    assert_units_equal(ext.get_data(), case.units, exact=exact, rtol=1e-9 if exact else HARD_RTOL)
    assert_spikes_equal(ext.get_data(outputs="spikes"), case.spikes, exact=exact)
    assert_properties(analyzer, ext.get_data())


def _copy(case: Case, tmp_path, name="copy"):
    return case.analyzer.save_as(format=case.fmt, folder=_folder(tmp_path, case.fmt, name))


def _reloaded(analyzer, **kwargs):
    return load_sorting_analyzer(analyzer.folder, **kwargs)


# --------------------------------------------------------------------------------------------- matrix
def test_compute(case):
    ext = case.analyzer.get_extension("serotonergic")
    assert_table_shape(case.analyzer, ext)
    assert_properties(case.analyzer, ext.get_data())
    json.dumps(ext.params)  # SpikeInterface stores params as JSON
    if case.kind == "paper":
        assert set(ext.get_data()["sero_domain"]) == {"in_domain"}
    else:
        assert "in_domain" not in set(ext.get_data()["sero_domain"])


def test_recompute_with_own_params(case, tmp_path):
    """``analyzer.compute("serotonergic", **ext.params)``: the params can be fed back, same result."""
    analyzer = _copy(case, tmp_path)
    params = dict(analyzer.get_extension("serotonergic").params)
    ext = analyzer.compute("serotonergic", **params)
    assert ext.params == case.params
    assert_units_equal(ext.get_data(), case.units, exact=False, rtol=HARD_RTOL)
    assert_spikes_equal(ext.get_data(outputs="spikes"), case.spikes, exact=False)
    assert_properties(analyzer, ext.get_data())
    if case.fmt != "memory":
        assert_same_as_case(_reloaded(analyzer), case, exact=False)


def test_delete_and_recompute_parent(case, tmp_path):
    analyzer = _copy(case, tmp_path)
    analyzer.delete_extension("serotonergic")
    assert not analyzer.has_extension("serotonergic")
    assert analyzer.get_extension("serotonergic") is None
    if case.fmt != "memory":
        assert not _reloaded(analyzer).has_extension("serotonergic")
    ext = analyzer.compute("serotonergic", **PARAMS)
    assert_units_equal(ext.get_data(), case.units, exact=False, rtol=HARD_RTOL)
    # recomputing the parent drops the stale result
    analyzer.compute("waveforms", **analyzer.get_extension("waveforms").params)
    assert not analyzer.has_extension("serotonergic")


def test_select_and_remove_units(case, tmp_path):
    u0, u1, u2 = case.unit_ids
    keep = [u0, u2]
    selected = case.analyzer.select_units(keep, format=case.fmt, folder=_folder(tmp_path, case.fmt, "selected"))
    removed = case.analyzer.remove_units([u1], format=case.fmt, folder=_folder(tmp_path, case.fmt, "removed"))
    expected_units = case.units.loc[keep]
    expected_spikes = case.spikes[case.spikes["unit_id"].astype(str).isin([str(u0), str(u2)])]
    for sub in (selected, removed):
        assert [str(u) for u in sub.unit_ids] == [str(u0), str(u2)]
        ext = sub.get_extension("serotonergic")
        assert_table_shape(sub, ext)
        assert_units_equal(ext.get_data(), expected_units)
        assert_spikes_equal(ext.get_data(outputs="spikes"), expected_spikes)
        assert_properties(sub, ext.get_data())
        if case.fmt != "memory":
            back = _reloaded(sub)
            assert_data_equal(back.get_extension("serotonergic"), ext)
            assert_properties(back, back.get_extension("serotonergic").get_data())


@pytest.mark.parametrize("merging_mode", ["soft", "hard"])
def test_merge_units(case, tmp_path, merging_mode):
    u0, u1, u2 = case.unit_ids
    merged, new_ids = case.analyzer.merge_units(
        [[u1, u2]],
        merging_mode=merging_mode,
        sparsity_overlap=0.0,
        return_new_unit_ids=True,
        format=case.fmt,
        folder=_folder(tmp_path, case.fmt, "merged"),
    )
    (new,) = new_ids
    ext = merged.get_extension("serotonergic")
    assert ext is not None
    assert ext.params == case.params
    assert_table_shape(merged, ext)
    units = ext.get_data()
    counts = _random_spike_counts(merged)
    before = _random_spike_counts(case.analyzer)
    assert counts[new] == before[u1] + before[u2]  # random_spikes "all"
    exact = merging_mode == "soft"  # soft: the kept unit is copied; hard: everything is recomputed
    assert_units_equal(units.loc[[u0]], case.units.loc[[u0]], exact=exact, rtol=1e-9 if exact else HARD_RTOL)
    kept = ext.get_data(outputs="spikes")
    assert_spikes_equal(
        kept[kept["unit_id"].astype(str) == str(u0)],
        case.spikes[case.spikes["unit_id"].astype(str) == str(u0)],
        exact=exact,
    )
    assert_properties(merged, units)
    if case.fmt != "memory":
        back = _reloaded(merged)
        assert_data_equal(back.get_extension("serotonergic"), ext)
        assert_properties(back, back.get_extension("serotonergic").get_data())


def test_split_units(case, tmp_path):
    u0, u1, u2 = case.unit_ids
    n = case.analyzer.sorting.get_unit_spike_train(u1).size
    indices = np.arange(n)
    split, new_ids = case.analyzer.split_units(
        {u1: [indices[indices % 2 == 0], indices[indices % 2 == 1]]},
        return_new_unit_ids=True,
        format=case.fmt,
        folder=_folder(tmp_path, case.fmt, "split"),
    )
    new = [u for group in new_ids for u in group]
    assert len(new) == 2
    ext = split.get_extension("serotonergic")
    assert ext is not None
    assert ext.params == case.params
    assert_table_shape(split, ext)
    units = ext.get_data()
    counts = _random_spike_counts(split)
    assert [counts[u] for u in new] == [(n + 1) // 2, n // 2]
    assert_n_spikes(units.loc[new], counts)
    assert_units_equal(units.loc[[u0, u2]], case.units.loc[[u0, u2]])
    spikes = ext.get_data(outputs="spikes")
    keep = [str(u0), str(u2)]
    assert_spikes_equal(
        spikes[spikes["unit_id"].astype(str).isin(keep)], case.spikes[case.spikes["unit_id"].astype(str).isin(keep)]
    )
    # paper format: the split units' spikes are the parent's spikes, read on the same channel, so the same
    # P(SER) per spike (an adapted unit's trigger level depends on all its spikes: not compared)
    main_before = case.analyzer.get_main_channels(outputs="id", with_dict=True)
    main_after = split.get_main_channels(outputs="id", with_dict=True)
    if case.kind == "paper":
        assert all(str(main_after[u]) == str(main_before[u1]) for u in new)
        parent = _keyed(case.spikes).xs(str(u1), level="unit_id")["p_ser"]
        children = pd.concat(_keyed(spikes).xs(str(u), level="unit_id")["p_ser"] for u in new).sort_index()
        np.testing.assert_allclose(children.to_numpy(float), parent.to_numpy(float), atol=1e-5)
    assert_properties(split, units)
    if case.fmt != "memory":
        back = _reloaded(split)
        assert_data_equal(back.get_extension("serotonergic"), ext)
        assert_properties(back, back.get_extension("serotonergic").get_data())


@pytest.mark.parametrize("target", FORMATS)
def test_save_as(case, tmp_path, target):
    saved = case.analyzer.save_as(format=target, folder=_folder(tmp_path, target, "saved"))
    assert_same_as_case(saved, case)
    assert_data_equal(saved.get_extension("serotonergic"), case.analyzer.get_extension("serotonergic"))
    if target != "memory":
        back = _reloaded(saved)
        assert_same_as_case(back, case)
        assert_data_equal(back.get_extension("serotonergic"), case.analyzer.get_extension("serotonergic"))
        # the reloaded extension's params can be fed back
        again = back.compute("serotonergic", **back.get_extension("serotonergic").params)
        assert_units_equal(again.get_data(), case.units, exact=False, rtol=HARD_RTOL)


@pytest.mark.parametrize(
    "load_kwargs",
    [dict(), dict(load_extensions=False), dict(lazy=True), dict(read_only=True)],
    ids=["eager", "load_extensions_false", "lazy", "read_only"],
)
def test_reload_from_disk(case, load_kwargs, tmp_path):
    folder = case.analyzer.folder
    if case.fmt == "memory":  # an in-memory analyzer is reloaded from the folder it is saved to
        folder = tmp_path / "saved"
        case.analyzer.save_as(format="binary_folder", folder=folder)
    back = load_sorting_analyzer(folder, **load_kwargs)
    assert back.has_extension("serotonergic")
    ext = back.get_extension("serotonergic")  # loads it when load_extensions=False
    assert ext is not None
    assert_same_as_case(back, case)
    assert_data_equal(ext, case.analyzer.get_extension("serotonergic"))
    assert_table_shape(back, ext)
    if load_kwargs.get("read_only"):
        # a read-only analyzer still computes in memory, and leaves the folder as it was
        again = back.compute("serotonergic", **ext.params)
        assert_units_equal(again.get_data(), case.units, exact=False, rtol=HARD_RTOL)
        assert_same_as_case(load_sorting_analyzer(folder), case)


def test_reload_without_the_recording(paper_abf, paper_reference, tmp_path):
    """The extension needs no recording (``need_recording = False``): an analyzer folder moved away from its
    raw data still gives its results and recomputes them (SpikeInterface 0.105.3 cannot then map the stored
    ``main_channel_id`` to indices by itself and falls back to a path that raises KeyError)."""
    abf = tmp_path / "moved.abf"
    shutil.copy(paper_abf, abf)
    folder = tmp_path / "analyzer"
    analyzer = _analyzer(paper_reference.sorting, sero.read_abf(abf), fmt="binary_folder", folder=folder)
    _compute(analyzer)
    abf.unlink()
    back = load_sorting_analyzer(folder)
    assert not back.has_recording()
    ext = back.get_extension("serotonergic")
    assert_units_equal(ext.get_data(), _p_by_unit(paper_reference), exact=False, rtol=HARD_RTOL)
    assert_properties(back, ext.get_data())
    again = back.compute("serotonergic", **ext.params)
    assert_units_equal(again.get_data(), _p_by_unit(paper_reference), exact=False, rtol=HARD_RTOL)


# --------------------------------------------------------------------------------------------- invariances
def _p_by_unit(analyzer) -> pd.DataFrame:
    return analyzer.get_extension("serotonergic").get_data()


RENAMES = {
    "cyclic_channel_ids": ["1", "2", "0"],  # each unit named after another channel
    "swap_two": ["1", "0", "2"],
    "not_channel_ids": ["cell_a", "cell_b", "cell_c"],
}


@pytest.mark.parametrize("fresh_sorting", [False, True], ids=["rename_units", "fresh_sorting"])
@pytest.mark.parametrize("rename", list(RENAMES), ids=list(RENAMES))
def test_renaming_units_keeps_probabilities(paper_reference, rename, fresh_sorting):
    new_ids = RENAMES[rename]
    sorting = paper_reference.sorting
    if fresh_sorting:  # the same spikes, built anew (no properties, so no stored main channel)
        renamed = NumpySorting.from_unit_dict(
            {new: sorting.get_unit_spike_train(old) for old, new in zip(sorting.unit_ids, new_ids)},
            sorting.sampling_frequency,
        )
    else:
        renamed = sorting.rename_units(new_ids)
    analyzer = _analyzer(renamed, paper_reference.recording)
    analyzer.compute("serotonergic", **PARAMS)
    before, after = _p_by_unit(paper_reference), _p_by_unit(analyzer)
    columns = ["sero_label", "sero_probability", "sero_probability_low", "sero_probability_high", "n_spikes"]
    expected = before[columns].set_axis(new_ids)
    actual = after[columns].set_axis([str(u) for u in after.index])
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_exact=False, rtol=0, atol=1e-6)
    spikes_before = _keyed(paper_reference.get_extension("serotonergic").get_data(outputs="spikes"))
    spikes_before = spikes_before.rename(index=dict(zip(map(str, sorting.unit_ids), new_ids)), level="unit_id")
    spikes_after = _keyed(analyzer.get_extension("serotonergic").get_data(outputs="spikes"))
    np.testing.assert_allclose(
        spikes_after["p_ser"].to_numpy(float), spikes_before.sort_index()["p_ser"].to_numpy(float), atol=1e-6
    )


def test_renaming_units_keeps_probabilities_adapted(adapted_reference):
    """The adapted analyzer's units named after other channels (its main channels are "3", "1", "3")."""
    sorting = adapted_reference.sorting
    new_ids = ["1", "3", "0"]
    analyzer = _analyzer(sorting.rename_units(new_ids), adapted_reference.recording, window=(2.0, 4.0))
    analyzer.compute("serotonergic", **PARAMS)
    before, after = _p_by_unit(adapted_reference), _p_by_unit(analyzer)
    np.testing.assert_allclose(
        after["sero_probability"].to_numpy(float), before["sero_probability"].to_numpy(float), atol=1e-6
    )
    np.testing.assert_allclose(
        after["sero_probability_low"].to_numpy(float), before["sero_probability_low"].to_numpy(float), atol=1e-6
    )
    np.testing.assert_allclose(
        after["sero_probability_high"].to_numpy(float), before["sero_probability_high"].to_numpy(float), atol=1e-6
    )


@pytest.mark.parametrize(
    "kind, sparsity",
    [("paper", "explicit"), ("paper", "best_channels"), ("adapted", "best_channels")],
)
def test_sparse_equals_dense(paper_reference, adapted_reference, kind, sparsity):
    dense = paper_reference if kind == "paper" else adapted_reference
    window = (1.0, 3.0) if kind == "paper" else (2.0, 4.0)
    if sparsity == "explicit":
        mask = ChannelSparsity(PAPER_SPARSITY_MASK, dense.unit_ids, dense.channel_ids)
        sparse = _analyzer(dense.sorting, dense.recording, sparsity=mask, window=window)
    else:
        sparse = _analyzer(dense.sorting, dense.recording, sparse=True, window=window)
    assert sparse.is_sparse() and sparse.sparsity.mask.sum() < sparse.sparsity.mask.size
    assert dict(sparse.get_main_channels(outputs="id", with_dict=True)) == dict(
        dense.get_main_channels(outputs="id", with_dict=True)
    )
    sparse.compute("serotonergic", **PARAMS)
    d = _keyed(dense.get_extension("serotonergic").get_data(outputs="spikes"))
    s = _keyed(sparse.get_extension("serotonergic").get_data(outputs="spikes"))
    assert list(s.index) == list(d.index)
    np.testing.assert_allclose(s["p_ser"].to_numpy(float), d["p_ser"].to_numpy(float), rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        sparse.get_extension("serotonergic").get_data(outputs="members"),
        dense.get_extension("serotonergic").get_data(outputs="members"),
        rtol=0,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        _p_by_unit(sparse)["sero_probability"].to_numpy(float),
        _p_by_unit(dense)["sero_probability"].to_numpy(float),
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_unit_is_read_on_its_main_channel(paper_reference, sparse):
    """Unit on channel "0" named "1" (and so on): its P(SER) per spike is the model's on channel "0"."""
    from spikeinterface_sero.model import load_model

    new_ids = RENAMES["cyclic_channel_ids"]
    renamed = paper_reference.sorting.rename_units(new_ids)
    sparsity = ChannelSparsity(PAPER_SPARSITY_MASK, renamed.unit_ids, paper_reference.channel_ids) if sparse else None
    analyzer = _analyzer(renamed, paper_reference.recording, sparsity=sparsity)
    main = analyzer.get_main_channels(outputs="id", with_dict=True)
    assert {str(u): str(c) for u, c in main.items()} == {"1": "0", "2": "1", "0": "2"}
    analyzer.compute("serotonergic", **PARAMS)
    # the model on each spike's main-channel waveform, taken from the dense waveforms
    dense_waveforms = paper_reference.get_extension("waveforms").get_data()
    spikes = _random_spike_vector(paper_reference)
    main_index = paper_reference.get_main_channels(outputs="index")
    x = dense_waveforms[np.arange(spikes.size), :, main_index[spikes["unit_index"]]]
    expected = pd.DataFrame(
        {
            "unit_id": np.asarray(new_ids)[spikes["unit_index"]],
            "segment_index": spikes["segment_index"],
            "sample_index": spikes["sample_index"],
            "p_ser": load_model(None).p_ser(x),
        }
    )
    actual = analyzer.get_extension("serotonergic").get_data(outputs="spikes")
    e, a = _keyed(expected), _keyed(actual)
    assert list(a.index) == list(e.index)
    np.testing.assert_allclose(a["p_ser"].to_numpy(float), e["p_ser"].to_numpy(float), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------------- parameters
@pytest.fixture
def fresh(paper_base):
    """A paper analyzer without the serotonergic extension."""
    analyzer = paper_base.copy()
    assert not analyzer.has_extension("serotonergic")
    return analyzer


def _must_not_run(self, *args, **kwargs):
    raise AssertionError("the extension's _run was reached: the parameter must be refused before")


@pytest.mark.parametrize("n_boot", [0, 5])
def test_too_few_bootstrap_resamples_refused_at_compute(fresh, monkeypatch, n_boot):
    extension_class = get_extension_class("serotonergic")
    monkeypatch.setattr(extension_class, "_run", _must_not_run)
    with pytest.raises(SeroError, match="n_boot"):
        fresh.compute("serotonergic", n_boot=n_boot)
    assert not fresh.has_extension("serotonergic")


def test_n_jobs_honoured_or_refused(fresh, paper_reference, monkeypatch):
    """``n_jobs=2`` either reaches the computation (and gives the same result) or is refused with a
    SeroError; dropping it (or only warning that it is not used) is not acceptable."""
    extension_class = get_extension_class("serotonergic")
    original = extension_class._run
    seen = {}

    def spy(self, *args, **kwargs):
        seen.update(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(extension_class, "_run", spy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ext = fresh.compute("serotonergic", n_jobs=2, **PARAMS)
        except SeroError as error:
            assert "n_jobs" in str(error)
            return
    assert seen.get("n_jobs") == 2, f"n_jobs=2 never reached the extension (got {seen!r}): silently ignored"
    ignored = [str(w.message) for w in caught if "n_jobs" in str(w.message)]
    assert not ignored, f"n_jobs=2 neither honoured nor refused: {ignored}"
    assert_units_equal(ext.get_data(), _p_by_unit(paper_reference), exact=False, rtol=HARD_RTOL)


def test_progress_bar(fresh, paper_reference):
    ext = fresh.compute("serotonergic", progress_bar=True, **PARAMS)
    assert_units_equal(ext.get_data(), _p_by_unit(paper_reference), exact=False, rtol=HARD_RTOL)
    ext = fresh.compute("serotonergic", progress_bar=False, **PARAMS)
    assert_units_equal(ext.get_data(), _p_by_unit(paper_reference), exact=False, rtol=HARD_RTOL)
