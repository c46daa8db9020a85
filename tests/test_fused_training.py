"""The fused trainer (training/fused.py): the published members exactly, and on several devices (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spikeinterface_sero.testing import labelled_synthetic_snippets

pytest.importorskip("tensorflow")


@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 5e-3)])
def test_fused_members_compute_exactly_the_published_members(precision, tolerance):
    """Weights moved from the fused layer into build_member give the same outputs, and back."""
    from spikeinterface_sero.model import build_member, to_member_input
    from spikeinterface_sero.training.fused import build_fused_members

    snippets, _ = labelled_synthetic_snippets(200)
    member_input = to_member_input(snippets)
    kernels = [1, 20, 31]
    fused, members = build_fused_members(kernels, precision=precision)
    for k in kernels:  # random published members' weights into the fused layer
        members[k].set_weights(build_member(k).get_weights())
    outputs = fused.predict(member_input, verbose=0)
    for k in kernels:
        member = build_member(k)
        member.set_weights(members[k].get_weights())
        assert [w.shape for w in member.get_weights()] == [w.shape for w in members[k].get_weights()]
        np.testing.assert_allclose(outputs[f"k{k}"], member.predict(member_input, verbose=0), atol=tolerance)


def test_one_training_step_matches_the_naive_member():
    """Same weights, same batch, no dropout: one Adam step of the fused model moves a member's weights as
    fitting that member alone does (the time column's path, computed once per step, has the same gradient)."""
    import keras

    from spikeinterface_sero.model import build_member, to_member_input
    from spikeinterface_sero.training.fused import build_fused_members
    from spikeinterface_sero.training.train import compile_fused

    snippets, labels = labelled_synthetic_snippets(64)
    member_input, targets = to_member_input(snippets), np.eye(2, dtype=np.float32)[labels]
    member = build_member(24)
    member.layers[-2].rate = 0.0  # no dropout, so both see the same function
    fused, members = build_fused_members([24])
    members[24].set_weights(member.get_weights())
    fused_layer = fused.get_layer("members")
    fused_layer.call = _without_dropout(fused_layer.call)
    member.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    compile_fused(fused, [24])
    member.fit(member_input, targets, batch_size=64, epochs=1, shuffle=False, verbose=0)
    fused.fit(member_input, {"k24": targets}, batch_size=64, epochs=1, shuffle=False, verbose=0)
    for ours, theirs in zip(members[24].get_weights(), member.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-5)


def _without_dropout(call):
    def wrapped(inputs, training=False):
        return call(inputs, training=False)

    return wrapped


def test_training_runs_under_a_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """tf.distribute: the same train_ensemble on two logical CPU devices (a stand-in for two GPUs)."""
    script = textwrap.dedent(
        f"""
        import json, os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from spikeinterface_sero.testing import labelled_synthetic_snippets
        from spikeinterface_sero.training import dataset_from_arrays, train_ensemble
        x, y = labelled_synthetic_snippets(256)
        dataset = dataset_from_arrays(x, y, [f"c{{v}}{{i % 6}}" for i, v in enumerate(y)])
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        ensemble, history = train_ensemble(dataset, None, kernels=[20, 21], epochs=2, synthetic=0,
            progress_bar=False, strategy=strategy, deterministic=False, recipe="paper")
        p = ensemble.predict(x)
        json.dump({{"replicas": history["settings"]["replicas"], "loss": history["history"]["loss"],
                   "accuracy": float(((p[:, 0] > p[:, 1]) == (y == 0)).mean())}}, open({str(tmp_path / "r.json")!r}, "w"))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["replicas"] == 2 and result["loss"][1] < result["loss"][0]
    assert result["accuracy"] > 0.8


_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n"


def test_native_bfloat16_cpu_reads_the_flags():
    from spikeinterface_sero.training.fused import native_bfloat16_cpu

    assert native_bfloat16_cpu(_CPUINFO.format(extra="avx512_bf16"))
    assert native_bfloat16_cpu(_CPUINFO.format(extra="amx_bf16 amx_tile"))
    assert not native_bfloat16_cpu(_CPUINFO.format(extra="avx512_vnni"))
    assert not native_bfloat16_cpu("")


def test_auto_precision_is_what_this_machine_computes_natively_and_is_recorded():
    import tensorflow as tf

    from spikeinterface_sero.errors import TrainingError
    from spikeinterface_sero.training import dataset_from_arrays, train_ensemble
    from spikeinterface_sero.training.fused import native_bfloat16_cpu, resolve_precision

    if tf.config.list_physical_devices("GPU"):
        assert resolve_precision("auto") in ("mixed_bfloat16", "mixed_float16")
    else:
        assert resolve_precision("auto") == ("mixed_bfloat16" if native_bfloat16_cpu() else "float32")
    assert resolve_precision("float32") == "float32"
    with pytest.raises(TrainingError, match="'auto' or one of"):
        resolve_precision("bfloat16")
    x, y = labelled_synthetic_snippets(64, seed=3)
    dataset = dataset_from_arrays(x, y, [f"c{v}{i % 4}" for i, v in enumerate(y)])
    _, history = train_ensemble(dataset, None, kernels=[20], epochs=1, synthetic=0, progress_bar=False, recipe="paper")
    assert history["settings"]["precision"] == resolve_precision("auto")  # the card says what "auto" chose
