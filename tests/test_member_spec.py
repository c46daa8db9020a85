"""The member specification (model/spec.py) drives every reader of the member: the Keras builder, the
architecture checks (of a Keras model and of a saved configuration), the weight reader, the numpy engine, the
TensorFlow fused predictor and the fused trainer list the spec's layers and shapes, and a change of the spec
is seen by all of them."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from spikeinterface_sero import model as M  # noqa: E402
from spikeinterface_sero.errors import ModelError  # noqa: E402
from spikeinterface_sero.model import spec as S  # noqa: E402
from spikeinterface_sero.model.numpy_engine import _Member  # noqa: E402
from spikeinterface_sero.model.weights import (  # noqa: E402
    MemberWeights,
    member_weights_from_keras,
    published_spec,
    read_member_weights,  # noqa: E402
)
from spikeinterface_sero.testing import synthetic_snippets  # noqa: E402
from spikeinterface_sero.training.fused import build_fused_members  # noqa: E402


def _random_weights(kernel: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.2, shape).astype(np.float32) for shape in S.weight_shapes(kernel)]


def _readers_agree(kernel: int, tmp_path) -> None:
    """Every reader lists the spec's layers and shapes for ``kernel``, and they compute the same outputs."""
    shapes = S.weight_shapes(kernel)
    member = M.build_member(kernel)  # the Keras builder
    assert [type(layer).__name__ for layer in member.layers] == [layer.class_name for layer in S.member_layers(kernel)]
    assert [layer.name for layer in member.layers] == [layer.name for layer in S.member_layers(kernel)]
    assert [tuple(w.shape) for w in member.get_weights()] == shapes
    assert member.count_params() == S.n_parameters(kernel)
    lengths = S.layer_lengths(kernel)
    c1, c2 = S.FILTERS
    assert tuple(member.layers[1].output.shape) == (None, lengths["conv1"], 2, c1)
    assert tuple(member.layers[3].output.shape) == (None, lengths["conv2"], 2, c2)
    assert tuple(member.layers[4].output.shape) == (None, lengths["pool2"], 1, c2)  # time and current merged
    assert tuple(member.layers[5].output.shape) == (None, lengths["pool2"] * c2)
    assert M.check_member_architecture(member) == kernel  # the architecture check of a Keras model
    member.set_weights(_random_weights(kernel))
    weights = member_weights_from_keras(member)  # the weight container
    assert [a.shape for a in weights.keras_weights()] == shapes
    engine_member = _Member(weights)  # the numpy engine
    assert (engine_member.n_pool, engine_member.c1, engine_member.c2) == (lengths["pool2"], c1, c2)
    assert engine_member.wd.shape == (lengths["pool2"], c2, S.N_OUTPUTS)
    _, branches = build_fused_members([kernel], precision="float32")  # the fused trainer
    assert [tuple(w.shape) for w in branches[kernel].get_weights()] == shapes
    ensemble = M.Ensemble([member])
    folder = M.save_model(ensemble, tmp_path / f"k{kernel}")
    path = folder / f"member_k{kernel}.keras"
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
    assert published_spec(config).kernel == kernel  # the architecture check of a saved configuration
    read = read_member_weights(path, config)  # the weight reader
    for a, b in zip(read.keras_weights(), member.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = synthetic_snippets(20, seed=kernel)
    keras_out = np.asarray(member(M.to_member_input(x), training=False))
    numpy_out = M.load_model(folder).predict_members(x)[:, 0]
    tensorflow_out = ensemble.with_engine("tensorflow").predict_members(x)[:, 0]
    np.testing.assert_allclose(numpy_out, keras_out, atol=1e-5)
    np.testing.assert_allclose(tensorflow_out, keras_out, atol=1e-5)


@pytest.mark.parametrize("kernel", [1, 20, 31])
def test_every_reader_lists_the_spec(kernel, tmp_path):
    _readers_agree(kernel, tmp_path)


def test_a_change_of_the_spec_is_seen_by_every_reader(tmp_path, monkeypatch):
    published = M.build_member(20)
    monkeypatch.setattr(S, "FILTERS", (8, 16))  # a narrower member: every reader must follow
    M.clear_model_cache()
    _readers_agree(20, tmp_path)
    assert S.n_parameters(20) == 320 + (20 * 8 + 8) + (20 * 8 * 16 + 16) + (25 * 16 * 2 + 2)
    with pytest.raises(ModelError, match="conv2d: filters 32, expected 8"):
        M.check_member_architecture(published)  # the published member no longer is the spec's
    with pytest.raises(ModelError, match=r"conv2d/kernel has shape \(20, 1, 1, 32\), expected \(20, 1, 1, 8\)"):
        MemberWeights.from_arrays(20, published.get_weights())
    M.clear_model_cache()


def test_spec_words_and_bounds():
    assert S.describe() == (
        "LayerNormalization(axis=[1]) -> Conv2D(32, (k, 1), relu) -> MaxPooling2D((2, 1)) -> Conv2D(64, (k, 1), "
        "relu) -> MaxPooling2D((2, 2)) -> Flatten -> Dropout(0.5) -> Dense(2, sigmoid)"
    )
    assert S.n_parameters(20) == 45_218 and S.pooled_length(20) == 25
    # the bound on declared bytes covers the largest member 4 times over, and stays small
    assert 4 * 4 * S.n_parameters(31) < S.parameter_bytes_bound() < 3 << 20
    for bad in (0, 32, 2.5, True, "20"):
        with pytest.raises(ModelError, match="kernel size"):
            S.check_kernel(bad)


def test_config_problems_name_each_difference():
    member = M.build_member(20)
    layers = [(type(layer).__name__, layer.get_config()) for layer in member.layers]
    assert S.config_problems(layers) == []
    layers[3][1]["strides"] = (2, 1)
    layers[7][1]["activation"] = "softmax"
    assert S.config_problems(layers) == [
        "conv2d_1: strides (2, 1), expected (1, 1)",
        "dense: activation 'softmax', expected 'sigmoid'",
    ]
    assert "layers are Conv2D" in S.config_problems(layers[1:])[0]
