"""Tests of spikeinterface_sero.model: the member network, fused inference, cell decisions, model folders,
import of the published Keras-2 members, Grad-CAM."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conftest import ROOT, SHARED_MODELS  # noqa: E402

from spikeinterface_sero import model as M  # noqa: E402
from spikeinterface_sero.errors import DataError, ModelError, ParameterError, SnippetError  # noqa: E402
from spikeinterface_sero.testing import synthetic_snippets  # noqa: E402

SMALL_KERNELS = (20, 25, 31)


@pytest.fixture(scope="module")
def small():
    return M.random_ensemble(SMALL_KERNELS, seed=3)


@pytest.fixture(scope="module")
def saved_small(small, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "small"
    M.save_model(
        small,
        folder,
        description="test ensemble",
        training={"data": "none (random weights)"},
        metrics={"spike_accuracy": 0.5},
    )
    return folder


@pytest.fixture(scope="module")
def formats_dir():
    if not (SHARED_MODELS / "formats").is_dir():
        pytest.skip("../shared/models/keras2-tf2.15/formats is not present on this machine")
    return SHARED_MODELS / "formats"


# ---------------------------------------------------------------------------------------------- member
def test_member_parameter_count_and_layers():
    m = M.build_member(20)
    assert m.count_params() == 45_218
    names = [type(layer).__name__ for layer in m.layers]
    assert names == [
        "LayerNormalization",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
        "Dense",
    ]
    assert m.layers[0].gamma.shape == (160,)
    assert M.check_member_architecture(m) == 20
    assert tuple(m.inputs[0].shape) == (None, 160, 2, 1)


def test_every_kernel_builds_and_runs():
    x = M.to_member_input(synthetic_snippets(2))
    for k in range(1, 32):
        m = M.build_member(k)
        assert M.member_kernel(m) == k
        y = np.asarray(m(x, training=False))
        assert y.shape == (2, 2) and np.all((y >= 0) & (y <= 1))
    for bad in (0, 32, 2.5, "x"):
        with pytest.raises(ModelError):
            M.build_member(bad)


def test_member_input_layout():
    x = synthetic_snippets(3)
    mi = M.to_member_input(x)
    assert mi.shape == (3, 160, 2, 1) and mi.dtype == np.float32
    np.testing.assert_array_equal(mi[:, :, 1, 0], x)
    np.testing.assert_allclose(mi[0, :, 0, 0], np.arange(160) / 40000.0, rtol=1e-6)
    np.testing.assert_array_equal(M.to_member_input(x[:, :, None]), mi)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((5, 159)),
        np.zeros(160),
        np.zeros((5, 160, 2, 1)),
        np.zeros((160, 5)),
        np.zeros((5, 160, 2)),
        np.array([["a"] * 160]),
    ],
)
def test_wrong_snippet_shape_refused(small, bad):
    with pytest.raises(SnippetError, match=r"\(n, 160\)"):
        small.predict(bad)


def test_nan_refused(small):
    x = synthetic_snippets(4)
    x[2, 10] = np.nan
    with pytest.raises(DataError, match="NaN"):
        small.predict_members(x)
    with pytest.raises(DataError):
        M.to_member_input(np.full((1, 160), np.inf))


# -------------------------------------------------------------------------------------------- inference
def test_fused_matches_naive_predict(small):
    assert small.fused and small.kernels == SMALL_KERNELS
    x = np.concatenate([synthetic_snippets(150, seed=1), np.random.default_rng(2).normal(0, 40, (50, 160))]).astype(
        np.float32
    )
    x[-1] = 0.0  # a flat snippet
    x[-2] = np.random.default_rng(3).normal(0, 0.02, 160)  # variance below LayerNorm's epsilon (1e-3)
    naive = M.predict_members_naive(small, x, batch_size=64)
    fused = small.predict_members(x, batch_size=64)  # several batches, one partial
    assert fused.shape == (200, 3, 2) and fused.dtype == np.float32
    assert np.abs(fused - naive).max() < 1e-5
    assert np.std(naive) > 1e-3  # random members do give different outputs
    cons = small.predict(x)
    np.testing.assert_allclose(cons, naive.mean(axis=1), atol=1e-5)
    p = small.p_ser(x)
    np.testing.assert_allclose(p, cons[:, 0] / cons.sum(axis=1), atol=1e-6)
    assert small.predict_members(x[:0]).shape == (0, 3, 2)


def test_fused_uses_each_members_weights(small):
    # The members differ, so a bug that reuses one member's constants would make two columns equal.
    y = small.predict_members(synthetic_snippets(20, seed=5))
    assert np.abs(y[:, 0] - y[:, 1]).max() > 1e-3 and np.abs(y[:, 1] - y[:, 2]).max() > 1e-3


# ------------------------------------------------------------------------------------------ model folders
def test_save_load_roundtrip(small, saved_small):
    info = json.loads((saved_small / "model_info.json").read_text())
    assert info["label_conversion"] == {"0": "serotonergic", "1": "non_serotonergic"}
    assert info["kernels"] == list(SMALL_KERNELS) and info["demo"] is False
    assert info["input"]["sampling_frequency_hz"] == 40000 and info["input"]["samples_before"] == 40
    assert {m["file"] for m in info["members"]} == {f"member_k{k}.keras" for k in SMALL_KERNELS}
    assert all(len(m["sha256"]) == 64 for m in info["members"])
    assert set(info["versions"]) >= {"tensorflow", "keras", "spikeinterface_sero"}
    card = (saved_small / "README.md").read_text()
    assert "spike_accuracy" in card and "Limits" in card and "none (random weights)" in card

    ens = M.load_model(saved_small)
    assert ens.kernels == SMALL_KERNELS and not ens.is_demo and ens.fused
    assert ens.info["description"] == "test ensemble"
    for a, b in zip(small.members, ens.members):
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    x = synthetic_snippets(40, seed=7)
    np.testing.assert_array_equal(ens.predict_members(x), small.predict_members(x))
    assert M.load_model(saved_small) is ens  # cached
    with pytest.raises(ModelError, match="not empty"):
        M.save_model(small, saved_small)


def test_checksum_tamper_refused(small, saved_small, tmp_path):
    folder = tmp_path / "tampered"
    shutil.copytree(saved_small, folder)
    with open(folder / "member_k25.keras", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match=r"checksum mismatch for member_k25\.keras"):
        M.load_model(folder)
    (folder / "member_k25.keras").unlink()
    with pytest.raises(ModelError, match="missing"):
        M.load_model(folder)


def test_overwrite_guard(small, tmp_path):
    other = tmp_path / "not_a_model"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    with pytest.raises(ModelError, match="not a model folder"):
        M.save_model(small, other, overwrite=True)
    assert (other / "notes.txt").read_text() == "precious"


def test_lambda_member_needs_trust(tmp_path):
    import keras

    base = M.build_member(20)
    layers = [keras.Input((160, 2, 1))] + [keras.layers.Lambda(lambda t: t * 1.0, name="scale")] + list(base.layers)
    odd = keras.Sequential(layers, name="odd")
    ens = M.Ensemble([odd])
    assert not ens.fused
    folder = M.save_model(ens, tmp_path / "lambda")
    with pytest.raises(ModelError, match="trust=True"):
        M.load_model(folder)
    trusted = M.load_model(folder, trust=True)
    x = synthetic_snippets(10)
    np.testing.assert_allclose(trusted.predict_members(x)[:, 0], np.asarray(base(M.to_member_input(x))), atol=1e-6)


def test_demo_model_missing_says_so():
    if (M.demo_model_folder() / "model_info.json").is_file():
        ens = M.load_model()
        assert ens.is_demo
    else:
        with pytest.raises(ModelError, match="demo model"):
            M.load_model()


# ------------------------------------------------------------------- model folders: hostile or damaged files
def _copy_with_info(saved_small, tmp_path, edit):
    """A copy of the saved folder whose model_info.json ``edit(info)`` changed (or replaced, if it returns)."""
    folder = tmp_path / "edited"
    shutil.copytree(saved_small, folder)
    info = json.loads((folder / "model_info.json").read_text())
    new = edit(info)
    text = new if isinstance(new, str) else json.dumps(info if new is None else new)
    (folder / "model_info.json").write_text(text)
    return folder


def _set(path: str, value):
    """An edit setting ``info[a][b]...`` (path "a.b", numeric parts index lists) to ``value``."""

    def edit(info):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        d = info
        for p in parents:
            d = d[p]
        d[last] = value

    return edit


def _nested(depth: int):
    v = 0
    for _ in range(depth):
        v = [v]
    return v


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("format_version", "one"), "format_version is 'one'"),
        (_set("format_version", None), "format_version is None"),
        (_set("format_version", True), "format_version is True"),
        (_set("format_version", 0), "format_version is 0"),
        (_set("format_version", 2), "upgrade the package"),
        (_set("format", 5), "format field"),
        (_set("input", [40000, 160]), "'input' is a list"),
        (_set("input.sampling_frequency_hz", "40 kHz"), "sampling_frequency_hz is '40 kHz'"),
        (_set("input.n_samples", 160.5), "n_samples is 160.5"),
        (_set("input.sampling_frequency_hz", 20000.0), "160 samples at 40 kHz"),
        (_set("input.columns", "time, current"), "input.columns"),
        (_set("label_conversion", ["serotonergic", "non_serotonergic"]), "label_conversion"),
        (_set("members", {"file": "member_k20.keras"}), "lists no members"),
        (_set("members", []), "lists no members"),
        (_set("members.0", "member_k20.keras"), r"members\[0\] is a string"),
        (_set("members.0.file", 20), r"members\[0\]\.file 20 is not a plain file name"),
        (_set("members.0.file", "../member_k20.keras"), "not a plain file name"),
        (_set("members.1.file", "member_k20.keras"), "listed twice"),
        (_set("members.0.kernel", "20"), r"members\[0\]\.kernel is '20'"),
        (_set("members.0.kernel", True), r"members\[0\]\.kernel is True"),
        (_set("members.0.sha256", None), r"members\[0\]\.sha256 is None"),
        (_set("kernels", [20, 25]), "'kernels' is"),
        (_set("demo", "no"), "'demo' is a string"),
        (_set("training", ["2 epochs"]), "'training' is a list"),
        (_set("name", 12), "'name' is a number"),
        (_set("training", {"deep": _nested(40)}), "levels deep"),
        (lambda info: "[" * 100_000 + "]" * 100_000, "nests objects too deeply"),
        (lambda info: ["not", "an", "object"], "holds a list"),
        (lambda info: '{"format": "spikeinterface-sero-model", ', "cannot be read as JSON"),
        (lambda info: json.dumps(info) + " " * (2 << 20), "a model description is a few kB"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_model_info_is_one_clear_error(saved_small, tmp_path, edit, message):
    folder = _copy_with_info(saved_small, tmp_path, edit)
    with pytest.raises(ModelError, match=message) as err:
        M.load_model(folder)
    text = str(err.value)
    assert "\n" not in text and len(text) < 600
    assert "model_info.json" in text or str(folder) in text


def _rewrite_config(folder, fname: str, padding: int):
    """Pad ``fname``'s config.json with ``padding`` spaces (deflated: tiny on disk), fixing its checksum."""
    import zipfile

    path = folder / fname
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    entries["config.json"] += b" " * padding
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == "config.json" else zipfile.ZIP_STORED)
    info = json.loads((folder / "model_info.json").read_text())
    for m in info["members"]:
        if m["file"] == fname:
            m["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "model_info.json").write_text(json.dumps(info))


@pytest.mark.parametrize(
    "padding, message",
    [(17 << 20, r"config\.json unpacks to 17\.0 MiB, over the 16 MiB limit"), (2 << 20, "zip bomb")],
    ids=["over-16MB", "ratio"],
)
def test_keras_archive_bomb_refused_before_loading(small, saved_small, tmp_path, padding, message):
    folder = tmp_path / "bomb"
    shutil.copytree(saved_small, folder)
    _rewrite_config(folder, "member_k25.keras", padding)
    assert (folder / "member_k25.keras").stat().st_size < 1 << 20  # small on disk
    with pytest.raises(ModelError, match=message):
        M.load_model(folder)
    shutil.copy(saved_small / "member_k25.keras", folder / "member_k25.keras")
    _rewrite_config(folder, "member_k25.keras", 1000)  # harmless padding still loads
    x = synthetic_snippets(5)
    np.testing.assert_array_equal(M.load_model(folder).predict_members(x), small.predict_members(x))


@pytest.mark.parametrize("name", ["member_k25.keras", "model_info.json"])
def test_link_out_of_model_folder_refused(saved_small, tmp_path, name):
    folder = tmp_path / "linked"
    shutil.copytree(saved_small, folder)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (folder / name).rename(outside / name)
    (folder / name).symlink_to(outside / name)
    with pytest.raises(ModelError, match=f"{name} in .* is a link to .*outside the model folder"):
        M.load_model(folder)
    # a link that stays inside the folder is fine
    (folder / name).unlink()
    (outside / name).rename(folder / f"real_{name}")
    (folder / name).symlink_to(folder / f"real_{name}")
    assert M.load_model(folder).kernels == SMALL_KERNELS


# ------------------------------------------------------------------------------- import of published members
@pytest.mark.parametrize("suffix", [".keras", ".h5", ""], ids=["keras", "hdf5", "savedmodel"])
def test_import_reproduces_tf215_predictions(formats_dir, tmp_path, suffix):
    ref = np.load(formats_dir / "reference_predictions.npz")
    out = M.import_models(
        formats_dir, tmp_path / "imported", choose={20: f"ModConvBinNormN20{suffix}", 27: f"ModConvBinNormN27{suffix}"}
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "member_k20.keras",
        "member_k27.keras",
        "model_info.json",
    ]
    ens = M.load_model(out)
    assert ens.kernels == (20, 27) and ens.fused
    assert str(formats_dir.resolve()) in ens.info["description"]
    X = ref["X"]
    pm = ens.predict_members(X[..., 1, 0])
    for i, (k, member) in enumerate(zip(ens.kernels, ens.members)):
        np.testing.assert_allclose(np.asarray(member(X, training=False)), ref[f"k{k}"], atol=1e-6)
        np.testing.assert_allclose(pm[:, i], ref[f"k{k}"], atol=1e-6)


def test_import_published_biomodel_folder(tmp_path):
    src = SHARED_MODELS / "BioModelDNN_BALANCED"
    if not src.is_dir():
        pytest.skip("../shared/models/keras2-tf2.15/BioModelDNN_BALANCED is not present on this machine")
    ref = np.load(src / "reference_predictions.npz")
    ens = M.load_model(M.import_models(src, tmp_path / "bio"))
    assert ens.kernels == tuple(range(20, 32))
    pm = ens.predict_members(ref["X"][..., 1, 0])
    for i, k in enumerate(ens.kernels):
        np.testing.assert_allclose(pm[:, i], ref[f"k{k}"], atol=1e-6)
    assert ens.predict(ref["X"][..., 1, 0]).shape == (64, 2)


def test_import_duplicates_and_sessions(formats_dir, tmp_path):
    with pytest.raises(ModelError, match=r"several files for kernel 20: .*ModConvBinNormN20\.h5"):
        M.import_models(formats_dir, tmp_path / "dup")
    # synthetic-model sessions: two -v<session> files per kernel, resolved by a session string
    src = tmp_path / "ModelsDNN"
    src.mkdir()
    for s in ("v198", "v199"):
        shutil.copy(formats_dir / "ModConvBinNormN27.keras", src / f"ModConvBinNormN27-{s}.keras")
    with pytest.raises(ModelError, match=r"ModConvBinNormN27-v198\.keras, ModConvBinNormN27-v199\.keras"):
        M.import_models(src, tmp_path / "s0")
    out = M.import_models(src, tmp_path / "s1", choose="v199")
    assert json.loads((out / "model_info.json").read_text())["source"]["files"] == {
        "27": "ModConvBinNormN27-v199.keras"
    }
    out = M.import_models(src, tmp_path / "s2", choose={27: "ModConvBinNormN27-v198.keras"})
    assert M.load_model(out).kernels == (27,)
    with pytest.raises(ModelError, match="matches none"):
        M.import_models(src, tmp_path / "s3", choose="v5")


def test_import_reads_kernel_from_weights_and_checks_architecture(formats_dir, tmp_path):
    import keras

    src = tmp_path / "renamed"
    src.mkdir()
    shutil.copy(formats_dir / "ModConvBinNormN20.keras", src / "my_model.keras")  # kernel only in the weights
    assert M.load_model(M.import_models(src, tmp_path / "ok")).kernels == (20,)
    shutil.copy(formats_dir / "ModConvBinNormN20.keras", src / "ModConvBinNormN24.keras")  # lying name
    with pytest.raises(ModelError, match="kernel"):
        M.import_models(src, tmp_path / "bad", choose={20: "my_model.keras"})

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    m = keras.Sequential(
        [
            keras.Input((160, 1, 1)),
            keras.layers.LayerNormalization(axis=[1]),
            keras.layers.Conv2D(32, (20, 1), activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="sigmoid"),
        ]
    )
    m.save(wrong / "ModConvBinNormN20.keras")
    with pytest.raises(ModelError, match="160, 2, 1"):
        M.import_models(wrong, tmp_path / "w")
    m2 = keras.Sequential(
        [
            keras.Input((160, 2, 1)),
            keras.layers.LayerNormalization(axis=[1]),
            keras.layers.Conv2D(32, (20, 1), activation="tanh"),
            keras.layers.MaxPooling2D((2, 1)),
            keras.layers.Conv2D(64, (20, 1), activation="relu"),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(2, activation="sigmoid"),
        ]
    )
    m2.save(wrong / "ModConvBinNormN20.keras")
    with pytest.raises(ModelError, match="relu"):
        M.import_models(wrong, tmp_path / "w2")


# ----------------------------------------------------------------- SavedModels: rebuilt from variables, never run
_MODULE_NAMES = [
    "gamma",
    "beta",
    "conv1_kernel",
    "conv1_bias",
    "conv2_kernel",
    "conv2_bias",
    "dense_kernel",
    "dense_bias",
]


def _side_effect_savedmodel(folder, member, target, names=_MODULE_NAMES, activation="relu"):
    """A SavedModel (a tf.Module) computing ``member`` exactly, whose serving function also writes ``target``."""
    import tensorflow as tf

    act = getattr(tf.nn, activation)

    class SideEffect(tf.Module):
        def __init__(self):
            super().__init__()
            for n, w in zip(names, member.get_weights()):
                setattr(self, n, tf.Variable(np.asarray(w), name=n))

        @tf.function(input_signature=[tf.TensorSpec([None, 160, 2, 1], tf.float32)], autograph=False)
        def serve(self, x):
            tf.io.write_file(str(target), "written by the SavedModel's graph")
            g, b, k1, b1, k2, b2, kd, bd = (getattr(self, n) for n in names)
            mean, var = tf.nn.moments(x, axes=[1], keepdims=True)
            h = (x - mean) * tf.math.rsqrt(var + 1e-3) * tf.reshape(g, (1, 160, 1, 1)) + tf.reshape(b, (1, 160, 1, 1))
            h = tf.nn.max_pool2d(act(tf.nn.conv2d(h, k1, 1, "VALID") + b1), (2, 1), (2, 1), "VALID")
            h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(h, k2, 1, "VALID") + b2), (2, 2), (2, 2), "VALID")
            return {"dense": tf.sigmoid(tf.matmul(tf.reshape(h, (-1, kd.shape[0])), kd) + bd)}

    module = SideEffect()
    x = M.to_member_input(synthetic_snippets(16, seed=11))
    y = module.serve(tf.constant(x))["dense"].numpy()  # run once here: it computes the member ...
    if activation == "relu":
        np.testing.assert_allclose(y, np.asarray(member(x, training=False)), atol=1e-5)
    assert target.read_text() == "written by the SavedModel's graph"  # ... and its graph does write the file
    target.unlink()
    folder.mkdir()
    tf.saved_model.save(module, str(folder / f"ModConvBinNormN{M.member_kernel(member)}"), signatures=module.serve)
    return x


@pytest.fixture
def no_graph_serving(monkeypatch):
    """Make any attempt to load a SavedModel's graph fail the test."""
    import keras
    import tensorflow as tf

    def refuse(*args, **kwargs):
        raise AssertionError("the import tried to load the SavedModel's graph")

    monkeypatch.setattr(keras.layers, "TFSMLayer", refuse)
    monkeypatch.setattr(tf.saved_model, "load", refuse)


def test_side_effect_savedmodel_imports_without_running_its_graph(small, tmp_path, no_graph_serving):
    target = tmp_path / "side_effect.txt"
    member = small.members[0]
    x = _side_effect_savedmodel(tmp_path / "src", member, target)
    out = M.import_models(tmp_path / "src", tmp_path / "imported")
    assert not target.exists()  # the graph never ran
    ens = M.load_model(out)
    assert ens.kernels == (M.member_kernel(member),) and ens.fused
    for wa, wb in zip(member.get_weights(), ens.members[0].get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_allclose(ens.predict_members(x[..., 1, 0])[:, 0], np.asarray(member(x)), atol=1e-6)
    info = json.loads((out / "model_info.json").read_text())
    assert info["source"]["formats"] == {"20": "savedmodel"}
    assert "graph was not run" in info["source"]["checks"]["20"]
    assert not target.exists()


def test_savedmodel_not_rebuildable_from_variables_needs_trust(small, tmp_path):
    target = tmp_path / "side_effect.txt"
    member = small.members[0]
    x = _side_effect_savedmodel(tmp_path / "src", member, target, names=list("abcdefgh"))  # gamma? beta?
    with pytest.raises(ModelError, match=r"cannot be rebuilt from its variables alone .* trust=True"):
        M.import_models(tmp_path / "src", tmp_path / "refused")
    assert not target.exists() and not (tmp_path / "refused").exists()
    # trusted: TensorFlow serves the graph (which then does write its file) and checks the rebuilt member
    ens = M.load_model(M.import_models(tmp_path / "src", tmp_path / "trusted", trust=True))
    assert target.exists()
    np.testing.assert_allclose(ens.predict_members(x[..., 1, 0])[:, 0], np.asarray(member(x)), atol=1e-6)


def test_savedmodel_with_another_activation_refused_without_running(small, tmp_path, no_graph_serving):
    target = tmp_path / "side_effect.txt"
    _side_effect_savedmodel(tmp_path / "src", small.members[0], target, activation="tanh")
    with pytest.raises(ModelError, match="graph uses Tanh.*not the published architecture"):
        M.import_models(tmp_path / "src", tmp_path / "out")
    assert not target.exists()


def test_tf215_savedmodel_rebuilt_from_variables_matches_reference(formats_dir, tmp_path, no_graph_serving):
    ref = np.load(formats_dir / "reference_predictions.npz")
    out = M.import_models(formats_dir, tmp_path / "sm", choose={20: "ModConvBinNormN20", 27: "ModConvBinNormN27"})
    ens = M.load_model(out)
    X = ref["X"]
    pm = ens.predict_members(X[..., 1, 0])
    for i, (k, member) in enumerate(zip(ens.kernels, ens.members)):
        assert np.abs(np.asarray(member(X, training=False)) - ref[f"k{k}"]).max() < 1e-5
        assert np.abs(pm[:, i] - ref[f"k{k}"]).max() < 1e-5


def test_keras3_export_savedmodel_imports(formats_dir, tmp_path):
    ref = np.load(formats_dir / "reference_predictions.npz")
    ens = M.load_model(
        M.import_models(
            formats_dir, tmp_path / "k", choose={20: "ModConvBinNormN20.keras", 27: "ModConvBinNormN27.keras"}
        )
    )
    src = tmp_path / "exported"
    src.mkdir()
    ens.members[0].export(str(src / "ModConvBinNormN20"), verbose=False)  # Keras 3: a SavedModel directory
    again = M.load_model(M.import_models(src, tmp_path / "again"))
    np.testing.assert_allclose(np.asarray(again.members[0](ref["X"], training=False)), ref["k20"], atol=1e-6)


# ------------------------------------------------------------------------------------------------ Grad-CAM
def test_gradcam_shapes_and_values(small):
    x = synthetic_snippets(5, seed=9)
    cams = M.gradcam(small.members[0], x, class_index=0)
    assert set(cams) == {"conv2d", "conv2d_1"}
    for cam in cams.values():
        assert cam.shape == (5, 160) and np.isfinite(cam).all()
        assert cam.min() >= 0.0 and cam.max() <= 1.0 + 1e-9
    ens_cams = M.gradcam(small, x, class_index=1, layers=["conv2d_1"])
    assert list(ens_cams) == ["conv2d_1"] and ens_cams["conv2d_1"].shape == (5, 160)
    assert np.isfinite(ens_cams["conv2d_1"]).all()
    assert M.gradcam(small.members[2], np.zeros((1, 160)))["conv2d"].shape == (1, 160)
    with pytest.raises(ModelError):
        M.gradcam(small, x, layers=["dense"])


def test_gradcam_localises_the_decisive_samples():
    # A member whose output depends only on samples 100-119 through conv1: the conv2d map must peak there.
    m = M.build_member(1)
    w = [np.asarray(v) for v in m.get_weights()]
    w[0][:], w[1][:] = 1.0, 0.0  # LayerNorm gamma, beta
    w[2][:] = 0.0
    w[2][0, 0, 0, 0] = 1.0  # conv1 channel 0 = normalised input
    w[3][:] = 0.0
    w[4][:] = 0.0
    w[4][0, 0, 0, 0] = 1.0  # conv2 channel 0 = conv1 channel 0
    w[5][:] = 0.0
    w[6][:] = 0.0
    for t in range(25, 30):  # k = 1: pooled step t covers samples 4t..4t+3, so 25-29 = samples 100-119
        w[6][t * 64, 0] = 1.0
    w[7][:] = 0.0
    m.set_weights(w)
    x = np.full((1, 160), -1.0, np.float32)
    x[0, 100:120] = 50.0
    cam = M.gradcam(m, x, layers="conv2d")["conv2d"][0]
    assert 100 <= int(np.argmax(cam)) < 120
    assert cam[100:120].mean() > 5 * cam[:90].mean()


def test_plot_gradcam(small):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = synthetic_snippets(1, seed=4)
    cams = M.gradcam(small.members[0], x)
    ax = M.plot_gradcam(x[0], cams)
    assert ax.get_xlabel().startswith("time") and len(ax.lines) == 1
    ax2 = M.plot_gradcam(x[0], cams["conv2d"][0])
    assert ax2 is not ax
    plt.close("all")


# ------------------------------------------------------------------ trust flags: only a real True runs code
@pytest.mark.parametrize("flag", ["false", "False", "no", "0", 1, None], ids=repr)
def test_trust_that_is_not_a_bool_is_refused_and_the_graph_never_runs(small, tmp_path, flag):
    target = tmp_path / "side_effect.txt"
    _side_effect_savedmodel(tmp_path / "src", small.members[0], target, names=list("abcdefgh"))  # needs the graph
    with pytest.raises(ParameterError, match=r"trust must be True or False, not"):
        M.import_models(tmp_path / "src", tmp_path / "out", trust=flag)
    assert not target.exists() and not (tmp_path / "out").exists()
    with pytest.raises(ParameterError, match=r"overwrite must be True or False"):
        M.import_models(tmp_path / "src", tmp_path / "out", overwrite="false")
    assert not target.exists()


def test_load_model_and_save_model_take_only_real_bools(small, saved_small, tmp_path):
    with pytest.raises(ParameterError, match=r"trust must be True or False, not 'false'"):
        M.load_model(saved_small, trust="false")
    with pytest.raises(ParameterError, match="overwrite must be True or False"):
        M.save_model(small, saved_small, overwrite="true")
    assert M.load_model(saved_small, trust=False).kernels == SMALL_KERNELS


# -------------------------------------------------------------------- weights checked when they are loaded
def _edit_member_weights(folder, fname: str, edit):
    """Apply ``edit(h5py.File)`` to ``fname``'s model.weights.h5, fixing the member's checksum."""
    import io
    import zipfile

    import h5py

    path = folder / fname
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    buffer = io.BytesIO(entries["model.weights.h5"])
    with h5py.File(buffer, "r+") as f:
        edit(f)
    entries["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    info = json.loads((folder / "model_info.json").read_text())
    for m in info["members"]:
        if m["file"] == fname:
            m["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "model_info.json").write_text(json.dumps(info))


def _set_value(dataset: str, value: float):
    def edit(f):
        a = f[dataset][()]
        a.flat[a.size // 2] = value
        f[dataset][...] = a

    return edit


@pytest.mark.parametrize("engine", ["numpy", "tensorflow"])
@pytest.mark.parametrize(
    "dataset, value, message",
    [
        ("layers/dense/vars/1", np.inf, r"dense/bias holds 0 NaN and 1 infinite"),
        ("layers/conv2d_1/vars/0", np.nan, r"conv2d_1/kernel holds 1 NaN and 0 infinite"),
        ("layers/layer_normalization/vars/0", 3e38, r"layer_normalization/gamma holds a value of magnitude 3e\+38"),
        ("layers/dense/vars/0", -1e4, r"dense/kernel holds a value of magnitude 1e\+04, over the 1000"),
    ],
    ids=["inf-bias", "nan-kernel", "overflowing-gamma", "huge-dense"],
)
def test_damaged_weight_values_refused_at_load(saved_small, tmp_path, engine, dataset, value, message):
    folder = tmp_path / "damaged"
    shutil.copytree(saved_small, folder)
    _edit_member_weights(folder, "member_k25.keras", _set_value(dataset, value))
    with pytest.raises(ModelError, match=r"member_k25\.keras.*" + message) as err:
        M.load_model(folder, engine=engine)
    assert "\n" not in str(err.value)


def test_weights_at_the_bound_still_load(small, saved_small, tmp_path):
    folder = tmp_path / "large"
    shutil.copytree(saved_small, folder)
    _edit_member_weights(folder, "member_k25.keras", _set_value("layers/dense/vars/1", -999.0))  # within 1000
    p = M.load_model(folder).p_ser(synthetic_snippets(5))
    assert np.isfinite(p).all()


def test_import_refuses_nan_weights_naming_the_layer(formats_dir, tmp_path):
    import h5py

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(formats_dir / "ModConvBinNormN20.h5", src / "ModConvBinNormN20.h5")
    (src / "ModConvBinNormN20.h5").chmod(0o644)
    with h5py.File(src / "ModConvBinNormN20.h5", "r+") as f:
        f["model_weights/dense/dense/bias:0"][0] = np.nan
    with pytest.raises(ModelError, match=r"ModConvBinNormN20\.h5: dense/bias holds 1 NaN"):
        M.import_models(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------- bounded memory whatever the weights file declares
def _declared_bomb(f):
    """The dense kernel replaced by 2 GiB of never-written float32 (a 200 kB file reads as 2 GiB)."""
    del f["layers/dense/vars/0"]
    f.create_dataset("layers/dense/vars/0", shape=(1 << 28, 2), dtype="float32", chunks=(1 << 18, 2), fillvalue=0)


def _gzip_bomb(f):
    """The dense kernel replaced by 1 GiB of zeros really stored, gzip-compressed 1000-fold."""
    import zlib

    del f["layers/dense/vars/0"]
    chunk = (1 << 20, 2)
    ds = f.create_dataset("layers/dense/vars/0", shape=(1 << 27, 2), dtype="float32", chunks=chunk, compression="gzip")
    packed = zlib.compress(bytes(8 << 20), 9)
    for i in range((1 << 27) // chunk[0]):
        ds.id.write_direct_chunk((i * chunk[0], 0), packed)


def _chunk_bomb(f):
    """A 2-value bias stored in one 1 GiB chunk (resizable dataset: the chunk may exceed its shape)."""
    del f["layers/dense/vars/1"]
    f.create_dataset("layers/dense/vars/1", shape=(2,), maxshape=(None,), chunks=(1 << 28,), dtype="float32")


@pytest.mark.parametrize(
    "bomb, message",
    [
        (_declared_bomb, r"layers/dense/vars/0 declares 2048\.0 MiB"),
        (_gzip_bomb, r"layers/dense/vars/0 declares 1024\.0 MiB"),
        (_chunk_bomb, r"layers/dense/vars/1 is stored in chunks of 1024\.0 MiB"),
    ],
    ids=["declared", "gzip", "chunk"],
)
def test_weights_file_bomb_refused_with_bounded_memory(saved_small, tmp_path, bomb, message):
    folder = tmp_path / "bomb"
    shutil.copytree(saved_small, folder)
    _edit_member_weights(folder, "member_k25.keras", bomb)
    assert (folder / "member_k25.keras").stat().st_size < 4 << 20  # small on disk
    script = f"""
import sys
from spikeinterface_sero.errors import ModelError
from spikeinterface_sero.model import load_model
for engine in ("numpy", "tensorflow"):
    try:
        load_model({str(folder)!r}, engine=engine)
        print("LOADED")
    except ModelError as error:
        print("REFUSED", error)
print("TENSORFLOW", "tensorflow" in sys.modules)
"""
    # the peak of a grandchild: a child's own ru_maxrss starts from its parent's (pytest's) at the fork
    launcher = (
        "import resource, subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]], check=True); "
        "print('PEAK_MB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", launcher, script], capture_output=True, text=True, env=env, timeout=300)
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert run.stdout.count("REFUSED") == 2, run.stdout + run.stderr
    assert re.search(message + r".*refused before reading", lines["REFUSED"])
    assert lines["TENSORFLOW"] == "False", run.stdout  # refused before Keras is even imported
    assert float(lines["PEAK_MB"]) < 300, lines["PEAK_MB"]


def test_oversized_legacy_h5_refused_before_reading(formats_dir, tmp_path):
    import h5py

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(formats_dir / "ModConvBinNormN20.h5", src / "ModConvBinNormN20.h5")
    (src / "ModConvBinNormN20.h5").chmod(0o644)
    with h5py.File(src / "ModConvBinNormN20.h5", "r+") as f:
        f.create_dataset("optimizer_weights/huge", shape=(1 << 30,), dtype="float64", chunks=(1 << 16,))
    with pytest.raises(ModelError, match=r"ModConvBinNormN20\.h5: optimizer_weights/huge declares 8192\.0 MiB"):
        M.import_models(src, tmp_path / "out")


# ---------------------------------------------------------------- damaged SavedModel checkpoints: one line
def _truncate(path, fraction):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _flip_every(path, step):
    data = bytearray(path.read_bytes())
    for i in range(step // 2, len(data), step):
        data[i] ^= 0x10
    path.write_bytes(bytes(data))


_DATA = "variables/variables.data-00000-of-00001"


@pytest.mark.parametrize(
    "target, damage",
    [
        (_DATA, lambda p: _truncate(p, 0.2)),
        (_DATA, lambda p: _truncate(p, 0.001)),
        (_DATA, lambda p: _flip_every(p, 4096)),
        ("variables/variables.index", lambda p: _truncate(p, 0.5)),
        ("variables/variables.index", lambda p: _flip_every(p, 97)),
        ("saved_model.pb", lambda p: _truncate(p, 0.3)),
    ],
    ids=["data-fifth", "data-stub", "data-bits", "index-half", "index-bits", "graph-truncated"],
)
def test_damaged_savedmodel_checkpoint_is_one_clear_error(formats_dir, tmp_path, target, damage):
    src = tmp_path / "src"
    shutil.copytree(formats_dir / "ModConvBinNormN20", src / "ModConvBinNormN20")
    for p in src.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    damage(src / "ModConvBinNormN20" / target)
    with pytest.raises(ModelError, match=r"ModConvBinNormN20.*(damaged|not the published)") as err:
        M.import_models(src, tmp_path / "out")
    assert "\n" not in str(err.value) and len(str(err.value)) < 600
    assert not (tmp_path / "out").exists()


def test_save_model_refuses_weights_load_model_would_refuse(tmp_path):
    ens = M.random_ensemble((20,), seed=1)
    weights = ens.members[0].get_weights()
    weights[5][3] = np.nan  # conv2d_1 bias, as a diverged training leaves it
    ens.members[0].set_weights(weights)
    with pytest.raises(ModelError, match=r"member_k20\.keras.*conv2d_1/bias holds 1 NaN"):
        M.save_model(ens, tmp_path / "diverged")
    assert not (tmp_path / "diverged").exists()
