"""The CNN ensemble of Corradetti et al. (J Neurosci Methods 2024): members, fast inference, cell decisions,
model folders, import of the published Keras-2 models, and Grad-CAM.

Member network (exactly as published, input ``(160, 2, 1)``)::

    LayerNormalization(axis=[1]) -> Conv2D(32, (k, 1), relu) -> MaxPooling2D((2, 1))
    -> Conv2D(64, (k, 1), relu) -> MaxPooling2D((2, 2)) -> Flatten -> Dropout(0.5) -> Dense(2, sigmoid)

Output unit 0 is *serotonergic*, unit 1 *non-serotonergic*.

The two input columns
---------------------
The authors fed each spike as a 160 x 2 CSV table whose header was discarded; the columns are not named
anywhere. We take them to be **(time, current)**, as a Clampfit/pCLAMP export gives them: column 0 the sample
time in **seconds** (``arange(160) / 40000``), column 1 the current in **pA** (see ``docs/model-folder.md``).

``LayerNormalization(axis=[1])`` z-scores each column of each spike over its 160 samples, so a time offset
does not matter, but the *scale* of the time column does: the layer adds ``epsilon = 1e-3`` to the
variance, and the variance of a ramp in seconds (1.3e-6 s^2) is far below it, so the normalised ramp spans
+-0.063 -- in milliseconds or sample numbers it would span +-1.72 and the network would see a different
input. Seconds is the unit of a Clampfit export and of the reference predictions made with TensorFlow 2.15
(``../shared/models/keras2-tf2.15``); use :func:`to_member_input` and never build the time column yourself.

Whatever its unit, the time column is the same for every spike, so after the layer normalisation its path
through conv1 -> pool1 -> conv2 -> relu is a constant per member. :class:`Ensemble` precomputes it once and
runs only the current column per spike (half the convolution work), all members in one compiled TensorFlow
call; ``MaxPooling2D((2, 2))`` then takes, at each pooled step, the max over the two time steps and the two
columns: ``max(pool(current features), pool(time features))``.
"""

from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import math
import platform
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ._version import __version__
from .constants import (
    DEFAULT_KERNELS,
    DEFAULT_THRESHOLD_PA,
    LABELS,
    NAFTER,
    NBEFORE,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
)
from .decision import DecisionParams, cell_decisions, spike_probability
from .errors import DataError, ModelError, SnippetError

__all__ = [
    "MODEL_FORMAT_VERSION",
    "MEMBER_INPUT_SHAPE",
    "TIME_COLUMN",
    "build_member",
    "member_kernel",
    "check_member_architecture",
    "to_member_input",
    "Ensemble",
    "random_ensemble",
    "predict_members_naive",
    "demo_model_folder",
    "save_model",
    "load_model",
    "clear_model_cache",
    "import_models",
    "gradcam",
    "plot_gradcam",
]

MODEL_FORMAT = "spikeinterface-sero-model"
MODEL_FORMAT_VERSION = 1
MEMBER_INPUT_SHAPE = (SNIPPET_LENGTH, 2, 1)
TIME_COLUMN = (np.arange(SNIPPET_LENGTH, dtype=np.float64) / SAMPLING_FREQUENCY).astype(np.float32)
"""Column 0 of every member input: the sample time in seconds from the window start."""
LABEL_CONVERSION = {"0": LABELS[0], "1": LABELS[1]}
MIN_KERNEL, MAX_KERNEL = 1, 31
INFO_FILE = "model_info.json"
CARD_FILE = "README.md"
_PUBLISHED_NAME = re.compile(r"^ModConvBinNormN(\d+)(?:-(v\d+))?$")
_SESSION = re.compile(r"-(v\d+)$")
_IMPORT_TOL = 1e-5  # max |rebuilt - source| on probe spikes for an import to be accepted

LIMITS = [
    "Validated by its authors only for mouse dorsal-raphe neurons in brain slices, recorded in loose-seal "
    "cell-attached mode at 40 kHz, negative-going action currents triggered at -50 pA. Other species, "
    "regions, recording modes, filters or rates are outside what it was shown to do.",
    "The per-sample LayerNormalization removes the amplitude: the model judges the shape of the 4 ms "
    "window only (1 ms before the trigger, 3 ms after).",
    "Spike-level accuracies from random spike-level splits (spikes of one cell in training and test) "
    "overstate what to expect on new cells; the cell-level result on held-out recording days is the "
    "relevant figure.",
    "A cell decision rests on the mean over its spikes: check n_spikes and the interval "
    "sero_probability_low..high before trusting a cell with few spikes or a probability near 0.5.",
]


# --------------------------------------------------------------------------------------------------------
# TensorFlow / Keras access (imported here, never by the package __init__)
# --------------------------------------------------------------------------------------------------------
def _tf():
    import tensorflow as tf

    return tf


def _keras():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ModelError(
            f"the serotonergic models need the TensorFlow Keras backend, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras"
        )
    return keras


# --------------------------------------------------------------------------------------------------------
# The member network
# --------------------------------------------------------------------------------------------------------
def _check_kernel(kernel_size) -> int:
    try:
        k = int(kernel_size)
    except (TypeError, ValueError):
        raise ModelError(f"kernel size must be an integer 1-31, got {kernel_size!r}") from None
    if k != kernel_size or not MIN_KERNEL <= k <= MAX_KERNEL:
        raise ModelError(f"kernel size must be an integer from {MIN_KERNEL} to {MAX_KERNEL}, got {kernel_size!r}")
    return k


def build_member(kernel_size: int):
    """One member of the ensemble, the authors' Keras ``Sequential`` for kernel size ``k`` (1-31).

    Input ``(160, 2, 1)``: column 0 the sample time in seconds, column 1 the current in pA (build it with
    :func:`to_member_input`). Output ``(2,)`` sigmoid: unit 0 serotonergic, unit 1 non-serotonergic.
    Layer names follow the authors' (``conv2d``, ``conv2d_1``, ...), as Grad-CAM in their notebook used.
    For k = 20 the model has 45,218 parameters. Weights are freshly initialised (untrained).
    """
    k = _check_kernel(kernel_size)
    keras = _keras()
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=MEMBER_INPUT_SHAPE, name="input_1"),
            layers.LayerNormalization(axis=[1], name="layer_normalization"),
            layers.Conv2D(32, kernel_size=(k, 1), activation="relu", name="conv2d"),
            layers.MaxPooling2D(pool_size=(2, 1), name="max_pooling2d"),
            layers.Conv2D(64, kernel_size=(k, 1), activation="relu", name="conv2d_1"),
            layers.MaxPooling2D(pool_size=(2, 2), name="max_pooling2d_1"),
            layers.Flatten(name="flatten"),
            layers.Dropout(0.5, name="dropout"),
            layers.Dense(2, activation="sigmoid", name="dense"),
        ],
        name=f"member_k{k}",
    )
    return model


def _plain_layers(model) -> list:
    keras = _keras()
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def member_kernel(model) -> int:
    """The kernel size of a member, read from its first convolution (not from its name)."""
    keras = _keras()
    for layer in _plain_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            return int(layer.kernel_size[0])
    raise ModelError(f"model {getattr(model, 'name', model)!r} has no Conv2D layer: not a serotonergic-CNN member")


def _input_shape(model) -> tuple | None:
    try:
        shape = model.inputs[0].shape
    except Exception:  # noqa: BLE001 - unbuilt or exotic models
        return None
    return tuple(None if d is None else int(d) for d in shape)


def _output_shape(model) -> tuple | None:
    try:
        shape = model.outputs[0].shape
    except Exception:  # noqa: BLE001
        return None
    return tuple(None if d is None else int(d) for d in shape)


def _architecture_problems(model) -> list[str]:
    """Every way ``model`` differs from the published member (empty when it is one)."""
    keras = _keras()
    L = keras.layers
    problems = []
    if len(getattr(model, "inputs", None) or []) != 1 or len(getattr(model, "outputs", None) or []) != 1:
        return ["the model must have exactly one input and one output"]
    shape = _input_shape(model)
    if shape is None or shape[1:] != MEMBER_INPUT_SHAPE:
        problems.append(f"input shape is {shape}, the published members take (None, 160, 2, 1)")
    got = _plain_layers(model)
    expected = [L.LayerNormalization, L.Conv2D, L.MaxPooling2D, L.Conv2D, L.MaxPooling2D, L.Flatten, L.Dropout, L.Dense]
    names = [type(layer).__name__ for layer in got]
    if len(got) != len(expected) or any(type(g) is not e for g, e in zip(got, expected)):
        problems.append(
            "layers are " + " -> ".join(names) + "; the published member is LayerNormalization -> Conv2D -> "
            "MaxPooling2D -> Conv2D -> MaxPooling2D -> Flatten -> Dropout -> Dense"
        )
        return problems
    ln, c1, p1, c2, p2, _fl, _dr, de = got
    axis = ln.axis if isinstance(ln.axis, (list, tuple)) else [ln.axis]
    if [a % 4 if a < 0 else a for a in axis] != [1]:
        problems.append(f"LayerNormalization axis is {ln.axis}, expected [1]")
    if not (ln.center and ln.scale) or getattr(ln, "rms_scaling", False):
        problems.append("LayerNormalization must have center=True, scale=True, rms_scaling=False")
    k = int(c1.kernel_size[0])
    for conv, filters in ((c1, 32), (c2, 64)):
        if conv.filters != filters:
            problems.append(f"{conv.name}: {conv.filters} filters, expected {filters}")
        if tuple(conv.kernel_size) != (k, 1):
            problems.append(f"{conv.name}: kernel {tuple(conv.kernel_size)}, expected ({k}, 1) in both convolutions")
        if tuple(conv.strides) != (1, 1) or conv.padding != "valid" or tuple(conv.dilation_rate) != (1, 1):
            problems.append(f"{conv.name}: strides/padding/dilation differ from (1, 1)/valid/(1, 1)")
        if getattr(conv, "groups", 1) != 1 or not conv.use_bias or conv.data_format != "channels_last":
            problems.append(f"{conv.name}: groups/use_bias/data_format differ from 1/True/channels_last")
        if getattr(conv.activation, "__name__", "") != "relu":
            problems.append(
                f"{conv.name}: activation {getattr(conv.activation, '__name__', conv.activation)}, expected relu"
            )
    if not MIN_KERNEL <= k <= MAX_KERNEL:
        problems.append(f"kernel size {k} is outside 1-31")
    for pool, size in ((p1, (2, 1)), (p2, (2, 2))):
        if tuple(pool.pool_size) != size or tuple(pool.strides) != size or pool.padding != "valid":
            problems.append(
                f"{pool.name}: pool {tuple(pool.pool_size)} strides {tuple(pool.strides)} "
                f"{pool.padding}, expected {size} {size} valid"
            )
    if de.units != 2 or getattr(de.activation, "__name__", "") != "sigmoid" or not de.use_bias:
        problems.append(f"{de.name}: expected Dense(2, sigmoid) with bias")
    return problems


def check_member_architecture(model) -> int:
    """Return the kernel size if ``model`` is exactly the published member, else raise :class:`ModelError`."""
    problems = _architecture_problems(model)
    if problems:
        raise ModelError(
            f"model {getattr(model, 'name', '?')!r} is not the published member architecture: " + "; ".join(problems)
        )
    return member_kernel(model)


def _is_published(model) -> bool:
    try:
        return not _architecture_problems(model) and all(
            str(getattr(layer, "compute_dtype", "float32")) == "float32" for layer in _plain_layers(model)
        )
    except Exception:  # noqa: BLE001 - an exotic model is simply not the published one
        return False


# --------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------
def _as_snippets(snippets) -> np.ndarray:
    """Validate snippets and return them as a C-contiguous float32 (n, 160) array."""
    if hasattr(snippets, "waveforms") and not isinstance(snippets, np.ndarray):  # a Snippets object
        snippets = snippets.waveforms
    try:
        x = np.asarray(snippets)
    except Exception as exc:  # noqa: BLE001
        raise SnippetError(f"snippets could not be read as an array ({exc}); pass an (n, 160) array in pA") from None
    need = "an (n, 160) float array (n spikes x 160 samples at 40 kHz, trigger at index 40, in pA)"
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise SnippetError(f"snippets have dtype {x.dtype}; the model needs {need}")
    if x.ndim == 3 and x.shape[1:] == (SNIPPET_LENGTH, 1):
        x = x[:, :, 0]
    if x.ndim != 2 or x.shape[1] != SNIPPET_LENGTH:
        hint = ""
        if x.ndim == 1 and x.shape[0] == SNIPPET_LENGTH:
            hint = " (one spike: use snippet[None, :])"
        elif x.ndim == 4 and x.shape[1:] == MEMBER_INPUT_SHAPE:
            hint = " (this looks like member input (n, 160, 2, 1): pass its current column X[..., 1, 0])"
        elif x.ndim == 2 and x.shape[0] == SNIPPET_LENGTH:
            hint = " (transposed? use snippets.T)"
        elif x.ndim >= 2 and x.shape[-1] != SNIPPET_LENGTH:
            hint = " (the model needs exactly 160 samples = 1 ms before + 3 ms after the trigger at 40 kHz)"
        raise SnippetError(f"snippets have shape {x.shape}; the model needs {need} or (n, 160, 1){hint}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size and not np.isfinite(x).all():
        bad = int((~np.isfinite(x).all(axis=1)).sum())
        raise DataError(f"{bad} of {len(x)} snippets contain NaN or inf values; drop or repair them first")
    return x


def to_member_input(snippets) -> np.ndarray:
    """(n, 160) snippets in pA -> (n, 160, 2, 1) float32 member input.

    Column 0 is the sample time in seconds from the window start (``arange(160) / 40000``), column 1 the
    current in pA. The unit of the time column matters (see the module docstring).
    """
    x = _as_snippets(snippets)
    out = np.empty((x.shape[0], SNIPPET_LENGTH, 2, 1), dtype=np.float32)
    out[:, :, 0, 0] = TIME_COLUMN
    out[:, :, 1, 0] = x
    return out


# --------------------------------------------------------------------------------------------------------
# The ensemble
# --------------------------------------------------------------------------------------------------------
def _fused_predictor(members):
    """One ``tf.function`` computing every member's output from the current column only.

    Per member: LayerNorm of the current column with the member's gamma/beta/epsilon, conv1 + relu,
    pool (2, 1), conv2 + relu, pool over 2 time steps, max with the precomputed (time-column) pooled
    features, flatten, dense, sigmoid. Weights are snapshotted now (members are treated as frozen).
    """
    tf = _tf()
    params = []
    probe = np.zeros((1,) + MEMBER_INPUT_SHAPE, dtype=np.float32)
    probe[0, :, 0, 0] = TIME_COLUMN
    for member in members:
        ln, c1, p1, c2, _p2, _fl, _dr, de = _plain_layers(member)
        gamma, beta = (np.asarray(w, dtype=np.float32) for w in ln.get_weights())
        w1, b1 = (np.asarray(w, dtype=np.float32) for w in c1.get_weights())
        w2, b2 = (np.asarray(w, dtype=np.float32) for w in c2.get_weights())
        wd, bd = (np.asarray(w, dtype=np.float32) for w in de.get_weights())
        h = probe
        for layer in (ln, c1, p1, c2):  # the member's own layers: exactly its numerics
            h = layer(h)
        tfeat = np.asarray(h)[0, :, 0, :]  # (L2, 64), after relu
        n_pool = tfeat.shape[0] // 2
        tmax = np.maximum(tfeat[0 : 2 * n_pool : 2], tfeat[1 : 2 * n_pool : 2])
        if wd.shape[0] != n_pool * 64:
            raise ModelError(f"member {member.name}: dense input {wd.shape[0]} != {n_pool} x 64")
        params.append(
            dict(
                eps=float(ln.epsilon),
                gamma=tf.constant(gamma.reshape(1, SNIPPET_LENGTH, 1, 1)),
                beta=tf.constant(beta.reshape(1, SNIPPET_LENGTH, 1, 1)),
                w1=tf.constant(w1),
                b1=tf.constant(b1),
                w2=tf.constant(w2),
                b2=tf.constant(b2),
                tmax=tf.constant(tmax[None]),
                n_pool=n_pool,
                wd=tf.constant(wd),
                bd=tf.constant(bd),
            )
        )

    @tf.function(input_signature=[tf.TensorSpec([None, SNIPPET_LENGTH], tf.float32)], autograph=False)
    def fused(x):
        x4 = tf.reshape(x, (-1, SNIPPET_LENGTH, 1, 1))
        mean, var = tf.nn.moments(x4, axes=[1], keepdims=True)
        outs = []
        for p in params:
            inv = tf.math.rsqrt(var + p["eps"]) * p["gamma"]
            xn = x4 * inv + (p["beta"] - mean * inv)
            h = tf.nn.relu(tf.nn.conv2d(xn, p["w1"], 1, "VALID") + p["b1"])
            h = tf.nn.max_pool2d(h, (2, 1), (2, 1), "VALID")
            h = tf.nn.relu(tf.nn.conv2d(h, p["w2"], 1, "VALID") + p["b2"])
            h = tf.nn.max_pool2d(h, (2, 1), (2, 1), "VALID")[:, : p["n_pool"], 0, :]
            h = tf.maximum(h, p["tmax"])
            h = tf.reshape(h, (-1, p["n_pool"] * 64))
            outs.append(tf.sigmoid(tf.matmul(h, p["wd"]) + p["bd"]))
        return tf.stack(outs, axis=1)

    return fused


def _generic_predictor(members):
    """One ``tf.function`` calling every member (any architecture) on the full (n, 160, 2, 1) input."""
    tf = _tf()
    time_col = tf.constant(TIME_COLUMN.reshape(1, SNIPPET_LENGTH))

    @tf.function(input_signature=[tf.TensorSpec([None, SNIPPET_LENGTH], tf.float32)])
    def generic(x):
        t = tf.broadcast_to(time_col, tf.shape(x))
        x4 = tf.stack([t, x], axis=-1)[..., None]
        outs = []
        for member in members:
            y = member(x4, training=False)
            if isinstance(y, Mapping):
                y = next(iter(y.values()))
            outs.append(tf.reshape(tf.cast(y, tf.float32), (-1, 2)))
        return tf.stack(outs, axis=1)

    return generic


class Ensemble:
    """The members of a serotonergic-CNN ensemble and their consensus.

    members : list of Keras models taking (n, 160, 2, 1) and returning (n, 2) (unit 0 serotonergic).
    info : the ``model_info.json`` content of the model folder (``{}`` for an ensemble built in memory).

    When every member is the published architecture, predictions run the fused path (one compiled call
    for all members, the constant time column precomputed); otherwise one compiled call of all members on
    the full input. The weights are read when the first prediction is made: if you change a member's
    weights afterwards, make a new ``Ensemble``.
    """

    def __init__(self, members: Sequence, info: Mapping | None = None):
        members = list(members)
        if not members:
            raise ModelError("an ensemble needs at least one member")
        for m in members:
            shape = _input_shape(m)
            if shape is None or shape[1:] != MEMBER_INPUT_SHAPE:
                raise ModelError(
                    f"member {getattr(m, 'name', m)!r} takes input {shape}; members must take (None, 160, 2, 1)"
                )
            out = _output_shape(m)
            if out is not None and out[1:] != (2,):
                raise ModelError(f"member {m.name!r} returns {out}; members must return (None, 2)")
        self.members = members
        self.kernels = tuple(member_kernel(m) for m in members)
        self.info = dict(info or {})
        self.fused = all(_is_published(m) for m in members)
        self._predictor = None
        self._lock = threading.Lock()

    # -- properties -----------------------------------------------------------------------------------
    @property
    def is_demo(self) -> bool:
        """True for the bundled demonstration model (not for real classification)."""
        return bool(self.info.get("demo", False))

    @property
    def labels(self) -> tuple[str, str]:
        return LABELS

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        kind = "demo " if self.is_demo else ""
        src = self.info.get("folder") or "in memory"
        return f"<{kind}Ensemble of {len(self)} members, kernels {list(self.kernels)}, {src}>"

    # -- prediction -----------------------------------------------------------------------------------
    def _get_predictor(self):
        with self._lock:
            if self._predictor is None:
                self._predictor = _fused_predictor(self.members) if self.fused else _generic_predictor(self.members)
            return self._predictor

    def predict_members(self, snippets, batch_size: int = 512) -> np.ndarray:
        """Every member's output for every snippet: (n, n_members, 2) float32.

        snippets : (n, 160) or (n, 160, 1) float, pA (or a ``Snippets`` object).
        batch_size : spikes per compiled call (12 members: ~90 kB of working memory per spike, ~45 MB at the
            default 512, which is also the fastest batch on a 2-core CPU; 4096 takes ~360 MB for no gain).
        """
        x = _as_snippets(snippets)
        m = len(self.members)
        if x.shape[0] == 0:
            return np.zeros((0, m, 2), dtype=np.float32)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        predictor = self._get_predictor()
        out = np.empty((x.shape[0], m, 2), dtype=np.float32)
        for start in range(0, x.shape[0], batch_size):
            out[start : start + batch_size] = predictor(x[start : start + batch_size]).numpy()
        return out

    def predict(self, snippets, batch_size: int = 512) -> np.ndarray:
        """Spike consensus: the mean of the members' 2-unit outputs, (n, 2)."""
        return self.predict_members(snippets, batch_size=batch_size).mean(axis=1)

    def p_ser(self, snippets, batch_size: int = 512) -> np.ndarray:
        """P(serotonergic) per spike: consensus[0] / (consensus[0] + consensus[1]), (n,)."""
        return spike_probability(self.predict(snippets, batch_size=batch_size))

    def classify_cells(self, snippets, cell_ids=None, params: DecisionParams | None = None):
        """:func:`~spikeinterface_sero.decision.cell_decisions` of this ensemble's consensus (cell ids from a
        ``Snippets`` object if not given)."""
        if cell_ids is None:
            cell_ids = getattr(snippets, "cell_ids", None)
            if cell_ids is None:
                raise DataError("pass cell_ids (one per snippet) or a Snippets object")
        return cell_decisions(self.predict(snippets), cell_ids, params)


def random_ensemble(kernels: Iterable[int] = DEFAULT_KERNELS, seed: int = 0) -> Ensemble:
    """An ensemble of untrained members with seeded random weights (for tests and benchmarks).

    Besides Glorot-uniform kernels, the LayerNormalization gamma/beta and all biases are randomised, so
    every parameter influences the output. Uses a local numpy generator: no global seed is set.
    """
    rng = np.random.default_rng(seed)
    members = []
    for k in kernels:
        m = build_member(k)
        weights = []
        for w in m.get_weights():
            if w.ndim == 1 and w.shape[0] == SNIPPET_LENGTH:  # gamma, beta
                weights.append(rng.normal(1.0 if not weights else 0.0, 0.3, w.shape))
            elif w.ndim == 1:
                weights.append(rng.normal(0.0, 0.05, w.shape))
            else:
                fan_in = int(np.prod(w.shape[:-1]))
                fan_out = int(w.shape[-1]) * (int(np.prod(w.shape[:-2])) if w.ndim > 2 else 1)
                lim = math.sqrt(6.0 / (fan_in + fan_out))
                weights.append(rng.uniform(-lim, lim, w.shape))
        m.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        members.append(m)
    return Ensemble(members, info={"demo": False, "description": f"untrained random members (seed {seed})"})


def predict_members_naive(ensemble_or_members, snippets, batch_size: int = 32) -> np.ndarray:
    """The reference path: ``member.predict`` on the full (n, 160, 2, 1) input, one member after the other.

    Slow; kept for tests and benchmarks of the fused path. Returns (n, n_members, 2).
    """
    members = ensemble_or_members.members if isinstance(ensemble_or_members, Ensemble) else list(ensemble_or_members)
    x = to_member_input(snippets)
    return np.stack([np.asarray(m.predict(x, batch_size=batch_size, verbose=0)) for m in members], axis=1)


# --------------------------------------------------------------------------------------------------------
# Model folders
# --------------------------------------------------------------------------------------------------------
def demo_model_folder() -> Path:
    """Where the bundled demonstration model lives (``spikeinterface_sero/models/demo/``)."""
    return Path(__file__).resolve().parent / "models" / "demo"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_any(path: Path) -> str:
    """sha256 of a file, or of a directory tree (relative paths and contents, in sorted order)."""
    if path.is_file():
        return _sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
        h.update(_sha256(f).encode("ascii"))
    return h.hexdigest()


def _versions() -> dict:
    tf = _tf()
    keras = _keras()
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "spikeinterface_sero": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def _default_input_spec() -> dict:
    return {
        "sampling_frequency_hz": SAMPLING_FREQUENCY,
        "n_samples": SNIPPET_LENGTH,
        "samples_before": NBEFORE,
        "samples_after": NAFTER,
        "alignment": "threshold crossing (trigger) at index 40",
        "threshold_pa": DEFAULT_THRESHOLD_PA,
        "polarity": "negative",
        "unit": "pA",
        "shape": list(MEMBER_INPUT_SHAPE),
        "columns": ["time_s", "current_pA"],
        "time_column": "arange(160) / 40000: sample time in seconds from the window start",
    }


_AGGREGATION = {
    "spike_consensus": "mean over members of the 2-unit sigmoid outputs",
    "spike_p_ser": "consensus[0] / (consensus[0] + consensus[1])",
    "cell": "mean of the spike consensus vectors over all spikes of the cell; serotonergic when mean[0] > mean[1]",
}


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k}: {_fmt_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt_value(x) for x in v)
    return str(v)


def _model_card(info: Mapping) -> str:
    lines = [f"# {info.get('name') or 'Serotonergic-CNN ensemble'}", ""]
    if info.get("demo"):
        lines += [
            "> **Demonstration model.** Trained on synthetic or toy data to show the pipeline working; "
            "do not use its labels for real cells.",
            "",
        ]
    lines += [info.get("description") or "(no description given)", ""]
    lines += [
        "## Model",
        "",
        f"Ensemble of {len(info['members'])} CNN members (Corradetti et al., J Neurosci Methods 2024, "
        f"doi 10.1016/j.jneumeth.2024.110158), kernel sizes {', '.join(str(k) for k in info['kernels'])}. "
        "Each member: LayerNormalization(axis=[1]) -> Conv2D(32,(k,1),relu) -> MaxPooling2D((2,1)) -> "
        "Conv2D(64,(k,1),relu) -> MaxPooling2D((2,2)) -> Flatten -> Dropout(0.5) -> Dense(2, sigmoid). "
        "Output unit 0 = serotonergic, unit 1 = non-serotonergic.",
        "",
        "Decision: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in info["aggregation"].items()) + ".",
        "",
    ]
    spec = info["input"]
    lines += [
        "## Input",
        "",
        f"{spec['n_samples']} samples at {spec['sampling_frequency_hz']:g} Hz in {spec['unit']}, "
        f"{spec['samples_before']} before and {spec['samples_after']} after the trigger "
        f"({spec['polarity']} crossing of {spec['threshold_pa']:g} pA). Member input (160, 2, 1): column 0 "
        "time in seconds (arange(160)/40000), column 1 the current.",
        "",
    ]
    lines += ["## Training data", ""]
    training = info.get("training") or {}
    lines += [f"- **{k}**: {_fmt_value(v)}" for k, v in training.items()] or ["Not described."]
    lines += ["", "## Measured accuracy", ""]
    metrics = info.get("metrics") or {}
    lines += [f"- **{k}**: {_fmt_value(v)}" for k, v in metrics.items()] or [
        "No accuracy was measured for this model: evaluate it on labelled cells before relying on it."
    ]
    lines += ["", "## Limits", ""] + [f"- {x}" for x in LIMITS] + [""]
    src = info.get("source")
    if src:
        lines += ["## Source", ""] + [f"- **{k}**: {_fmt_value(v)}" for k, v in src.items()]
        lines += [""]
    lines += ["## Files", "", "| kernel | file | sha256 |", "|---|---|---|"]
    lines += [f"| {m['kernel']} | `{m['file']}` | `{m['sha256']}` |" for m in info["members"]]
    v = info.get("versions", {})
    lines += [
        "",
        f"Saved {info.get('created', '')} with spikeinterface-sero {v.get('spikeinterface_sero')}, "
        f"TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}.",
        "",
        'Load with `spikeinterface_sero.model.load_model("<this folder>")`; the checksums above are verified on load.',
        "",
    ]
    return "\n".join(lines)


def _prepare_target(folder: Path, overwrite: bool) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise ModelError(f"{folder} exists and is not a folder; choose another output path")
        entries = list(folder.iterdir())
        if entries and not overwrite:
            raise ModelError(f"{folder} already exists and is not empty; pass overwrite=True to replace it")
        if entries and not (folder / INFO_FILE).is_file():
            raise ModelError(
                f"{folder} is not empty and is not a model folder (no {INFO_FILE}); refusing to replace it even "
                "with overwrite=True: choose a new or empty folder"
            )


def _member_filenames(kernels: Sequence[int]) -> list[str]:
    seen: dict[int, int] = collections.Counter()
    names = []
    for k in kernels:
        seen[k] += 1
        names.append(f"member_k{k}.keras" if seen[k] == 1 else f"member_k{k}_{seen[k]}.keras")
    return names


def save_model(
    ensemble: Ensemble,
    folder,
    *,
    description: str = "",
    training: Mapping | None = None,
    metrics: Mapping | None = None,
    name: str | None = None,
    demo: bool | None = None,
    input_spec: Mapping | None = None,
    source: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``ensemble`` as a model folder: ``member_k<k>.keras`` files, ``model_info.json``, ``README.md``.

    description : one paragraph on what the model is. training : what it was trained on (data, cells,
    spikes, split, epochs ...). metrics : its measured accuracy (say on what). demo : mark it as the
    demonstration model (default: the ensemble's own flag). input_spec : entries overriding the default
    input description (e.g. ``{"threshold_pa": -30.0}``). overwrite : replace an existing model folder.
    The folder is written next to its final place and moved in when complete. Returns the folder.
    """
    if not isinstance(ensemble, Ensemble):
        raise ModelError(f"save_model needs an Ensemble, got {type(ensemble).__name__}")
    folder = Path(folder).expanduser().resolve()
    _prepare_target(folder, overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = _member_filenames(ensemble.kernels)
        members_info = []
        for member, k, fname in zip(ensemble.members, ensemble.kernels, files):
            member.save(tmp / fname)
            members_info.append({"kernel": int(k), "file": fname, "sha256": _sha256(tmp / fname)})
        spec = _default_input_spec()
        spec.update(ensemble.info.get("input") or {})
        spec.update(input_spec or {})
        info = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "name": name
            or ensemble.info.get("name")
            or f"Serotonergic-CNN ensemble, kernels {min(ensemble.kernels)}-{max(ensemble.kernels)}",
            "description": description or ensemble.info.get("description", ""),
            "demo": bool(ensemble.is_demo if demo is None else demo),
            "label_conversion": dict(LABEL_CONVERSION),
            "input": spec,
            "kernels": [int(k) for k in ensemble.kernels],
            "members": members_info,
            "aggregation": dict(_AGGREGATION),
            "training": dict(training if training is not None else ensemble.info.get("training") or {}),
            "metrics": dict(metrics if metrics is not None else ensemble.info.get("metrics") or {}),
            "versions": _versions(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        src = source if source is not None else ensemble.info.get("source")
        if src:
            info["source"] = dict(src)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(_model_card(info), encoding="utf-8")
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _read_info(folder: Path) -> dict:
    path = folder / INFO_FILE
    if not path.is_file():
        raise ModelError(f"{folder} is not a model folder: {INFO_FILE} is missing")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read as JSON ({exc}); the model folder is damaged") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise ModelError(
            f"{path} is not a spikeinterface-sero model description (format field missing); "
            "point to a folder written by sero train, sero import-models or save_model"
        )
    if int(info.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise ModelError(
            f"{folder} uses model-folder format {info.get('format_version')}, newer than this "
            f"spikeinterface-sero ({__version__}) reads ({MODEL_FORMAT_VERSION}); upgrade the package"
        )
    if info.get("label_conversion") != LABEL_CONVERSION:
        raise ModelError(
            f"{path}: label_conversion is {info.get('label_conversion')}, but this package needs "
            f"{LABEL_CONVERSION} (unit 0 serotonergic)"
        )
    spec = info.get("input") or {}
    if (
        float(spec.get("sampling_frequency_hz", 0)) != SAMPLING_FREQUENCY
        or int(spec.get("n_samples", 0)) != SNIPPET_LENGTH
    ):
        raise ModelError(
            f"{path}: the model expects {spec.get('n_samples')} samples at "
            f"{spec.get('sampling_frequency_hz')} Hz; this package feeds 160 samples at 40 kHz"
        )
    members = info.get("members")
    if not isinstance(members, list) or not members:
        raise ModelError(f"{path} lists no members")
    for m in members:
        f = str(m.get("file", ""))
        if not f or Path(f).name != f or f in (".", ".."):
            raise ModelError(f"{path}: member file name {f!r} is not a plain file name in the folder")
        if not isinstance(m.get("sha256"), str) or not isinstance(m.get("kernel"), int):
            raise ModelError(f"{path}: member entry {m} lacks kernel or sha256")
    return info


def _load_keras_file(path: Path, *, trust: bool):
    """Load a .keras / .h5 file with Keras safe mode, mapping failures to ModelError."""
    keras = _keras()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not trust)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types
        msg = str(exc)
        if not trust and ("safe_mode" in msg or "Lambda" in msg or "lambda" in msg):
            raise ModelError(
                f"{path.name} contains a Lambda layer (arbitrary Python code), which is refused by default; "
                "pass trust=True only if you trust where this model comes from"
            ) from None
        if "Could not locate" in msg or "Unknown" in msg or "custom" in msg.lower():
            raise ModelError(
                f"{path.name} needs custom Keras objects that are not available ({msg.splitlines()[0]}); import "
                "and register them (keras.saving.register_keras_serializable) and pass trust=True if you trust "
                "its source"
            ) from None
        raise ModelError(f"{path.name} cannot be loaded by Keras {keras.__version__}: {msg.splitlines()[0]}") from None
    if not trust:
        custom = sorted(
            {
                type(layer).__module__ + "." + type(layer).__name__
                for layer in _all_layers(model)
                if not type(layer).__module__.startswith("keras.")
            }
        )
        if custom or not type(model).__module__.startswith("keras."):
            raise ModelError(
                f"{path.name} uses custom code ({', '.join(custom) or type(model).__name__}); refused by default, "
                "pass trust=True only if you trust where this model comes from"
            )
    return model


def _all_layers(model) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget the ensembles :func:`load_model` keeps in memory."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_model(folder=None, *, trust: bool = False) -> Ensemble:
    """Load a model folder (``None``: the bundled demo model) after verifying its checksums.

    Members are loaded with Keras safe mode: a model needing arbitrary code (a Lambda layer, custom layer
    classes) raises :class:`ModelError` unless ``trust=True``. Loaded ensembles are cached per process, keyed
    on the folder and the checksums of its files, so repeated calls return the same object (treat it as
    read-only; :func:`clear_model_cache` forgets them).
    """
    if folder is None:
        folder = demo_model_folder()
        if not (folder / INFO_FILE).is_file():
            raise ModelError(
                f"the bundled demo model is not installed (expected at {folder}); it has not been trained yet "
                "in this version. Pass a model folder, e.g. one made by `sero import-models` from the authors' "
                "published ModelsDNN folder"
            )
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ModelError(
            f"model folder {folder} does not exist; pass a folder written by sero train or "
            "sero import-models, or leave the model out for the bundled demonstration model"
        )
    info = _read_info(folder)
    checks = []
    for m in info["members"]:
        path = folder / m["file"]
        if not path.is_file():
            raise ModelError(
                f"model folder {folder} is incomplete: member file {m['file']} is missing; copy the whole folder again"
            )
        digest = _sha256(path)
        if digest != m["sha256"]:
            raise ModelError(
                f"checksum mismatch for {m['file']} in {folder}: the file is not the one the model was saved with "
                f"(sha256 {digest[:12]}... != {m['sha256'][:12]}... in {INFO_FILE}). It was modified or damaged: "
                "get a fresh copy of the model folder; do not edit the checksum unless you know why it changed"
            )
        checks.append((m["file"], digest))
    key = (str(folder), _sha256(folder / INFO_FILE), tuple(checks), bool(trust))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    members = []
    for m in info["members"]:
        model = _load_keras_file(folder / m["file"], trust=trust)
        k = member_kernel(model)
        if k != m["kernel"]:
            raise ModelError(f"{m['file']}: first convolution has kernel {k}, but {INFO_FILE} says {m['kernel']}")
        members.append(model)
    info = dict(info)
    info["folder"] = str(folder)
    ens = Ensemble(members, info=info)
    with _CACHE_LOCK:
        _CACHE[key] = ens
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return ens


# --------------------------------------------------------------------------------------------------------
# Import of the published models
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


class _Source:
    """A loaded source member: a Keras model, or a SavedModel served by TFSMLayer."""

    def __init__(self, path: Path):
        self.path = path
        self.format = _fmt(path)
        keras = _keras()
        if self.format == "savedmodel":
            try:
                self.layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
            except Exception as exc:  # noqa: BLE001
                raise ModelError(
                    f"{path.name}: cannot be read as a TensorFlow SavedModel with a serving_default "
                    f"endpoint ({str(exc).splitlines()[0]})"
                ) from None
            sig = self.layer.call_endpoint_fn.structured_input_signature
            specs = list(sig[0]) + list(sig[1].values())
            if len(specs) != 1:
                raise ModelError(f"{path.name}: the SavedModel takes {len(specs)} inputs; a member takes one")
            self.input_shape = tuple(specs[0].shape.as_list())
            self.model = None
        else:
            self.model = _load_keras_file(path, trust=False)
            self.input_shape = _input_shape(self.model)
        if self.input_shape is None or tuple(self.input_shape[1:]) != MEMBER_INPUT_SHAPE:
            raise ModelError(
                f"{path.name}: input shape is {self.input_shape}; the published members take "
                "(None, 160, 2, 1) (160 samples x (time, current) x 1)"
            )
        self.kernel = self._kernel()

    def _variables(self) -> list:
        return list(self.layer.weights)

    def _kernel(self) -> int:
        if self.model is not None:
            check_member_architecture(self.model)
            return member_kernel(self.model)
        convs = [v for v in self._variables() if len(v.shape) == 4]
        if not convs:
            raise ModelError(f"{self.path.name}: the SavedModel has no convolution kernels; not a member")
        first = min(convs, key=lambda v: int(v.shape[2]))  # conv1 has 1 input channel
        k = int(first.shape[0])
        if not MIN_KERNEL <= k <= MAX_KERNEL:
            raise ModelError(f"{self.path.name}: first convolution has kernel {k}, outside 1-31")
        return k

    def weights_for(self, member) -> list[np.ndarray]:
        """The source weights in the order of ``member.get_weights()``, shape-checked."""
        target = [tuple(w.shape) for w in member.get_weights()]
        if self.model is not None:
            ws = [np.asarray(w) for w in self.model.get_weights()]
        else:
            vs = self._variables()
            if len(vs) != len(target):
                raise ModelError(
                    f"{self.path.name}: the SavedModel has {len(vs)} variables, a member has "
                    f"{len(target)}: not the published architecture"
                )
            # Keras 2 tracks variables layer by layer (gamma, beta, kernel, bias, ...); put gamma before beta
            # by name when both are named, whatever order the SavedModel lists them in.
            names = [v.name for v in vs]
            g = [i for i, nm in enumerate(names) if "gamma" in nm]
            b = [i for i, nm in enumerate(names) if "beta" in nm]
            if len(g) == 1 and len(b) == 1 and g[0] > b[0]:
                vs[g[0]], vs[b[0]] = vs[b[0]], vs[g[0]]
            ws = [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in vs]
        got = [tuple(w.shape) for w in ws]
        if got != target:
            raise ModelError(
                f"{self.path.name}: weight shapes {got} do not match the published member with kernel "
                f"{self.kernel} {target}"
            )
        return ws

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.model is not None:
            return np.asarray(self.model(x, training=False))
        y = self.layer(x)  # a single-input serving signature also binds the tensor positionally
        if isinstance(y, Mapping):
            if len(y) != 1:
                raise ModelError(f"{self.path.name}: the SavedModel returns {len(y)} outputs; a member returns one")
            y = next(iter(y.values()))
        return np.asarray(y)


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


def import_models(
    src,
    out,
    *,
    choose=None,
    overwrite: bool = False,
    description: str | None = None,
    training: Mapping | None = None,
    metrics: Mapping | None = None,
) -> Path:
    """Import the authors' published members (their ``ModelsDNN`` folder) into a model folder.

    src : a folder of members (``ModConvBinNormN<k>.keras``, ``...-v<session>.keras``, ``.h5`` legacy HDF5 or
        TensorFlow SavedModel directories), or one such file / directory. Other files are ignored.
    out : the model folder to write (plain Keras-3 ``member_k<k>.keras`` files + model_info.json + README.md).
    choose : when one kernel has several files (e.g. several training sessions, or the same member in
        several formats): a session for all kernels (``"v199"``; a kernel whose only file carries no
        session tag keeps it), or ``{kernel: file name or session}``. Without it, two files for one kernel
        raise :class:`ModelError` listing them.

    Each member's kernel size is read from its first convolution (and must agree with a ``ModConvBinNormN<k>``
    name); its input must be (160, 2, 1) and its layers the published architecture. The weights are copied
    into a clean :func:`build_member` model, which must reproduce the source's outputs on probe spikes
    (to 1e-5), so compile state, metrics and Keras-2 specifics are not carried over. Returns ``out``.
    """
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

    # Group by kernel: from the published name when it has one, else by loading the file.
    loaded: dict[Path, _Source] = {}
    groups: dict[int, list[Path]] = collections.defaultdict(list)
    for p in cands:
        m = _PUBLISHED_NAME.match(_stem(p))
        if m:
            k = int(m.group(1))
        else:
            loaded[p] = _Source(p)
            k = loaded[p].kernel
        groups[k].append(p)
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

    keras = _keras()
    probe = _probe_inputs()
    members, files, formats, shas = [], {}, {}, {}
    for k, p in chosen.items():
        source = loaded.get(p) or _Source(p)
        if source.kernel != k:
            raise ModelError(
                f"{p.name}: the name says kernel {k} but its first convolution has kernel "
                f"{source.kernel}; rename the file or check where it came from"
            )
        member = build_member(k)
        member.set_weights(source.weights_for(member))
        diff = float(np.max(np.abs(np.asarray(member(probe, training=False)) - source.predict(probe))))
        if not diff <= _IMPORT_TOL:
            raise ModelError(
                f"{p.name}: the rebuilt member differs from the file by {diff:.2g} on probe spikes; "
                "the file is not the published architecture (activations or layer order differ)"
            )
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


# --------------------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------------------
def _sample_centres(member, layer) -> np.ndarray | None:
    """Input-sample centre of each output position of ``layer`` along time (None if it cannot be traced)."""
    keras = _keras()
    L = keras.layers
    a, b = 1.0, 0.0  # sample = a * h + b
    length = SNIPPET_LENGTH
    for lay in _plain_layers(member):
        if isinstance(lay, (L.Conv2D, L.MaxPooling2D, L.AveragePooling2D)):
            if isinstance(lay, L.Conv2D):
                k, s, d = int(lay.kernel_size[0]), int(lay.strides[0]), int(lay.dilation_rate[0])
            else:
                k, s, d = int(lay.pool_size[0]), int(lay.strides[0]), 1
            eff = (k - 1) * d + 1
            if lay.padding == "valid":
                off = (eff - 1) / 2.0
                length = (length - eff) // s + 1
            else:
                out_len = -(-length // s)
                pad_total = max((out_len - 1) * s + eff - length, 0)
                off = (eff - 1) / 2.0 - pad_total // 2
                length = out_len
            a, b = a * s, a * off + b
        elif isinstance(lay, (L.Flatten, L.Dense, L.GlobalMaxPooling2D, L.GlobalAveragePooling2D, L.Reshape)):
            return None
        if lay is layer:
            return a * np.arange(length) + b
    return None


def _member_gradcam(member, x4: np.ndarray, class_index: int, layer_names: list[str]) -> dict:
    tf = _tf()
    keras = _keras()
    layers = [member.get_layer(name) for name in layer_names]
    xt = tf.convert_to_tensor(x4)
    if isinstance(member, keras.Sequential):
        # Layer by layer: the symbolic outputs of a *loaded* Sequential's layers belong to a graph that is
        # not the one its .outputs come from, so a sub-model built from them would not be connected.
        with tf.GradientTape() as tape:
            h, found = xt, {}
            for layer in _plain_layers(member):
                h = layer(h, training=False)
                if layer in layers:
                    found[id(layer)] = h
            acts = [found[id(layer)] for layer in layers]
            score = tf.reduce_sum(h[:, class_index])
    else:
        sub = keras.Model(member.inputs, [layer.output for layer in layers] + [member.outputs[0]])
        with tf.GradientTape() as tape:
            outs = sub(xt, training=False)
            acts, pred = outs[:-1], outs[-1]
            score = tf.reduce_sum(pred[:, class_index])
    grads = tape.gradient(score, acts)
    result = {}
    for layer, act, grad in zip(layers, acts, grads):
        act, grad = np.asarray(act), np.asarray(grad)
        if act.ndim != 4:
            raise ModelError(f"layer {layer.name!r} is not a 2-D feature map; Grad-CAM needs a convolution layer")
        weights = grad.mean(axis=(1, 2), keepdims=True)  # (n, 1, 1, C): standard Grad-CAM channel weights
        cam_full = np.maximum((weights * act).sum(axis=-1), 0.0)  # (n, H, W)
        col = 1 if cam_full.shape[2] >= 2 else 0  # the current column
        cam = cam_full[:, :, col]
        centres = _sample_centres(member, layer)
        if centres is None or len(centres) != cam.shape[1]:
            centres = np.linspace(0, SNIPPET_LENGTH - 1, cam.shape[1])
        grid = np.arange(SNIPPET_LENGTH, dtype=np.float64)
        up = (
            np.stack([np.interp(grid, centres, row) for row in cam])
            if cam.shape[1] > 1
            else np.repeat(cam, SNIPPET_LENGTH, axis=1)
        )
        top = up.max(axis=1, keepdims=True)
        result[layer.name] = np.where(top > 0, up / np.where(top > 0, top, 1.0), 0.0)
    return result


def gradcam(ensemble_or_member, snippets, *, class_index: int = 0, layers: Sequence[str] | None = None) -> dict:
    """Grad-CAM class-activation maps over the 160 samples, per convolution layer.

    ensemble_or_member : an :class:`Ensemble` or one member (Keras model).
    snippets : (n, 160) in pA. class_index : 0 serotonergic (default), 1 non-serotonergic.
    layers : names of convolution layers (default: every Conv2D, i.e. ``conv2d`` and ``conv2d_1``).

    For each layer: channel weights = gradient of output unit ``class_index`` averaged over the feature map,
    map = relu(weighted sum of channels) on the current column, placed at the centre of each position's
    receptive field and linearly interpolated to the 160 samples, then scaled to max 1 per snippet (all
    zeros when nothing supports the class). For an ensemble, the i-th convolution of every member is
    mapped and the maps are averaged over members (keys: the first member's layer names).
    Returns ``{layer name: (n, 160) float array in [0, 1]}``.
    """
    keras = _keras()
    if class_index not in (0, 1):
        raise ModelError(f"class_index must be 0 (serotonergic) or 1 (non-serotonergic), got {class_index!r}")
    x4 = to_member_input(snippets)
    members = ensemble_or_member.members if isinstance(ensemble_or_member, Ensemble) else [ensemble_or_member]
    convs = [[lay.name for lay in _plain_layers(m) if isinstance(lay, keras.layers.Conv2D)] for m in members]
    if not convs[0]:
        raise ModelError("the model has no convolution layer for Grad-CAM")
    if layers is None:
        positions = list(range(len(convs[0])))
    else:
        layers = [layers] if isinstance(layers, str) else list(layers)
        positions = []
        for name in layers:
            if name not in convs[0]:
                raise ModelError(f"no convolution layer named {name!r}; the layers are {convs[0]}")
            positions.append(convs[0].index(name))
    keys = [convs[0][i] for i in positions]
    total = {key: np.zeros((x4.shape[0], SNIPPET_LENGTH)) for key in keys}
    if x4.shape[0] == 0:
        return total
    for m, names in zip(members, convs):
        if len(names) < len(convs[0]):
            raise ModelError(f"member {m.name!r} has fewer convolution layers than the first member")
        maps = _member_gradcam(m, x4, class_index, [names[i] for i in positions])
        for key, i in zip(keys, positions):
            total[key] += maps[names[i]]
    return {key: v / len(members) for key, v in total.items()}


def plot_gradcam(
    snippet, cam, ax=None, *, layer: str | None = None, cmap: str = "jet", alpha: float = 0.45, title: str | None = None
):
    """Draw a snippet (pA against ms from the trigger) over its Grad-CAM map; returns the Axes.

    cam : (160,) map, or the dict returned by :func:`gradcam` for this one snippet (``(1, 160)`` arrays;
    ``layer`` picks the layer, default the deepest).
    """
    import matplotlib.pyplot as plt

    x = _as_snippets(np.asarray(snippet).reshape(1, -1) if np.ndim(snippet) == 1 else snippet)
    if x.shape[0] != 1:
        raise SnippetError(f"plot_gradcam draws one snippet; got {x.shape[0]}")
    name = None
    if isinstance(cam, Mapping):
        if not cam:
            raise DataError("cam is an empty dict")
        name = layer or list(cam)[-1]
        if name not in cam:
            raise DataError(f"layer {name!r} not in cam (have {list(cam)})")
        cam = cam[name]
    c = np.asarray(cam, dtype=np.float64).reshape(-1)
    if c.shape[0] != SNIPPET_LENGTH:
        raise DataError(f"cam has {c.shape[0]} values; expected 160 (one per sample)")
    if ax is None:
        _fig, ax = plt.subplots(figsize=(6, 3))
    t = (np.arange(SNIPPET_LENGTH) - NBEFORE) / SAMPLING_FREQUENCY * 1000.0
    y = x[0]
    pad = 0.05 * (float(y.max() - y.min()) or 1.0)
    lo, hi = float(y.min()) - pad, float(y.max()) + pad
    dt = t[1] - t[0]
    im = ax.imshow(
        c[None, :],
        extent=(t[0] - dt / 2, t[-1] + dt / 2, lo, hi),
        aspect="auto",
        cmap=cmap,
        alpha=alpha,
        vmin=0.0,
        vmax=max(1.0, float(c.max())),
        origin="lower",
    )
    ax.plot(t, y, color="black", lw=1.2)
    ax.set_xlim(t[0] - dt / 2, t[-1] + dt / 2)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("time from trigger (ms)")
    ax.set_ylabel("current (pA)")
    ax.set_title(title if title is not None else f"Grad-CAM{f' ({name})' if name else ''}")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="class activation")
    return ax
