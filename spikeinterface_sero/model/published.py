"""Import of the authors' published members (their ``ModelsDNN`` folder: ``.keras``, legacy ``.h5`` and
TensorFlow SavedModel members) into a model folder of clean :func:`build_member` copies. Nothing in a
source file is executed: Keras files load in safe mode, and a SavedModel is rebuilt from its variables
(its graph is run only with ``trust=True``).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._version import __version__
from ..arguments import check_flag
from ..constants import SNIPPET_LENGTH
from ..errors import ModelError
from . import spec as S
from ._backend import _keras, _tf
from .architecture import (
    _input_shape,
    build_member,
    check_member_architecture,
    member_kernel,
    to_member_input,
)
from .ensemble import Ensemble
from .folder import _load_keras_file, _prepare_target, _sha256_any, save_model
from .spec import MAX_KERNEL, MEMBER_INPUT_SHAPE, MIN_KERNEL, check_weight_values, weight_shapes, weight_specs

__all__ = ["import_models"]

_PUBLISHED_NAME = re.compile(r"^ModConvBinNormN(\d+)(?:-(v\d+))?$")
_SESSION = re.compile(r"-(v\d+)$")
_IMPORT_TOL = 1e-5  # max |rebuilt - source| on probe spikes for an import to be accepted
MAX_GRAPH_BYTES = 8 << 20  # saved_model.pb of a member is ~0.2 MB; parsing it takes a few times its size
#: ops of the published member's graph (a SavedModel without them is not a member)
_MEMBER_OPS = {"Conv2D", "MaxPool", "Relu", "Sigmoid", "MatMul"}
#: activations the published member does not have (a SavedModel using one is a different network)
_OTHER_ACTIVATIONS = {
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "LeakyRelu",
    "Relu6",
    "Softmax",
    "LogSoftmax",
    "Gelu",
    "Sin",
    "Cos",
    "Exp",
}
_SKIP_VARIABLES = ("optimizer/", "keras_api/", "save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH", "_all_variables/")
_KERAS2_VARIABLE = re.compile(r"^layer_with_weights-(\d+)/")
_KERAS3_VARIABLE = re.compile(r"^variables/(\d+)/")
_GAMMA, _BETA = {"gamma", "scale"}, {"beta", "offset", "center"}
_TRUST_HINT = (
    "pass trust=True only if you trust where it comes from: TensorFlow then runs the SavedModel's graph, "
    "which can execute any operation it holds (write files, read files)"
)


# --------------------------------------------------------------------------------------------------------
# Finding the source files
# --------------------------------------------------------------------------------------------------------
def _is_savedmodel(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _candidates(src: Path) -> list[Path]:
    if src.is_file() or _is_savedmodel(src):
        return [src]
    out = []
    for p in sorted(src.iterdir()):
        if p.is_file() and p.suffix.lower() in (".keras", ".h5", ".hdf5"):
            out.append(p)
        elif _is_savedmodel(p):
            out.append(p)
    return out


def _stem(p: Path) -> str:
    return p.name if p.is_dir() else p.stem


def _fmt(p: Path) -> str:
    if p.is_dir():
        return "savedmodel"
    return "hdf5" if p.suffix.lower() in (".h5", ".hdf5") else "keras"


def _probe_inputs(n: int = 32) -> np.ndarray:
    rng = np.random.default_rng(20240415)
    x = np.arange(SNIPPET_LENGTH)
    w = rng.uniform(4, 14, (n, 1))
    cur = -rng.uniform(60, 250, (n, 1)) * np.exp(-(((x - 44) / w) ** 2))
    cur += rng.uniform(10, 60, (n, 1)) * np.exp(-(((x - 44 - 2.5 * w) / (1.5 * w)) ** 2))
    cur += rng.normal(0, 5, (n, SNIPPET_LENGTH))
    return to_member_input(cur)


def _check_input_shape(path: Path, shape) -> None:
    if shape is None or tuple(shape[1:]) != MEMBER_INPUT_SHAPE:
        raise ModelError(
            f"{path.name}: input shape is {shape}; the published members take "
            "(None, 160, 2, 1) (160 samples x (time, current) x 1)"
        )


# --------------------------------------------------------------------------------------------------------
# Keras files (.keras, .h5)
# --------------------------------------------------------------------------------------------------------
class _KerasSource:
    """A source member in a Keras file, loaded in safe mode and checked to be the published architecture."""

    runs_model = True  # a safe-mode Keras model is only Keras' own layers: it may run on the probes

    def __init__(self, path: Path):
        self.path = path
        self.format = _fmt(path)
        self.model = _load_keras_file(path, trust=False)
        _check_input_shape(path, _input_shape(self.model))
        check_member_architecture(self.model)
        self.kernel = member_kernel(self.model)

    def weights(self) -> list[np.ndarray]:
        """The source weights in the order of ``build_member(k).get_weights()``, checked."""
        return _checked_weights(self.path, self.kernel, [np.asarray(w) for w in self.model.get_weights()])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x, training=False))


def _checked_weights(path: Path, kernel: int, ws: list[np.ndarray]) -> list[np.ndarray]:
    """``ws`` when their shapes are the member specification's for ``kernel`` and their values are finite
    and within bounds (:func:`~.spec.check_weight_values`); else one ModelError naming the file."""
    got = [tuple(w.shape) for w in ws]
    target = weight_shapes(kernel)
    if got != target:
        raise ModelError(
            f"{path.name}: weight shapes {got} do not match the published member with kernel {kernel} {target}"
        )
    labels = [f"{layer.name}/{w.variable}" for _, layer, w in weight_specs(kernel)]
    check_weight_values(path.name, ws, labels)
    return ws


@contextlib.contextmanager
def _tensorflow_errors(path: Path):
    """TensorFlow's own errors while reading or serving ``path`` (a damaged checkpoint: truncated, bits
    flipped) as one ModelError line."""
    tf = _tf()
    try:
        yield
    except tf.errors.OpError as exc:
        first = (exc.message or type(exc).__name__).splitlines()[0]
        raise ModelError(
            f"{path.name}: TensorFlow cannot read it ({type(exc).__name__}: {first}); the files are damaged: "
            "get a fresh copy"
        ) from None


# --------------------------------------------------------------------------------------------------------
# TensorFlow SavedModels: read, never run
# --------------------------------------------------------------------------------------------------------
def _savedmodel_graph(path: Path) -> tuple[tuple, set[str]]:
    """The serving input shape and the op types of a SavedModel, read from ``saved_model.pb`` (not run)."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    size = pb.stat().st_size
    if size > MAX_GRAPH_BYTES:
        raise ModelError(
            f"{path.name}: saved_model.pb is {size / 1e6:.0f} MB (a member's is under 1 MB, limit "
            f"{MAX_GRAPH_BYTES >> 20} MB); not a published member"
        )
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path.name}: saved_model.pb cannot be read ({exc}); the SavedModel is damaged") from None
    graphs = [mg for mg in sm.meta_graphs if "serving_default" in mg.signature_def]
    if not graphs:
        raise ModelError(
            f"{path.name}: the SavedModel has no serving_default signature; export the member with one "
            "(model.save(path) in TensorFlow 2.15, model.export(path) in Keras 3)"
        )
    mg = graphs[0]
    sig = mg.signature_def["serving_default"]
    if len(sig.inputs) != 1 or len(sig.outputs) != 1:
        raise ModelError(
            f"{path.name}: the SavedModel takes {len(sig.inputs)} inputs and returns {len(sig.outputs)} outputs; "
            "a member takes one and returns one"
        )
    spec = next(iter(sig.inputs.values())).tensor_shape
    shape = None if spec.unknown_rank else tuple(None if d.size < 0 else int(d.size) for d in spec.dim)
    _check_input_shape(path, shape)
    out = next(iter(sig.outputs.values())).tensor_shape
    if out.unknown_rank or [d.size for d in out.dim][1:] != [2]:
        raise ModelError(f"{path.name}: the SavedModel's output is not (None, 2); a member returns two units")
    ops = {n.op for n in mg.graph_def.node}
    for f in mg.graph_def.library.function:
        ops.update(n.op for n in f.node_def)
    return shape, ops


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _short_name(name: str) -> str:
    return name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE")


def _weight_variables(path: Path) -> tuple[object, list[tuple[str, tuple]]]:
    """The checkpoint reader of a SavedModel and its candidate weight variables (name, shape), in order
    (None and none when it has no checkpoint; a ModelError saying so when its checkpoint is damaged)."""
    tf = _tf()
    prefix = path / "variables" / "variables"
    if not prefix.with_suffix(".index").is_file():
        return None, []
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except (tf.errors.OpError, ValueError, RuntimeError, IndexError) as exc:
        raise ModelError(
            f"{path.name}: its checkpoint (variables/) cannot be read ({str(exc).splitlines()[0][:200]}); the files "
            "are damaged: get a fresh copy"
        ) from None
    names = [
        n
        for n in shapes
        if n.endswith("/.ATTRIBUTES/VARIABLE_VALUE")
        and not n.startswith(_SKIP_VARIABLES)
        and "/.OPTIMIZER_SLOT/" not in n
        and dtypes[n].is_floating
    ]
    # A Keras-2 model's layers, else a Keras-3 export's variable list, else whatever the module holds.
    for family in (_KERAS2_VARIABLE, _KERAS3_VARIABLE, None):
        chosen = [n for n in names if family is None or family.match(n)]
        if chosen:
            break
    chosen.sort(key=_natural_key)
    return reader, [(n, tuple(int(d) for d in shapes[n])) for n in chosen]


def _role(name: str) -> str | None:
    tokens = set(re.split(r"[^a-z0-9]+", _short_name(name).lower()))
    if tokens & _GAMMA:
        return "gamma"
    if tokens & _BETA:
        return "beta"
    return None


def _match_variables(variables: list[tuple[str, tuple]], target: list[tuple]) -> list[str]:
    """The variable for each of ``build_member(k).get_weights()``: by shape, in name order; LayerNorm's
    gamma and beta (the one pair of equal shapes) by name when the names say which is which."""
    listing = ", ".join(f"{_short_name(n)} {list(s)}" for n, s in variables) or "none"
    if len(variables) != len(target) or sorted(s for _, s in variables) != sorted(target):
        raise ModelError(
            f"its weight variables ({listing}) are not those of the published member "
            f"({', '.join(str(list(s)) for s in target)})"
        )
    free = list(variables)
    chosen = []
    for i, shape in enumerate(target):
        same = [v for v in free if v[1] == shape]
        pick = same[0]
        if len(same) > 1 and i < 2:  # LayerNormalization gamma (i = 0) and beta (i = 1)
            want = "gamma" if i == 0 else "beta"
            roles = [_role(n) for n, _ in same]
            named = [v for v, r in zip(same, roles) if r == want]
            if len(named) == 1:
                pick = named[0]
            elif any(roles) or not all(_KERAS3_VARIABLE.match(n) for n, _ in same):
                raise ModelError(
                    f"its variables {', '.join(_short_name(n) for n, _ in same)} do not say which is the "
                    "LayerNormalization gamma and which beta"
                )
        free.remove(pick)
        chosen.append(pick[0])
    return chosen


class _SavedModelSource:
    """A source member in a TensorFlow SavedModel.

    Its graph is read (serving signature, op types) but not run; the weights come from its checkpoint.
    With ``trust=True`` the graph is also served through ``keras.layers.TFSMLayer``: to check the rebuilt
    member against it, and to take the weights from it when the checkpoint alone cannot give them.
    """

    format = "savedmodel"

    def __init__(self, path: Path, *, trust: bool = False):
        self.path = path
        self.trust = trust is True
        self.runs_model = self.trust
        self._layer = None
        self._names: list[str] | None = None
        _shape, ops = _savedmodel_graph(path)
        other = sorted(ops & _OTHER_ACTIVATIONS)
        missing = sorted(_MEMBER_OPS - ops)
        if other or missing:
            what = f"uses {', '.join(other)}" if other else f"lacks {', '.join(missing)}"
            raise ModelError(
                f"{path.name}: the SavedModel's graph {what}; the published member is convolutions, max pooling, "
                "relu and a sigmoid dense layer: not the published architecture"
            )
        self._reader, variables = _weight_variables(path)
        try:
            if self._reader is None:
                raise ModelError("it has no variables/variables.index checkpoint")
            convs = [s for _, s in variables if len(s) == 4 and s[1:] == (1, 1, S.FILTERS[0])]
            if len(convs) != 1:
                raise ModelError(f"it has no first convolution kernel of shape (k, 1, 1, {S.FILTERS[0]})")
            self.kernel = int(convs[0][0])
            if not MIN_KERNEL <= self.kernel <= MAX_KERNEL:
                raise ModelError(f"its first convolution has kernel {self.kernel}, outside 1-31")
            target = weight_shapes(self.kernel)
            self._names = _match_variables(variables, target)
        except ModelError as exc:
            if not self.trust:
                raise ModelError(
                    f"{path.name}: this SavedModel cannot be rebuilt from its variables alone ({exc}); "
                    f"its graph is not run by default: {_TRUST_HINT}"
                ) from None
            self.kernel = self._kernel_from_layer()

    def _served(self):
        """The SavedModel served by TFSMLayer: runs its graph, so only with trust."""
        if not self.trust:  # never reached: the callers check runs_model first
            raise ModelError(f"{self.path.name}: refusing to run the SavedModel's graph without trust=True")
        if self._layer is None:
            keras = _keras()
            try:
                self._layer = keras.layers.TFSMLayer(str(self.path), call_endpoint="serving_default")
            except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types
                raise ModelError(
                    f"{self.path.name}: cannot be read as a TensorFlow SavedModel with a serving_default "
                    f"endpoint ({str(exc).splitlines()[0]})"
                ) from None
        return self._layer

    def _kernel_from_layer(self) -> int:
        convs = [v for v in self._served().weights if len(v.shape) == 4]
        if not convs:
            raise ModelError(f"{self.path.name}: the SavedModel has no convolution kernels; not a member")
        k = int(min(convs, key=lambda v: int(v.shape[2])).shape[0])  # conv1 has 1 input channel
        if not MIN_KERNEL <= k <= MAX_KERNEL:
            raise ModelError(f"{self.path.name}: first convolution has kernel {k}, outside 1-31")
        return k

    def weights(self) -> list[np.ndarray]:
        """The source weights in the order of ``build_member(k).get_weights()``, checked."""
        if self._names is not None:
            try:
                ws = [np.asarray(self._reader.get_tensor(n), dtype=np.float32) for n in self._names]
            except (IndexError, ValueError, RuntimeError) as exc:  # a truncated shard: "Read less bytes ..."
                raise ModelError(
                    f"{self.path.name}: its checkpoint (variables/) cannot be read ({str(exc).splitlines()[0][:200]}); "
                    "the files are damaged: get a fresh copy"
                ) from None
        else:  # trusted fallback: the variables the served graph tracks, in its order
            vs = list(self._served().weights)
            names = [v.name for v in vs]
            g = [i for i, nm in enumerate(names) if "gamma" in nm]
            b = [i for i, nm in enumerate(names) if "beta" in nm]
            if len(g) == 1 and len(b) == 1 and g[0] > b[0]:
                vs[g[0]], vs[b[0]] = vs[b[0]], vs[g[0]]
            ws = [np.asarray(v.numpy()) for v in vs]
        return _checked_weights(self.path, self.kernel, ws)

    def predict(self, x: np.ndarray) -> np.ndarray:
        y = self._served()(x)  # a single-input serving signature also binds the tensor positionally
        if isinstance(y, Mapping):
            if len(y) != 1:
                raise ModelError(f"{self.path.name}: the SavedModel returns {len(y)} outputs; a member returns one")
            y = next(iter(y.values()))
        return np.asarray(y)


def _source(path: Path, *, trust: bool):
    return _SavedModelSource(path, trust=trust) if _is_savedmodel(path) else _KerasSource(path)


# --------------------------------------------------------------------------------------------------------
# Choosing among several files for one kernel
# --------------------------------------------------------------------------------------------------------
def _normalise_session(s: str) -> str:
    s = str(s).strip().lstrip("-")
    return f"v{s}" if s.isdigit() else s


def _resolve_choice(kernel: int, cands: list[Path], choice) -> Path:
    names = ", ".join(p.name for p in cands)
    if choice is None:
        raise ModelError(
            f"several files for kernel {kernel}: {names}. Say which one with choose={{{kernel}: '<file name>'}} "
            "or a training session, e.g. choose='v199'"
        )
    want = str(choice)
    exact = [p for p in cands if want in (p.name, str(p))] or [p for p in cands if want == _stem(p)]
    if len(exact) == 1:
        return exact[0]
    session = _normalise_session(want)
    by_session = [p for p in cands if (m := _SESSION.search(_stem(p))) and m.group(1) == session]
    if len(by_session) == 1:
        return by_session[0]
    if len(by_session) > 1 or len(exact) > 1:
        found = by_session if len(by_session) > 1 else exact
        raise ModelError(
            f"kernel {kernel}: {choice!r} matches several files ({', '.join(p.name for p in found)}); "
            "give the full file name"
        )
    raise ModelError(f"kernel {kernel}: {choice!r} matches none of its files ({names})")


def _group_by_kernel(cands: list[Path], *, trust: bool) -> tuple[dict, dict]:
    """The sources already read and the files of each kernel: from the published name when a file has one,
    else by reading the file."""
    loaded: dict[Path, _KerasSource | _SavedModelSource] = {}
    groups: dict[int, list[Path]] = collections.defaultdict(list)
    for p in cands:
        m = _PUBLISHED_NAME.match(_stem(p))
        if m:
            k = int(m.group(1))
        else:
            with _tensorflow_errors(p):
                loaded[p] = _source(p, trust=trust)
            k = loaded[p].kernel
        groups[k].append(p)
    return loaded, groups


def _choose_files(groups: dict, choose, src: Path) -> dict[int, Path]:
    """The one file of each kernel, by ``choose`` where a kernel has several."""
    if isinstance(choose, Mapping):
        unknown = sorted(set(choose) - set(groups))
        if unknown:
            raise ModelError(
                f"choose names kernels {unknown} that have no file in {src} (kernels found: {sorted(groups)})"
            )
    chosen: dict[int, Path] = {}
    for k in sorted(groups):
        c = groups[k]
        choice = choose.get(k) if isinstance(choose, Mapping) else choose
        if len(c) == 1 and (choice is None or isinstance(choose, str) and not _SESSION.search(_stem(c[0]))):
            chosen[k] = c[0]
        else:
            chosen[k] = _resolve_choice(k, c, choice)
    return chosen


def _rebuilt_member(k: int, p: Path, source, probe: np.ndarray):
    """A clean :func:`build_member` holding the source's weights, and the words of the check it passed."""
    if source.kernel != k:
        raise ModelError(
            f"{p.name}: the name says kernel {k} but its first convolution has kernel "
            f"{source.kernel}; rename the file or check where it came from"
        )
    member = build_member(k)
    member.set_weights(source.weights())
    if not source.runs_model:
        return member, "weights read from the SavedModel's checkpoint; its graph was not run"
    diff = float(np.max(np.abs(np.asarray(member(probe, training=False)) - source.predict(probe))))
    if not diff <= _IMPORT_TOL:
        raise ModelError(
            f"{p.name}: the rebuilt member differs from the file by {diff:.2g} on probe spikes; "
            "the file is not the published architecture (activations or layer order differ)"
        )
    return member, f"reproduces the source's outputs on {len(probe)} probe spikes (max |diff| {diff:.1g})"


# --------------------------------------------------------------------------------------------------------
# The import
# --------------------------------------------------------------------------------------------------------
def import_models(
    src,
    out,
    *,
    choose=None,
    overwrite: bool = False,
    description: str | None = None,
    training: Mapping | None = None,
    metrics: Mapping | None = None,
    trust: bool = False,
) -> Path:
    """Import the authors' published members (their ``ModelsDNN`` folder) into a model folder.

    Parameters
    ----------
    src : str or pathlib.Path
        A folder of members (``ModConvBinNormN<k>.keras``, ``...-v<session>.keras``, ``.h5`` legacy HDF5 or
        TensorFlow SavedModel directories), or one such file / directory. Other files are ignored.
    out : str or pathlib.Path
        The model folder to write (plain Keras-3 ``member_k<k>.keras`` files + model_info.json + README.md).
    choose : str or dict or None, default: None
        When one kernel has several files (several training sessions, or one member in several formats):
        a session for all kernels (``"v199"``; a kernel whose only file carries no session tag keeps it), or
        ``{kernel: file name or session}``. Without it, two files for one kernel raise
        :class:`~spikeinterface_sero.errors.ModelError` listing them.
    overwrite : bool, default: False
        Replace an existing model folder at ``out``.
    description : str or None, default: None
        The model's description (default: says where it was imported from).
    training : dict or None, default: None
        What the members were trained on (default: the published method, marked "not verified here").
    metrics : dict or None, default: None
        Their measured accuracy, if known.
    trust : bool, default: False
        SavedModels only: let TensorFlow run the SavedModel's graph (to check the rebuilt member against it,
        and to read weights that the checkpoint alone cannot give). A graph can hold any operation (write
        or read files): only for SavedModels whose origin you trust. Only a real bool: anything else (the
        string ``"false"`` included) raises :class:`~spikeinterface_sero.errors.ParameterError` before any
        file is read.

    Returns
    -------
    pathlib.Path
        ``out``.

    Notes
    -----
    Each member's kernel size is read from its first convolution (and must agree with a
    ``ModConvBinNormN<k>`` name); its input must be (160, 2, 1) and its layers the published architecture.
    The weights are copied into a clean :func:`build_member` model, so compile state, metrics and Keras-2
    specifics are not carried over. Nothing in a source file is executed by default: ``.keras`` and ``.h5``
    files load in Keras safe mode, and the rebuilt member must reproduce the loaded file's outputs on probe
    spikes (to 1e-5); a SavedModel's graph is only read (its serving signature and op types), never run, and
    its weights come from its checkpoint (``variables/``), mapped to the member's weights by shape and name.
    """
    trust = check_flag(trust, "trust")
    overwrite = check_flag(overwrite, "overwrite")
    src = Path(src).expanduser().resolve()
    if not src.exists():
        raise ModelError(f"{src} does not exist; pass the folder holding the ModConvBinNormN<k> model files")
    cands = _candidates(src)
    if not cands:
        listing = ", ".join(sorted(p.name for p in src.iterdir())[:10]) if src.is_dir() else src.name
        raise ModelError(
            f"no model files in {src} (looked for .keras, .h5/.hdf5 files and SavedModel folders; "
            f"found: {listing or 'nothing'})"
        )
    out_path = Path(out).expanduser().resolve()
    _prepare_target(out_path, overwrite)
    if isinstance(choose, Mapping):
        choose = {int(k): v for k, v in choose.items()}
    elif choose is not None and not isinstance(choose, str):
        raise ModelError(f"choose must be a session string like 'v199' or a dict {{kernel: file}}, got {choose!r}")
    loaded, groups = _group_by_kernel(cands, trust=trust)
    chosen = _choose_files(groups, choose, src)

    keras = _keras()
    probe = _probe_inputs()
    members, files, formats, shas, checks = [], {}, {}, {}, {}
    for k, p in chosen.items():
        with _tensorflow_errors(p):
            source = loaded.get(p) or _source(p, trust=trust)
            member, checks[str(k)] = _rebuilt_member(k, p, source, probe)
        members.append(member)
        files[str(k)] = p.name
        formats[str(k)] = source.format
        shas[str(k)] = _sha256_any(p)
    tf = _tf()
    ens = Ensemble(members, info={"demo": False})
    src_info = {
        "imported_from": str(src),
        "files": files,
        "formats": formats,
        "sha256_of_source_files": shas,
        "checks": checks,
        "imported_with": f"spikeinterface-sero {__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "imported_on": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    desc = description or (
        f"Members imported from {src} ({len(members)} files: "
        + ", ".join(files[str(k)] for k in chosen)
        + "). Weights as published by Corradetti et al. (J Neurosci Methods 2024; github.com/neuraldl/"
        "DLAtypicalSerotoninergicCells, ModelsDNN), copied into clean members."
    )
    train = (
        dict(training)
        if training is not None
        else {
            "source": "as published by the authors of the files (see their model card); not verified here",
            "published_method": "Corradetti et al. 2024: mouse DRN slices, loose-seal cell-attached, 40 kHz, "
            "-50 pA trigger; biological models on 27,108 balanced spikes (70/15/15 split by spike); synthetic "
            "models in continual-learning sessions v<session> on 12.7 M synthetic spikes",
        }
    )
    return save_model(
        ens,
        out_path,
        description=desc,
        training=train,
        metrics=dict(metrics or {}),
        source=src_info,
        overwrite=overwrite,
    )
