"""The numpy engine (model/numpy_engine.py) and the weights read without Keras (model/weights.py): the same
outputs as TensorFlow to 1e-5 on the demo model, random members saved and reloaded, and the genuine
Keras-2 members; loading and predicting import no TensorFlow."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from conftest import ROOT, SHARED_MODELS  # noqa: E402

from spikeinterface_sero import model as M  # noqa: E402
from spikeinterface_sero.errors import ModelError  # noqa: E402
from spikeinterface_sero.model.weights import published_spec, read_member_weights  # noqa: E402
from spikeinterface_sero.testing import synthetic_snippets  # noqa: E402

TOL = 1e-5
# odd and even kernels (even and odd DFT lengths), the smallest and the largest
KERNELS = (1, 2, 20, 21, 31)


def _spikes(n: int = 160, seed: int = 1) -> np.ndarray:
    """Synthetic action currents, noise, and three flat snippets (zero, constant -80 pA, variance below
    LayerNorm's epsilon): n >= 44 snippets."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([synthetic_snippets(n - 40, seed=seed), rng.normal(0, 40, (37, 160)) - 20.0]).astype(np.float32)
    flat = np.zeros((3, 160), np.float32)
    flat[1] = -80.0  # constant
    flat[2] = rng.normal(0, 0.02, 160)  # variance below LayerNorm's epsilon
    return np.concatenate([x, flat])


@pytest.fixture(scope="module")
def random_members():
    return M.random_ensemble(KERNELS, seed=7)


@pytest.fixture(scope="module")
def random_folder(random_members, tmp_path_factory):
    return M.save_model(random_members, tmp_path_factory.mktemp("numpy") / "random", description="random weights")


# ------------------------------------------------------------------------------------- same outputs as TF
def test_demo_model_numpy_equals_tensorflow():
    if not (M.demo_model_folder() / "model_info.json").is_file():
        pytest.skip("the demo model is not installed")
    x = _spikes(300)
    ens = M.load_model()
    tf_ens = M.load_model(engine="tensorflow")  # members loaded by Keras from the files themselves
    assert ens.engine == "numpy" and tf_ens.engine == "tensorflow" and ens is not tf_ens
    assert ens.kernels == tf_ens.kernels == tuple(range(20, 32)) and ens.is_demo
    got = ens.predict_members(x)
    assert got.shape == (len(x), 12, 2) and got.dtype == np.float32
    assert np.abs(got - tf_ens.predict_members(x)).max() < TOL
    assert np.abs(got - M.predict_members_naive(tf_ens, x, batch_size=128)).max() < TOL
    np.testing.assert_allclose(ens.predict(x), got.mean(axis=1), atol=1e-7)
    np.testing.assert_allclose(ens.p_ser(x), tf_ens.p_ser(x), atol=TOL)


def test_random_members_saved_and_reloaded(random_members, random_folder):
    x = _spikes()
    naive = M.predict_members_naive(random_members, x, batch_size=64)
    assert np.std(naive) > 1e-3  # the random members do give different outputs
    tf_fused = random_members.with_engine("tensorflow")
    assert tf_fused.engine == "tensorflow" and random_members.engine == "numpy"
    in_memory = random_members.predict_members(x)  # numpy, weights taken from the Keras members
    assert np.abs(in_memory - tf_fused.predict_members(x)).max() < TOL
    assert np.abs(in_memory - naive).max() < TOL
    loaded = M.load_model(random_folder)
    assert loaded.engine == "numpy" and loaded.fused and loaded.kernels == KERNELS
    assert loaded._members is None  # no Keras model built to predict
    np.testing.assert_array_equal(loaded.predict_members(x), in_memory)
    assert (
        np.abs(loaded.predict_members(x) - M.load_model(random_folder, engine="tensorflow").predict_members(x)).max()
        < TOL
    )
    # every parameter read from the file is the member's, incl. LayerNorm gamma/beta and the biases
    for w, member in zip(loaded._member_weights(), random_members.members):
        for a, b in zip(w.keras_weights(), member.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert all(np.abs(w.gamma - 1).max() > 0.1 and np.abs(w.conv1_bias).max() > 0 for w in loaded._member_weights())


def test_each_parameter_changes_the_output(random_members):
    # a bug ignoring one parameter would leave the output unchanged when that parameter changes
    x = _spikes(60)
    base = random_members._member_weights()[2]  # kernel 20
    ref = M.NumpyEngine([base]).predict_members(x)
    for i, name in enumerate(
        ["gamma", "beta", "conv1_kernel", "conv1_bias", "conv2_kernel", "conv2_bias", "dense_kernel", "dense_bias"]
    ):
        arrays = [a.copy() for a in base.keras_weights()]
        arrays[i] = arrays[i] + np.float32(0.05) * np.random.default_rng(i).standard_normal(arrays[i].shape).astype(
            np.float32
        )
        w = M.MemberWeights(base.kernel, base.epsilon, *arrays)
        got = M.NumpyEngine([w]).predict_members(x)
        member = M.build_member(base.kernel)
        member.set_weights(arrays)
        assert np.abs(got - ref).max() > 1e-4, name
        assert np.abs(got[:, 0] - np.asarray(member(M.to_member_input(x), training=False))).max() < TOL, name


def test_genuine_keras2_members_imported(tmp_path):
    src = SHARED_MODELS / "BioModelDNN_BALANCED"
    if not src.is_dir():
        pytest.skip("../shared/models/keras2-tf2.15/BioModelDNN_BALANCED is not present on this machine")
    ref = np.load(src / "reference_predictions.npz")
    folder = M.import_models(src, tmp_path / "bio")
    ens = M.load_model(folder)
    assert ens.engine == "numpy" and ens.kernels == tuple(range(20, 32))
    x = ref["X"][..., 1, 0]
    np.testing.assert_allclose(ref["X"][0, :, 0, 0], M.TIME_COLUMN, rtol=1e-6)
    got = ens.predict_members(x)
    for i, k in enumerate(ens.kernels):
        assert np.abs(got[:, i] - ref[f"k{k}"]).max() < TOL, k  # TensorFlow 2.15's own predictions
    assert np.abs(got - M.load_model(folder, engine="tensorflow").predict_members(x)).max() < TOL


def test_genuine_keras2_files_read_directly(tmp_path):
    formats = SHARED_MODELS / "formats"
    if not formats.is_dir():
        pytest.skip("../shared/models/keras2-tf2.15/formats is not present on this machine")
    from spikeinterface_sero.model.folder import _checked_config

    ref = np.load(formats / "reference_predictions.npz")
    x = ref["X"][..., 1, 0]
    for k in (20, 27):
        for suffix in (".keras", ".h5"):
            path = formats / f"ModConvBinNormN{k}{suffix}"
            w = read_member_weights(path, _checked_config(path, trust=False))
            assert w is not None and w.kernel == k, path.name
            got = M.NumpyEngine([w]).predict_members(x)[:, 0]
            assert np.abs(got - ref[f"k{k}"]).max() < TOL, path.name
    # a model folder whose member is the genuine Keras-2 legacy HDF5 file loads on the numpy path too
    folder = M.import_models(formats, tmp_path / "f", choose={k: f"ModConvBinNormN{k}.keras" for k in (20, 27)})
    (folder / "member_k20.keras").unlink()
    shutil.copy(formats / "ModConvBinNormN20.h5", folder / "member_k20.h5")
    info = json.loads((folder / "model_info.json").read_text())
    (entry,) = [m for m in info["members"] if m["kernel"] == 20]
    entry["file"] = "member_k20.h5"
    entry["sha256"] = hashlib.sha256((folder / "member_k20.h5").read_bytes()).hexdigest()
    (folder / "model_info.json").write_text(json.dumps(info))
    ens = M.load_model(folder)
    assert ens.engine == "numpy" and ens.kernels == (20, 27)
    got = ens.predict_members(x)
    for i, k in enumerate(ens.kernels):
        assert np.abs(got[:, i] - ref[f"k{k}"]).max() < TOL


# ---------------------------------------------------------------------------------- no TensorFlow on the way
def test_load_and_predict_import_no_tensorflow(random_folder):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import spikeinterface_sero as s
        from spikeinterface_sero.testing import synthetic_snippets
        x = synthetic_snippets(50, seed=2)
        for folder in ({str(random_folder)!r}, None):
            if folder is None and not (s.model.demo_model_folder() / "model_info.json").is_file():
                continue
            e = s.load_model(folder)
            assert e.engine == "numpy", e.engine
            y = e.predict_members(x)
            assert y.shape == (50, len(e.kernels), 2) and np.isfinite(y).all()
            e.p_ser(x)
            e.classify_cells(x, cell_ids=["a"] * 25 + ["b"] * 25)
        bad = [m for m in ("tensorflow", "keras") if m in sys.modules]
        assert not bad, bad
        print("ok")
        """
    )
    env = dict(os.environ, SERO_MODEL_ENGINE="")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


# ------------------------------------------------------------------------------------ engine switch, details
def test_engine_switch(random_folder, monkeypatch):
    assert M.load_model(random_folder, engine="tensorflow").engine == "tensorflow"
    monkeypatch.setenv("SERO_MODEL_ENGINE", "tensorflow")
    assert M.load_model(random_folder).engine == "tensorflow"
    monkeypatch.setenv("SERO_MODEL_ENGINE", "torch")
    with pytest.raises(ModelError, match="SERO_MODEL_ENGINE"):
        M.load_model(random_folder)
    monkeypatch.delenv("SERO_MODEL_ENGINE")
    with pytest.raises(ModelError, match="engine must be"):
        M.load_model(random_folder, engine="jax")
    with pytest.raises(ModelError, match="engine must be"):
        M.Ensemble(M.load_model(random_folder).members, engine="fast")


def test_lazy_members_are_the_files_members(random_folder, tmp_path):
    M.clear_model_cache()
    ens = M.load_model(random_folder)
    assert ens._members is None and len(ens) == len(KERNELS)
    keras_loaded = M.load_model(random_folder, engine="tensorflow").members
    for a, b in zip(ens.members, keras_loaded):  # built from the weights on first use
        assert M.check_member_architecture(a) == M.member_kernel(b)
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    x = _spikes(50)
    assert np.abs(M.predict_members_naive(ens, x) - ens.predict_members(x)).max() < TOL
    cams = M.gradcam(ens, x[:3], layers=["conv2d"])
    assert cams["conv2d"].shape == (3, 160)
    again = M.load_model(M.save_model(ens, tmp_path / "saved_again"))  # saving goes through the Keras members
    np.testing.assert_array_equal(again.predict_members(x), ens.predict_members(x))


def test_threads_and_batches_give_the_same_outputs(random_members):
    x = _spikes(300)
    eng = M.NumpyEngine(random_members._member_weights())
    ref = eng.predict_members(x, threads=1)
    np.testing.assert_array_equal(eng.predict_members(x, threads=2), ref)
    np.testing.assert_array_equal(eng.predict_members(x, threads=7), ref)
    for batch in (1, 7, 64, 4096):
        assert np.abs(eng.predict_members(x, batch_size=batch) - ref).max() < 1e-6, batch
    assert eng.predict_members(x[:0]).shape == (0, len(KERNELS), 2)


def test_other_architectures_fall_back_to_keras(tmp_path):
    import keras

    m = keras.Sequential(
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
    folder = M.save_model(M.Ensemble([m]), tmp_path / "tanh")
    with zipfile.ZipFile(folder / "member_k20.keras") as z:
        assert published_spec(json.loads(z.read("config.json"))) is None
    ens = M.load_model(folder)
    assert ens.engine == "tensorflow" and not ens.fused
    x = _spikes(50)
    assert np.abs(ens.predict_members(x)[:, 0] - np.asarray(m(M.to_member_input(x), training=False))).max() < 1e-6


def test_published_spec_refuses_variants():
    member = M.build_member(20)
    config = json.loads(json.dumps(keras_config(member)))
    spec = published_spec(config)
    assert spec is not None and spec.kernel == 20 and spec.group_names[3] == "conv2d_1"

    def variant(edit):
        c = json.loads(json.dumps(config))
        edit(c["config"]["layers"])
        return published_spec(c)

    assert variant(lambda L: L[2]["config"].update(activation="tanh")) is None
    assert variant(lambda L: L[4]["config"].update(kernel_size=[21, 1])) is None
    assert variant(lambda L: L[1]["config"].update(axis=[2])) is None
    assert variant(lambda L: L[8]["config"].update(units=3)) is None
    assert variant(lambda L: L[2]["config"].update(dtype="bfloat16")) is None
    assert variant(lambda L: L[3]["config"].update(pool_size=[3, 1])) is None
    assert variant(lambda L: L[2].update(module="my_package.layers")) is None
    assert variant(lambda L: L.pop(7)) is None
    assert published_spec({"class_name": "Functional", "config": {}}) is None
    assert published_spec(["not", "a", "config"]) is None


def keras_config(model):
    from keras.saving import serialize_keras_object

    return serialize_keras_object(model)


def test_damaged_weights_are_a_model_error(random_folder, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(random_folder, folder)
    path = folder / "member_k20.keras"
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    entries["model.weights.h5"] = b"not an HDF5 file" * 10
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    info = json.loads((folder / "model_info.json").read_text())
    for m in info["members"]:
        if m["file"] == path.name:
            m["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "model_info.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match=r"member_k20\.keras"):
        M.load_model(folder)
