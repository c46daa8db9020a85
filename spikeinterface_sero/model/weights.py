"""The weights of a published member, read from a Keras file with h5py (the configuration as JSON data,
nothing executed), without TensorFlow or Keras (``docs/model-folder.md``, "Reading member files"). Every
stored array's declared size is checked against the member specification before anything is read.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import spec as S

__all__ = [
    "MemberWeights",
    "check_weights_storage",
    "member_weights_from_keras",
    "published_spec",
    "read_member_weights",
]

#: the largest weights file (``model.weights.h5`` of a ``.keras`` archive, or a legacy ``.h5`` file) and
#: the most bytes its arrays may declare: the specification's bound (the largest member's weights 4 times
#: over plus 1 MiB, :func:`~.spec.parameter_bytes_bound`); a genuine member file is under 0.9 MiB
MAX_WEIGHTS_FILE_BYTES = 2 * S.parameter_bytes_bound()
MAX_DECLARED_BYTES = S.parameter_bytes_bound()
MAX_HDF5_OBJECTS = 1000  # groups and datasets of a weights file (a member's: 25 to 60)
#: HDF5 filters a weights file may use: deflate, shuffle, fletcher32, lzf (Keras writes none)
_ALLOWED_FILTERS = {1, 2, 3, 32000}


@dataclass(eq=False)
class MemberWeights:
    """The parameters of one published member, float32, in Keras' shapes and order.

    The fields are the specification's weights (:func:`~.spec.member_layers`): ``gamma``, ``beta`` (160,)
    of the layer normalisation (``epsilon``); ``conv1_kernel`` (k, 1, 1, 32), ``conv1_bias`` (32,);
    ``conv2_kernel`` (k, 1, 32, 64), ``conv2_bias`` (64,); ``dense_kernel`` (n_pool * 64, 2), ``dense_bias``
    (2,). ``dropout`` is the training-time rate (no effect on predictions). Shapes, finiteness and the
    bound on magnitudes (:data:`~.spec.MAX_ABS_WEIGHT`) are checked when the object is made.
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
    dropout: float = S.DROPOUT
    name: str = field(default="")

    def __post_init__(self):
        k = S.check_kernel(self.kernel)
        who = self.name or f"with kernel {k}"
        labels = []
        for _, layer, w in S.weight_specs(k):
            a = np.asarray(getattr(self, w.field))
            label = f"{layer.name}/{w.variable}"
            if a.shape != w.shape(k):
                raise ModelError(f"member {who}: {label} has shape {a.shape}, expected {w.shape(k)}")
            if a.dtype.kind not in "fiu":
                raise ModelError(f"member {who}: {label} has dtype {a.dtype}, not a number")
            setattr(self, w.field, np.ascontiguousarray(a, dtype=S.DTYPE))
            labels.append(label)
        S.check_weight_values(who, self.keras_weights(), labels)
        eps, rate = self.epsilon, self.dropout
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating)) or not 0 < eps < 1:
            raise ModelError(f"member {who}: LayerNormalization epsilon {eps!r} must be above 0 and below 1")
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ModelError(f"member {who}: dropout rate {rate!r} must be at least 0 and below 1")
        self.kernel, self.epsilon, self.dropout = k, float(eps), float(rate)

    def keras_weights(self) -> list[np.ndarray]:
        """The arrays in the order of ``build_member(k).get_weights()``."""
        return [getattr(self, w.field) for _, _, w in S.weight_specs(self.kernel)]

    @classmethod
    def from_arrays(cls, kernel: int, arrays, *, epsilon: float = S.EPSILON, dropout: float = S.DROPOUT, name=""):
        """Member weights from ``arrays`` in the order of ``build_member(kernel).get_weights()``."""
        fields = [w.field for _, _, w in S.weight_specs(kernel)]
        arrays = list(arrays)
        if len(arrays) != len(fields):
            raise ModelError(
                f"member {name or kernel}: {len(arrays)} weight arrays, the published member has {len(fields)}"
            )
        return cls(kernel=kernel, epsilon=epsilon, dropout=dropout, name=name, **dict(zip(fields, arrays)))


# --------------------------------------------------------------------------------------------------------
# The configuration (JSON data)
# --------------------------------------------------------------------------------------------------------
def _to_snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: how the weights file names a layer of a given class."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


def _input_shape_of(config: Mapping, layers: list) -> tuple | None:
    for layer in layers:
        cfg = layer.get("config")
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
    """What :func:`published_spec` found in a file's configuration: the kernel, epsilon, dropout rate and,
    per layer, its name and the name of its group in the weights file."""

    kernel: int
    epsilon: float
    dropout: float
    layer_names: list  # the layers' own names (legacy .h5 groups)
    group_names: list  # snake_case class names with counters (.keras weights groups)
    name: str = ""


def _keras_sequential_layers(config) -> list | None:
    """The layer entries of a Keras ``Sequential`` configuration naming only Keras' own classes, or None."""
    if not isinstance(config, Mapping) or config.get("class_name") != "Sequential":
        return None
    if config.get("module") not in (None, "keras", "keras.models", "keras.src.models.sequential"):
        return None
    inner = config.get("config")
    if not isinstance(inner, Mapping) or not isinstance(inner.get("layers"), list):
        return None
    if not S.is_float32(inner.get("dtype")):
        return None
    layers = inner["layers"]
    for layer in layers:
        if not isinstance(layer, Mapping) or not isinstance(layer.get("config"), Mapping):
            return None
        module = layer.get("module")
        if module is not None and (not isinstance(module, str) or module.split(".")[0] != "keras"):
            return None
        registered = layer.get("registered_name")
        if registered is not None and registered != layer.get("class_name"):
            return None
    return layers


def published_spec(config) -> PublishedSpec | None:
    """The published member described by a Keras model configuration (parsed JSON), or ``None`` when the
    configuration is anything else (another architecture, activation, dtype, a custom class ...): the
    layers are compared with the specification by :func:`~.spec.config_problems`."""
    all_layers = _keras_sequential_layers(config)
    if all_layers is None:
        return None
    shape = _input_shape_of(config, all_layers)
    if shape is None or tuple(shape[1:]) != S.MEMBER_INPUT_SHAPE:
        return None
    layers = [layer for layer in all_layers if layer.get("class_name") != "InputLayer"]
    if S.config_problems([(layer.get("class_name"), layer["config"]) for layer in layers]):
        return None
    cfgs = [layer["config"] for layer in layers]
    names = [c.get("name") for c in cfgs]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    used: dict[str, int] = {}
    groups = []
    for layer in layers:
        base = _to_snake_case(layer["class_name"])
        used[base] = used.get(base, -1) + 1
        groups.append(f"{base}_{used[base]}" if used[base] else base)
    kernel = S.first_kernel([(layer["class_name"], c) for layer, c in zip(layers, cfgs)])
    by_class = {layer.class_name: c for layer, c in zip(S.member_layers(kernel), cfgs)}
    return PublishedSpec(
        kernel=kernel,
        epsilon=float(by_class["LayerNormalization"].get("epsilon", S.EPSILON)),
        dropout=float(by_class["Dropout"].get("rate", S.DROPOUT)),
        layer_names=names,
        group_names=groups,
        name=str(config["config"].get("name") or ""),
    )


# --------------------------------------------------------------------------------------------------------
# The stored arrays: their declared sizes checked before anything is read
# --------------------------------------------------------------------------------------------------------
def _dataset_problem(name: str, ds) -> tuple[str | None, int]:
    """What is wrong with how dataset ``ds`` is stored (None when nothing) and the bytes it declares."""
    if ds.is_virtual or ds.external:
        return f"{name} keeps its data outside the file", 0
    itemsize = ds.dtype.itemsize
    declared = math.prod(ds.shape or ()) * itemsize
    if declared > MAX_DECLARED_BYTES:
        return f"{name} declares {declared / 2**20:.1f} MiB", declared
    if ds.chunks is not None and math.prod(ds.chunks) * itemsize > MAX_DECLARED_BYTES:
        return f"{name} is stored in chunks of {math.prod(ds.chunks) * itemsize / 2**20:.1f} MiB", declared
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in _ALLOWED_FILTERS:
            return f"{name} is stored through HDF5 filter {code} (a member file uses none)", declared
    return None, declared


def _check_hdf5(f, what: str) -> None:
    """Refuse a weights file whose objects or declared array sizes exceed what a member needs, before any
    array is read (a small file can declare gigabytes of compressed or never-written data)."""
    import h5py

    state = {"objects": 0, "bytes": 0, "problem": None}

    def visit(name, obj):
        state["objects"] += 1
        if state["objects"] > MAX_HDF5_OBJECTS:
            state["problem"] = f"it holds over {MAX_HDF5_OBJECTS} groups and arrays"
            return True
        if isinstance(obj, h5py.Dataset):
            problem, declared = _dataset_problem(name, obj)
            state["bytes"] += declared
            if problem is None and state["bytes"] > MAX_DECLARED_BYTES:
                problem = f"its arrays declare {state['bytes'] / 2**20:.1f} MiB in all"
            if problem is not None:
                state["problem"] = problem
                return True
        return None

    f.visititems(visit)
    if state["problem"]:
        raise ModelError(
            f"{what}: {state['problem']}, more than a member's weights need (at most "
            f"{MAX_DECLARED_BYTES / 2**20:.1f} MiB of arrays, docs/model-folder.md); refused before reading: "
            "the file is not a member"
        )


def _weights_bytes(path: Path) -> bytes | None:
    """The ``model.weights.h5`` entry of a ``.keras`` archive (None when it has none), size-checked first."""
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo("model.weights.h5")
        except KeyError:
            return None
        if info.file_size > MAX_WEIGHTS_FILE_BYTES:
            raise ModelError(
                f"{path.name}: model.weights.h5 unpacks to {info.file_size / 2**20:.1f} MiB, over the "
                f"{MAX_WEIGHTS_FILE_BYTES / 2**20:.1f} MiB a member's weights file needs; refused before loading"
            )
        return zf.read(info)


def _open_weights(path: Path):
    """The member file's weights as an open, checked ``h5py.File`` (None for an archive without weights)."""
    import h5py

    if path.suffix.lower() in (".h5", ".hdf5"):
        size = path.stat().st_size
        if size > MAX_WEIGHTS_FILE_BYTES:
            raise ModelError(
                f"{path.name} is {size / 2**20:.1f} MiB, over the {MAX_WEIGHTS_FILE_BYTES / 2**20:.1f} MiB a "
                "member file needs; refused before loading"
            )
        f = h5py.File(path, "r")
    else:
        data = _weights_bytes(path)
        if data is None:
            return None
        f = h5py.File(io.BytesIO(data), "r")
    try:
        _check_hdf5(f, path.name)
    except BaseException:
        f.close()
        raise
    return f


def check_weights_storage(path) -> None:
    """Refuse a member file (``.keras`` or legacy ``.h5``) whose weights file, or the arrays it declares,
    exceed what a member needs (:data:`MAX_WEIGHTS_FILE_BYTES`, :data:`MAX_DECLARED_BYTES`), before
    anything reads its arrays (Keras included).

    Parameters
    ----------
    path : str or pathlib.Path
        The member file.
    """
    path = Path(path)
    try:
        f = _open_weights(path)
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path.name}: its weights cannot be read ({exc}); the file is damaged") from None
    if f is not None:
        f.close()


def _read_dataset(ds, expected_shape: tuple, f):
    """The array of ``ds`` when it is a float dataset of ``expected_shape`` stored in ``f`` itself (not
    through an external link, external raw storage or a virtual dataset pointing at other files)."""
    import h5py

    if not isinstance(ds, h5py.Dataset) or tuple(ds.shape) != expected_shape or ds.dtype.kind != "f":
        return None
    if ds.file.filename != f.filename or ds.external or ds.is_virtual or ds.dtype.itemsize > 8:
        return None
    return np.asarray(ds[()], dtype=S.DTYPE)


def _weighted_layers(spec: PublishedSpec):
    """``(layer index, layer spec)`` of the layers that hold weights."""
    return [(i, layer) for i, layer in enumerate(S.member_layers(spec.kernel)) if layer.weights]


def _keras3_arrays(f, spec: PublishedSpec) -> list | None:
    """``layers/<snake_case class name>/vars/<i>`` in a ``.keras`` archive's ``model.weights.h5``."""
    out = []
    for i, layer in _weighted_layers(spec):
        group = f.get(f"layers/{spec.group_names[i]}/vars")
        if group is None or len(group) != len(layer.weights):
            return None
        for j, w in enumerate(layer.weights):
            a = _read_dataset(group.get(str(j)), w.shape(spec.kernel), f)
            if a is None:
                return None
            out.append(a)
    return out


def _legacy_arrays(f, spec: PublishedSpec) -> list | None:
    """``model_weights/<layer name>/.../<weight>:0`` in a legacy HDF5 model file (Keras 2 or 3)."""
    root = f.get("model_weights", f)
    out = []
    for i, layer in _weighted_layers(spec):
        group = root.get(spec.layer_names[i])
        if group is None:
            return None
        names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        if len(names) != len(layer.weights):
            return None
        by_variable = {n.split("/")[-1].split(":")[0]: n for n in names}
        for w in layer.weights:
            path = by_variable.get(w.variable)
            a = None if path is None else _read_dataset(group.get(path), w.shape(spec.kernel), f)
            if a is None:
                return None
            out.append(a)
    return out


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
        :class:`~spikeinterface_sero.errors.ModelError` when the file declares more than a member needs,
        cannot be read, or holds weights that are not finite or out of bounds (naming the layer).
    """
    path = Path(path)
    spec = published_spec(config)
    if spec is None:
        return None
    try:
        f = _open_weights(path)
        if f is None:
            return None
        with f:
            is_h5 = path.suffix.lower() in (".h5", ".hdf5")
            arrays = _legacy_arrays(f, spec) if is_h5 else _keras3_arrays(f, spec)
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path.name}: its weights cannot be read ({exc}); the file is damaged") from None
    if arrays is None:
        return None
    return MemberWeights.from_arrays(
        spec.kernel, arrays, epsilon=spec.epsilon, dropout=spec.dropout, name=f"{path.name} ({spec.name or path.stem})"
    )


def member_weights_from_keras(model) -> MemberWeights:
    """The weights of a Keras member of the published architecture (already checked by the caller)."""
    from .architecture import _plain_layers

    layers = _plain_layers(model)
    arrays = [np.asarray(w) for w in model.get_weights()]
    epsilon = next((layer.epsilon for layer in layers if type(layer).__name__ == "LayerNormalization"), S.EPSILON)
    rate = next((layer.rate for layer in layers if type(layer).__name__ == "Dropout"), S.DROPOUT)
    kernel = S.first_kernel([(type(layer).__name__, layer.get_config()) for layer in layers])
    return MemberWeights.from_arrays(kernel, arrays, epsilon=float(epsilon), dropout=float(rate), name=str(model.name))
