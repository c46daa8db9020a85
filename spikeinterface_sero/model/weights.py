"""The weights of a published member, read from a Keras file with h5py (the configuration as JSON data,
nothing executed), without TensorFlow or Keras (``docs/model-folder.md``, "Reading member files").
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import SNIPPET_LENGTH
from ..errors import ModelError
from .architecture import MAX_KERNEL, MEMBER_INPUT_SHAPE, MIN_KERNEL

__all__ = ["MemberWeights", "published_spec", "read_member_weights", "member_weights_from_keras"]

_LAYERS = (
    "LayerNormalization",
    "Conv2D",
    "MaxPooling2D",
    "Conv2D",
    "MaxPooling2D",
    "Flatten",
    "Dropout",
    "Dense",
)
MAX_WEIGHTS_BYTES = 64 << 20  # model.weights.h5 of a member is < 1 MB


@dataclass(eq=False)
class MemberWeights:
    """The parameters of one published member, float32, in Keras' shapes and order.

    ``gamma``, ``beta`` (160,) of the layer normalisation (``epsilon``); ``conv1_kernel`` (k, 1, 1, 32),
    ``conv1_bias`` (32,); ``conv2_kernel`` (k, 1, 32, 64), ``conv2_bias`` (64,); ``dense_kernel``
    (n_pool * 64, 2), ``dense_bias`` (2,). ``dropout`` is the training-time rate (no effect on predictions).
    """

    kernel: int
    epsilon: float
    gamma: np.ndarray
    beta: np.ndarray
    conv1_kernel: np.ndarray
    conv1_bias: np.ndarray
    conv2_kernel: np.ndarray
    conv2_bias: np.ndarray
    dense_kernel: np.ndarray
    dense_bias: np.ndarray
    dropout: float = 0.5
    name: str = field(default="")

    def __post_init__(self):
        k = int(self.kernel)
        n_pool = n_pooled(k)
        shapes = {
            "gamma": (SNIPPET_LENGTH,),
            "beta": (SNIPPET_LENGTH,),
            "conv1_kernel": (k, 1, 1, 32),
            "conv1_bias": (32,),
            "conv2_kernel": (k, 1, 32, 64),
            "conv2_bias": (64,),
            "dense_kernel": (n_pool * 64, 2),
            "dense_bias": (2,),
        }
        for name, shape in shapes.items():
            a = np.ascontiguousarray(np.asarray(getattr(self, name), dtype=np.float32))
            if a.shape != shape:
                raise ModelError(f"member {self.name or k}: {name} has shape {a.shape}, expected {shape}")
            setattr(self, name, a)
        if not (self.epsilon > 0 and np.isfinite(self.epsilon)):
            raise ModelError(f"member {self.name or k}: LayerNormalization epsilon {self.epsilon!r} must be > 0")
        self.kernel = k
        self.epsilon = float(self.epsilon)

    def keras_weights(self) -> list[np.ndarray]:
        """The arrays in the order of ``build_member(k).get_weights()``."""
        return [
            self.gamma,
            self.beta,
            self.conv1_kernel,
            self.conv1_bias,
            self.conv2_kernel,
            self.conv2_bias,
            self.dense_kernel,
            self.dense_bias,
        ]


def n_pooled(k: int) -> int:
    """Time steps after the second pooling for kernel ``k`` (25 for k = 20)."""
    return ((SNIPPET_LENGTH - k + 1) // 2 - k + 1) // 2


# --------------------------------------------------------------------------------------------------------
# The configuration (JSON data)
# --------------------------------------------------------------------------------------------------------
def _to_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how the weights file names a layer of a given class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def _pair(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        return tuple(v)
    return None


def _is_float32(dtype) -> bool:
    if dtype is None:
        return True
    if isinstance(dtype, str):
        return dtype == "float32"
    if isinstance(dtype, Mapping):
        cfg = dtype.get("config")
        return (
            dtype.get("class_name") in ("DTypePolicy", "Policy")
            and isinstance(cfg, Mapping)
            and (cfg.get("name") == "float32")
        )
    return False


def _input_shape_of(config: Mapping, layers: list) -> tuple | None:
    for layer in layers:
        cfg = layer.get("config") if isinstance(layer, Mapping) else None
        if not isinstance(cfg, Mapping):
            continue
        for key in ("batch_shape", "batch_input_shape"):
            if isinstance(cfg.get(key), list):
                return tuple(cfg[key])
    for build in (config.get("build_config"), (config.get("config") or {}).get("build_input_shape")):
        if isinstance(build, Mapping) and isinstance(build.get("input_shape"), list):
            return tuple(build["input_shape"])
        if isinstance(build, list):
            return tuple(build)
    return None


@dataclass
class PublishedSpec:
    """What :func:`published_spec` found: the kernel, epsilon, dropout rate and, per layer, its class name,
    name and the name of its group in the weights file."""

    kernel: int
    epsilon: float
    dropout: float
    layer_names: list  # the layers' own names (legacy .h5 groups)
    group_names: list  # snake_case class names with counters (.keras weights groups)
    name: str = ""


def published_spec(config) -> PublishedSpec | None:
    """The published member described by a Keras model configuration (parsed JSON), or ``None`` when the
    configuration is anything else (another architecture, activation, dtype, a custom class ...)."""
    if not isinstance(config, Mapping) or config.get("class_name") != "Sequential":
        return None
    if config.get("module") not in (None, "keras", "keras.models", "keras.src.models.sequential"):
        return None
    inner = config.get("config")
    if not isinstance(inner, Mapping) or not isinstance(inner.get("layers"), list):
        return None
    if not _is_float32(inner.get("dtype")):
        return None
    all_layers = inner["layers"]
    if not all(isinstance(layer, Mapping) and isinstance(layer.get("config"), Mapping) for layer in all_layers):
        return None
    for layer in all_layers:
        module = layer.get("module")
        if module is not None and (not isinstance(module, str) or module.split(".")[0] != "keras"):
            return None
        reg = layer.get("registered_name")
        if reg is not None and reg != layer.get("class_name"):
            return None
    shape = _input_shape_of(config, all_layers)
    if shape is None or tuple(shape[1:]) != MEMBER_INPUT_SHAPE:
        return None
    layers = [layer for layer in all_layers if layer.get("class_name") != "InputLayer"]
    if tuple(layer.get("class_name") for layer in layers) != _LAYERS:
        return None
    cfgs = [layer["config"] for layer in layers]
    if not all(_is_float32(c.get("dtype")) for c in cfgs):
        return None
    ln, c1, p1, c2, p2, fl, dr, de = cfgs
    axis = ln.get("axis")
    axis = [axis] if isinstance(axis, int) else axis
    if not isinstance(axis, list) or [a % 4 if isinstance(a, int) and a < 0 else a for a in axis] != [1]:
        return None
    eps = ln.get("epsilon", 1e-3)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        return None
    if ln.get("center", True) is not True or ln.get("scale", True) is not True or ln.get("rms_scaling", False):
        return None
    k1 = _pair(c1.get("kernel_size"))
    if k1 is None or k1[1] != 1 or not MIN_KERNEL <= k1[0] <= MAX_KERNEL:
        return None
    for conv, filters in ((c1, 32), (c2, 64)):
        if conv.get("filters") != filters or _pair(conv.get("kernel_size")) != k1:
            return None
        if _pair(conv.get("strides", 1)) != (1, 1) or _pair(conv.get("dilation_rate", 1)) != (1, 1):
            return None
        if conv.get("padding", "valid") != "valid" or conv.get("groups", 1) != 1:
            return None
        if conv.get("data_format") not in (None, "channels_last") or conv.get("use_bias", True) is not True:
            return None
        if conv.get("activation") != "relu" or conv.get("lora_rank") or conv.get("quantization_config"):
            return None
    for pool, size in ((p1, (2, 1)), (p2, (2, 2))):
        strides = pool.get("strides")
        if _pair(pool.get("pool_size")) != size or (strides is not None and _pair(strides) != size):
            return None
        if pool.get("padding", "valid") != "valid" or pool.get("data_format") not in (None, "channels_last"):
            return None
    if fl.get("data_format") not in (None, "channels_last"):
        return None
    if de.get("units") != 2 or de.get("activation") != "sigmoid" or de.get("use_bias", True) is not True:
        return None
    if de.get("lora_rank") or de.get("quantization_config"):
        return None
    rate = dr.get("rate", 0.5)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        return None
    if dr.get("noise_shape") is not None:
        return None
    names = [c.get("name") for c in cfgs]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    used: dict[str, int] = {}
    groups = []
    for layer in layers:
        base = _to_snake_case(layer["class_name"])
        if base in used:
            used[base] += 1
            groups.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            groups.append(base)
    return PublishedSpec(
        kernel=int(k1[0]),
        epsilon=float(eps),
        dropout=float(rate),
        layer_names=names,
        group_names=groups,
        name=str(inner.get("name") or ""),
    )


# --------------------------------------------------------------------------------------------------------
# The arrays
# --------------------------------------------------------------------------------------------------------
_WEIGHTED = {0: ("gamma", "beta"), 1: ("kernel", "bias"), 3: ("kernel", "bias"), 7: ("kernel", "bias")}


def _read_dataset(ds, expected_shape: tuple, f):
    """The array of ``ds`` when it is a float dataset of ``expected_shape`` stored in ``f`` itself (not
    through an external link, external raw storage or a virtual dataset pointing at other files)."""
    import h5py

    if not isinstance(ds, h5py.Dataset) or tuple(ds.shape) != expected_shape or ds.dtype.kind != "f":
        return None
    if ds.file.filename != f.filename or ds.external or ds.is_virtual:
        return None
    return np.asarray(ds[()], dtype=np.float32)


def _expected_shapes(k: int) -> dict[int, tuple[tuple, tuple]]:
    return {
        0: ((SNIPPET_LENGTH,), (SNIPPET_LENGTH,)),
        1: ((k, 1, 1, 32), (32,)),
        3: ((k, 1, 32, 64), (64,)),
        7: ((n_pooled(k) * 64, 2), (2,)),
    }


def _keras3_arrays(f, spec: PublishedSpec) -> list | None:
    """``layers/<snake_case class name>/vars/<i>`` in a ``.keras`` archive's ``model.weights.h5``."""
    out = []
    for i, shapes in _expected_shapes(spec.kernel).items():
        group = f.get(f"layers/{spec.group_names[i]}/vars")
        if group is None or len(group) != 2:
            return None
        for j, shape in enumerate(shapes):
            a = _read_dataset(group.get(str(j)), shape, f)
            if a is None:
                return None
            out.append(a)
    return out


def _legacy_arrays(f, spec: PublishedSpec) -> list | None:
    """``model_weights/<layer name>/.../<weight>:0`` in a legacy HDF5 model file (Keras 2 or 3)."""
    root = f.get("model_weights", f)
    out = []
    for i, shapes in _expected_shapes(spec.kernel).items():
        name = spec.layer_names[i]
        group = root.get(name)
        if group is None:
            return None
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        if len(names) != 2:
            return None
        by_kind = {}
        for n in names:
            by_kind[n.split("/")[-1].split(":")[0]] = n
        for kind, shape in zip(_WEIGHTED[i], shapes):
            path = by_kind.get(kind)
            a = None if path is None else _read_dataset(group.get(path), shape, f)
            if a is None:
                return None
            out.append(a)
    return out


def _from_arrays(arrays: list, spec: PublishedSpec, name: str) -> MemberWeights:
    g, b, w1, b1, w2, b2, wd, bd = arrays
    return MemberWeights(
        kernel=spec.kernel,
        epsilon=spec.epsilon,
        gamma=g,
        beta=b,
        conv1_kernel=w1,
        conv1_bias=b1,
        conv2_kernel=w2,
        conv2_bias=b2,
        dense_kernel=wd,
        dense_bias=bd,
        dropout=spec.dropout,
        name=name,
    )


def read_member_weights(path, config) -> MemberWeights | None:
    """The weights of the published member stored in ``path`` (``.keras`` or legacy ``.h5``/``.hdf5``).

    Parameters
    ----------
    path : str or pathlib.Path
        The member file (its checksum and archive sizes already checked by the caller).
    config : dict
        Its model configuration, parsed from JSON (``config.json`` of the archive, ``model_config`` of an
        HDF5 file).

    Returns
    -------
    MemberWeights or None
        None when the configuration is not exactly the published member or the stored arrays are not laid
        out as Keras lays out that member's weights (load such a file with Keras).
    """
    import h5py

    path = Path(path)
    spec = published_spec(config)
    if spec is None:
        return None
    name = spec.name or path.stem
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            with h5py.File(path, "r") as f:
                arrays = _legacy_arrays(f, spec)
        else:
            with zipfile.ZipFile(path) as zf:
                try:
                    info = zf.getinfo("model.weights.h5")
                except KeyError:
                    return None
                if info.file_size > MAX_WEIGHTS_BYTES:
                    return None
                data = zf.read(info)
            with h5py.File(io.BytesIO(data), "r") as f:
                arrays = _keras3_arrays(f, spec)
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise ModelError(f"{path.name}: its weights cannot be read ({exc}); the file is damaged") from None
    if arrays is None:
        return None
    return _from_arrays(arrays, spec, name)


def member_weights_from_keras(model) -> MemberWeights:
    """The weights of a Keras member of the published architecture (already checked by the caller)."""
    from .architecture import _plain_layers

    ln, _c1, _p1, _c2, _p2, _fl, dr, _de = _plain_layers(model)
    arrays = [np.asarray(w, dtype=np.float32) for w in model.get_weights()]
    if len(arrays) != 8:
        raise ModelError(f"member {model.name!r} has {len(arrays)} weight arrays, the published member 8")
    k = int(arrays[2].shape[0])
    spec = PublishedSpec(
        kernel=k,
        epsilon=float(ln.epsilon),
        dropout=float(getattr(dr, "rate", 0.5)),
        layer_names=[],
        group_names=[],
    )
    return _from_arrays(arrays, spec, str(model.name))
