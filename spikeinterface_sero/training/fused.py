"""Every member trained at once, with the sample-independent half of the work done once per step.

Why by hand: a member sees (time, current) columns through the same ``(k, 1)`` filters, and its time column
is the same ramp for every sample, so its path through LayerNormalization, both convolutions and the first
pooling depends on the weights only. Keras would compute it for every sample of the batch; here it is
computed once per step and joined to the current's path at the ``(2, 2)`` pooling, which is where the
published member mixes the two columns. The weights are held in the published members' shapes, so a
trained member is exactly :func:`spikeinterface_sero.model.build_member` with these weights.
``docs/training.md`` ("Fused training") has the measurements.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import TrainingError
from ..model import TIME_COLUMN
from ..model import spec as member_spec
from ..model._backend import _keras, _tf

__all__ = ["PRECISIONS", "build_fused_members", "native_bfloat16_cpu", "resolve_precision"]

#: compute precisions of :func:`build_fused_members` (weights are float32 in all of them)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
#: CPU flags (Linux ``/proc/cpuinfo``) of native bfloat16 arithmetic
_BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


class _MemberWeights:
    """One member's weights inside the fused layer, in :func:`build_member`'s order and shapes."""

    def __init__(self, variables: list):
        self.variables = variables

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in self.variables]

    def set_weights(self, weights) -> None:
        for variable, value in zip(self.variables, weights, strict=True):
            variable.assign(value)


def _fused_layer_class():
    keras = _keras()
    import tensorflow as tf

    class FusedMembers(keras.layers.Layer):
        """All members of an ensemble as one layer: ``(n, 160, 2, 1)`` member input -> one ``(n, 2)`` per member."""

        def __init__(self, kernels, compute_dtype_name: str = "float32", seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.kernels = [int(k) for k in kernels]
            self.compute_dtype_name = compute_dtype_name
            self.seed_generator = keras.random.SeedGenerator(seed)

        def build(self, input_shape):
            self.member_variables = []
            for k in self.kernels:  # the member specification's weights, in build_member's order
                self.member_variables.append(
                    [
                        self.add_weight(
                            shape=weight.shape(k),
                            initializer=weight.initializer,
                            name=f"k{k}_{layer.name}_{weight.variable}",
                            dtype=member_spec.DTYPE,
                        )
                        for _, layer, weight in member_spec.weight_specs(k)
                    ]
                )
            ramp = TIME_COLUMN.astype(np.float64)
            ramp = (ramp - ramp.mean()) / np.sqrt(ramp.var() + member_spec.EPSILON)
            self.normalised_time = tf.constant(ramp[None, :], tf.float32)  # the time column after normalisation

        def _convolutions(self, z, variables):
            """(m, 160) normalised column -> (m, length, 64) after conv, pool, conv, pool over time."""
            dtype = (
                tf.as_dtype(self.compute_dtype_name.replace("mixed_", ""))
                if "mixed" in self.compute_dtype_name
                else tf.float32
            )
            _, _, kernel1, bias1, kernel2, bias2, _, _ = variables
            kernel1 = tf.cast(tf.squeeze(kernel1, axis=1), dtype)  # (k, 1, 32)
            kernel2 = tf.cast(tf.squeeze(kernel2, axis=1), dtype)  # (k, 32, 64)
            h = tf.nn.relu(tf.nn.conv1d(tf.cast(z, dtype)[:, :, None], kernel1, 1, "VALID") + tf.cast(bias1, dtype))
            h = tf.nn.max_pool1d(h, 2, 2, "VALID")
            h = tf.nn.relu(tf.nn.conv1d(h, kernel2, 1, "VALID") + tf.cast(bias2, dtype))
            return tf.cast(tf.nn.max_pool1d(h, 2, 2, "VALID"), tf.float32)

        def call(self, inputs, training=False):
            current = tf.cast(inputs[:, :, 1, 0], tf.float32)  # column 1; column 0 is always the time ramp
            mean = tf.reduce_mean(current, axis=1, keepdims=True)
            variance = tf.reduce_mean(tf.square(current - mean), axis=1, keepdims=True)
            normalised = (current - mean) * tf.math.rsqrt(variance + member_spec.EPSILON)
            outputs = []
            for variables in self.member_variables:
                gamma, beta = variables[0], variables[1]
                from_current = self._convolutions(normalised * gamma + beta, variables)
                from_time = self._convolutions(self.normalised_time * gamma + beta, variables)  # once per step
                features = tf.maximum(from_current, from_time)  # MaxPooling2D((2, 2)) over the two columns
                features = tf.reshape(features, (tf.shape(current)[0], -1))
                if training:
                    features = keras.random.dropout(features, member_spec.DROPOUT, seed=self.seed_generator)
                outputs.append(tf.sigmoid(tf.matmul(features, variables[6]) + variables[7]))
            return outputs

    return FusedMembers


def native_bfloat16_cpu(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), from Linux's ``/proc/cpuinfo``.

    Neither TensorFlow nor the standard library says so; ``cpuinfo`` (the file's text) is read when None.
    False where the file does not exist (macOS, Windows): those CPUs train in float32.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in _BFLOAT16_CPU_FLAGS)


def resolve_precision(precision: str = "auto") -> str:
    """The compute precision to train with: ``precision`` itself, or for ``"auto"`` the fastest one this
    machine computes natively.

    ``"auto"``: ``"mixed_bfloat16"`` on a GPU of compute capability 8.0 or more (Ampere and later) and on
    CPUs with AVX512-BF16 or AMX (about 3x faster than float32 there, docs/training.md section 6),
    ``"mixed_float16"`` on older GPUs, else ``"float32"`` (bfloat16 would be emulated, and slower).

    Raises
    ------
    TrainingError
        ``precision`` is not ``"auto"`` or one of :data:`PRECISIONS`.
    """
    if precision != "auto":
        if precision not in PRECISIONS:
            raise TrainingError(f"precision must be 'auto' or one of {', '.join(PRECISIONS)}, got {precision!r}")
        return precision
    tf = _tf()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return "mixed_bfloat16" if tuple(capability) >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if native_bfloat16_cpu() else "float32"


def build_fused_members(kernels: Iterable[int], *, precision: str = "float32", seed: int | None = None):
    """A Keras model that trains every member at once: ``(fused, members)``.

    Parameters
    ----------
    kernels : iterable of int
        The members' kernel sizes.
    precision : {"float32", "mixed_bfloat16", "mixed_float16", "auto"}, default: "float32"
        Compute precision of the convolutions (the weights, normalisation, Dense layers and outputs stay
        float32). ``"mixed_bfloat16"`` uses AMX / AVX512-BF16 on CPUs that have them and the tensor cores
        of recent GPUs; ``"auto"``: :func:`resolve_precision`.
    seed : int or None, default: None
        Seed of the dropout masks (None: from Keras' global seed, ``keras.utils.set_random_seed``).

    Returns
    -------
    fused : keras.Model
        Input ``(160, 2, 1)`` (:func:`~spikeinterface_sero.model.to_member_input`), one ``(2,)`` output per
        member named ``"k<kernel>"``.
    members : dict
        Kernel -> an object with ``get_weights()`` / ``set_weights()`` in the order and shapes of
        :func:`~spikeinterface_sero.model.build_member`'s weights.
    """
    precision = resolve_precision(precision)
    keras = _keras()
    kernels = [int(k) for k in kernels]
    layer = _fused_layer_class()(kernels, compute_dtype_name=precision, seed=seed, name="members")
    snippet_input = keras.Input(shape=member_spec.MEMBER_INPUT_SHAPE, name="snippet")
    outputs = layer(snippet_input)
    named = {f"k{k}": keras.layers.Identity(name=f"k{k}")(output) for k, output in zip(kernels, outputs, strict=True)}
    fused = keras.Model(snippet_input, named, name="fused_ensemble")
    members = {k: _MemberWeights(variables) for k, variables in zip(kernels, layer.member_variables, strict=True)}
    return fused, members
