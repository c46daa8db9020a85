"""The one description of an ensemble member (Corradetti et al. 2024): its layers, their settings, its
weights' names, shapes and initialisers as functions of the kernel size, their dtype and the bound on their
values. The Keras builder, the architecture checks (of a Keras model and of a saved configuration), the
weight readers, the numpy engine and the fused trainer all read it (``docs/model-folder.md``, "The member
specification").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..constants import LAYER_NORM_EPSILON, SNIPPET_LENGTH
from ..errors import ModelError

__all__ = [
    "DTYPE",
    "EPSILON",
    "DROPOUT",
    "FILTERS",
    "MAX_ABS_WEIGHT",
    "MAX_KERNEL",
    "MEMBER_INPUT_SHAPE",
    "MIN_KERNEL",
    "N_OUTPUTS",
    "LayerSpec",
    "WeightSpec",
    "check_kernel",
    "check_weight_values",
    "config_problems",
    "describe",
    "first_kernel",
    "is_float32",
    "layer_lengths",
    "member_layers",
    "n_parameters",
    "parameter_bytes_bound",
    "pooled_length",
    "weight_shapes",
    "weight_specs",
]

#: one member input: 160 samples x (time, current) columns x 1 channel
MEMBER_INPUT_SHAPE = (SNIPPET_LENGTH, 2, 1)
MIN_KERNEL, MAX_KERNEL = 1, 31
#: the dtype of every weight (and of the published members' computation)
DTYPE = "float32"
EPSILON = LAYER_NORM_EPSILON  # LayerNormalization's epsilon (Keras' default, as the authors used it)
DROPOUT = 0.5  # the training-time dropout rate before the dense layer
FILTERS = (32, 64)  # of the first and the second convolution
N_OUTPUTS = 2  # unit 0 serotonergic, unit 1 non-serotonergic
#: the largest |weight| a member may hold. Trained members hold weights of order 1 (the published-format
#: reference members and this package's demo model: at most 1.1); 1000 leaves three orders of magnitude of
#: margin and keeps every float32 sum finite: with |w| <= B the logit is at most ~1.1e9 B^4 (1.1e21 for
#: B = 1000, far below float32's 3.4e38), so a member within the bound cannot overflow whatever its input.
MAX_ABS_WEIGHT = 1000.0


@dataclass(frozen=True)
class WeightSpec:
    """One weight array of a member: ``field`` (its name in :class:`~.weights.MemberWeights`), ``variable``
    (Keras' name of it in its layer), ``shape`` (a function of the kernel size) and Keras' ``initializer``."""

    field: str
    variable: str
    shape: Callable[[int], tuple]
    initializer: str


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a member: its Keras ``name`` and ``class_name``, the ``settings`` its configuration must
    hold (as Keras' ``get_config`` writes them; the builder passes ``arguments``) and its ``weights``."""

    name: str
    class_name: str
    settings: Mapping = field(default_factory=dict)
    arguments: tuple = ()
    weights: tuple = ()

    def keras_arguments(self) -> dict:
        """The constructor arguments :func:`~.architecture.build_member` passes (besides ``name``)."""
        return {key: self.settings[key] for key in self.arguments}


def check_kernel(kernel_size) -> int:
    """``kernel_size`` as an int within 1-31, else :class:`~spikeinterface_sero.errors.ModelError`."""
    try:
        k = int(kernel_size)
    except (TypeError, ValueError):
        raise ModelError(f"kernel size must be an integer {MIN_KERNEL}-{MAX_KERNEL}, got {kernel_size!r}") from None
    if isinstance(kernel_size, bool) or k != kernel_size or not MIN_KERNEL <= k <= MAX_KERNEL:
        raise ModelError(f"kernel size must be an integer from {MIN_KERNEL} to {MAX_KERNEL}, got {kernel_size!r}")
    return k


def layer_lengths(kernel: int) -> dict:
    """Time steps after each layer of a member with kernel ``kernel`` (``pool2`` is what Dense flattens)."""
    conv1 = SNIPPET_LENGTH - kernel + 1
    pool1 = conv1 // 2
    conv2 = pool1 - kernel + 1
    return {"conv1": conv1, "pool1": pool1, "conv2": conv2, "pool2": conv2 // 2}


def pooled_length(kernel: int) -> int:
    """Time steps after the second pooling for kernel ``kernel`` (25 for k = 20)."""
    return layer_lengths(kernel)["pool2"]


def member_layers(kernel: int) -> tuple[LayerSpec, ...]:
    """The layers of the member with kernel ``kernel``, input to output (the input layer not included)."""
    k = check_kernel(kernel)
    conv = {"strides": (1, 1), "padding": "valid", "data_format": "channels_last", "dilation_rate": (1, 1)}
    conv.update(groups=1, activation="relu", use_bias=True)
    pool = {"padding": "valid", "data_format": "channels_last"}
    c1, c2 = FILTERS
    return (
        LayerSpec(
            "layer_normalization",
            "LayerNormalization",
            {"axis": [1], "epsilon": EPSILON, "center": True, "scale": True, "rms_scaling": False},
            ("axis", "epsilon"),
            (
                WeightSpec("gamma", "gamma", lambda k: (SNIPPET_LENGTH,), "ones"),
                WeightSpec("beta", "beta", lambda k: (SNIPPET_LENGTH,), "zeros"),
            ),
        ),
        LayerSpec(
            "conv2d",
            "Conv2D",
            {"filters": c1, "kernel_size": (k, 1), **conv},
            ("filters", "kernel_size", "activation"),
            (
                WeightSpec("conv1_kernel", "kernel", lambda k: (k, 1, 1, c1), "glorot_uniform"),
                WeightSpec("conv1_bias", "bias", lambda k: (c1,), "zeros"),
            ),
        ),
        LayerSpec("max_pooling2d", "MaxPooling2D", {"pool_size": (2, 1), "strides": (2, 1), **pool}, ("pool_size",)),
        LayerSpec(
            "conv2d_1",
            "Conv2D",
            {"filters": c2, "kernel_size": (k, 1), **conv},
            ("filters", "kernel_size", "activation"),
            (
                WeightSpec("conv2_kernel", "kernel", lambda k: (k, 1, c1, c2), "glorot_uniform"),
                WeightSpec("conv2_bias", "bias", lambda k: (c2,), "zeros"),
            ),
        ),
        LayerSpec("max_pooling2d_1", "MaxPooling2D", {"pool_size": (2, 2), "strides": (2, 2), **pool}, ("pool_size",)),
        LayerSpec("flatten", "Flatten", {"data_format": "channels_last"}),
        LayerSpec("dropout", "Dropout", {"rate": DROPOUT, "noise_shape": None}, ("rate",)),
        LayerSpec(
            "dense",
            "Dense",
            {"units": N_OUTPUTS, "activation": "sigmoid", "use_bias": True},
            ("units", "activation"),
            (
                WeightSpec("dense_kernel", "kernel", lambda k: (pooled_length(k) * c2, N_OUTPUTS), "glorot_uniform"),
                WeightSpec("dense_bias", "bias", lambda k: (N_OUTPUTS,), "zeros"),
            ),
        ),
    )


def weight_specs(kernel: int) -> list[tuple[int, LayerSpec, WeightSpec]]:
    """``(layer index, layer, weight)`` for every weight, in the order of ``build_member(k).get_weights()``."""
    return [(i, layer, w) for i, layer in enumerate(member_layers(kernel)) for w in layer.weights]


def weight_shapes(kernel: int) -> list[tuple]:
    """The shapes of ``build_member(kernel).get_weights()``, in order."""
    return [w.shape(kernel) for _, _, w in weight_specs(kernel)]


def n_parameters(kernel: int) -> int:
    """The number of weights of a member (45,218 for k = 20)."""
    return sum(math.prod(shape) for shape in weight_shapes(kernel))


def parameter_bytes_bound() -> int:
    """Bytes the stored arrays of any member file may declare: the largest member's float32 weights, 4 times
    over (the weights, Adam's two moments as a Keras file may keep them, a spare copy), plus 1 MiB for
    counters and the file's own structure. 2.1 MiB; a genuine member file holds at most 0.8 MiB of arrays."""
    largest = max(n_parameters(k) for k in range(MIN_KERNEL, MAX_KERNEL + 1))
    return 4 * largest * np.dtype(DTYPE).itemsize + (1 << 20)


def describe() -> str:
    """The member, layer by layer, in words (the model card and the docs)."""
    parts = []
    for layer in member_layers(20):
        s = layer.settings
        if layer.class_name == "LayerNormalization":
            parts.append(f"LayerNormalization(axis={s['axis']})")
        elif layer.class_name == "Conv2D":
            parts.append(f"Conv2D({s['filters']}, (k, 1), {s['activation']})")
        elif layer.class_name == "MaxPooling2D":
            parts.append(f"MaxPooling2D({s['pool_size']})")
        elif layer.class_name == "Dropout":
            parts.append(f"Dropout({s['rate']})")
        elif layer.class_name == "Dense":
            parts.append(f"Dense({s['units']}, {s['activation']})")
        else:
            parts.append(layer.class_name)
    return " -> ".join(parts)


# --------------------------------------------------------------------------------------------------------
# Checking a configuration (Keras' get_config of a layer, or the JSON of a saved file) against the spec
# --------------------------------------------------------------------------------------------------------
#: settings a saved configuration may leave out, with the value Keras then uses
_DEFAULTS = {"rms_scaling": False, "noise_shape": None, "groups": 1, "use_bias": True, "center": True, "scale": True}
_OPTIONAL = {"data_format": None, "strides": None}  # absent or None: Keras' default (channels_last, = pool_size)


def _normalised(key: str, value):
    """A configuration value in the spec's form (lists as tuples, negative axes as positive)."""
    if key == "axis":
        axes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(axes, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            return value
        return [a % 4 if a < 0 else a for a in axes]
    if isinstance(value, list):
        return tuple(value)
    return value


def _same(key: str, got, want) -> bool:
    got = _normalised(key, got)
    if key == "epsilon":
        return isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got) and got > 0
    if key == "rate":
        return isinstance(got, (int, float)) and not isinstance(got, bool) and 0 <= got < 1
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    return got == want


def _setting_problems(layer: LayerSpec, config: Mapping) -> list[str]:
    problems = []
    for key, want in layer.settings.items():
        if key in config:
            got = config[key]
        elif key in _DEFAULTS:
            got = _DEFAULTS[key]
        elif key in _OPTIONAL:
            continue
        else:
            problems.append(f"{layer.name}: {key} missing, expected {want!r}")
            continue
        if key in _OPTIONAL and got is None:
            continue
        if not _same(key, got, want):
            problems.append(f"{layer.name}: {key} {got!r}, expected {want!r}")
    for key in ("lora_rank", "quantization_config"):
        if config.get(key):
            problems.append(f"{layer.name}: {key} {config[key]!r}, expected none")
    return problems


def is_float32(dtype) -> bool:
    """Whether a configuration's ``dtype`` entry (a name or Keras' DTypePolicy) computes in float32."""
    if dtype is None:
        return True
    if isinstance(dtype, str):
        return dtype == DTYPE
    if isinstance(dtype, Mapping):
        cfg = dtype.get("config")
        return (
            dtype.get("class_name") in ("DTypePolicy", "Policy")
            and isinstance(cfg, Mapping)
            and cfg.get("name") == DTYPE
        )
    return False


def config_problems(layers: list, *, float32: bool = True) -> list[str]:
    """Every way a member's layers differ from the spec (empty when they are the published member).

    Parameters
    ----------
    layers : list of (str, dict)
        ``(class name, configuration)`` of each layer but the input, in order: Keras' ``get_config()`` of a
        built model's layers, or the ``config`` entries of a saved model's JSON.
    float32 : bool, default: True
        Also require every layer to compute in float32.

    Returns
    -------
    list of str
        One line per difference; the kernel size is read from the first convolution.
    """
    kernel = first_kernel(layers)
    try:
        spec = member_layers(kernel if kernel is not None else 20)
    except ModelError as error:
        return [str(error)]
    names = [str(class_name) for class_name, _ in layers]
    want = [layer.class_name for layer in spec]
    if names != want:
        return [f"layers are {' -> '.join(names)}; the published member is {' -> '.join(want)}"]
    problems = [] if kernel is not None else ["no first convolution kernel of shape (k, 1)"]
    for layer, (_, config) in zip(spec, layers):
        if not isinstance(config, Mapping):
            problems.append(f"{layer.name}: its configuration is not an object")
            continue
        problems += _setting_problems(layer, config)
        if float32 and not is_float32(config.get("dtype")):
            problems.append(f"{layer.name}: dtype {config.get('dtype')!r}, expected {DTYPE}")
    return problems


def first_kernel(layers: list) -> int | None:
    """The kernel length of the first ``Conv2D`` among ``(class name, configuration)`` pairs (None if none)."""
    for class_name, config in layers:
        if class_name == "Conv2D" and isinstance(config, Mapping):
            size = _normalised("kernel_size", config.get("kernel_size"))
            if isinstance(size, int) and not isinstance(size, bool):
                return size
            if isinstance(size, tuple) and size and isinstance(size[0], int) and not isinstance(size[0], bool):
                return size[0]
            return None
    return None


# --------------------------------------------------------------------------------------------------------
# Checking the weights' values
# --------------------------------------------------------------------------------------------------------
def check_weight_values(member: str, arrays: list, labels: list[str]) -> None:
    """Refuse weights that are not finite or whose magnitude exceeds :data:`MAX_ABS_WEIGHT`.

    Parameters
    ----------
    member : str
        The member's name in the message (its file).
    arrays : list of numpy.ndarray
        Its weights.
    labels : list of str
        Each array's name in the message (``"dense/bias"``).

    Raises
    ------
    ModelError
        Naming the member, the layer's weight and what is wrong, at the first offending array.
    """
    for array, label in zip(arrays, labels):
        a = np.asarray(array)
        if a.dtype.kind not in "fiu":
            raise ModelError(f"member {member}: {label} has dtype {a.dtype}, not a number; the file is not a member")
        finite = np.isfinite(a)
        if not finite.all():
            n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            raise ModelError(
                f"member {member}: {label} holds {n_nan} NaN and {n_inf} infinite values; the member is damaged "
                "(or its training diverged): get a fresh copy or train it again"
            )
        if a.size and float(np.abs(a).max()) > MAX_ABS_WEIGHT:
            raise ModelError(
                f"member {member}: {label} holds a value of magnitude {float(np.abs(a).max()):.3g}, over the "
                f"{MAX_ABS_WEIGHT:g} a trained member can hold (docs/model-folder.md); the member is damaged"
            )
