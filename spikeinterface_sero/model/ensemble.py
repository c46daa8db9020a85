"""The ensemble: its members' outputs by the fused forward pass (float32 numpy by default,
:mod:`.numpy_engine`; or one compiled TensorFlow call, the fused predictor), the spike consensus, and the
naive ``member.predict`` loop both are tested against.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..constants import DEFAULT_KERNELS, LABELS, SNIPPET_LENGTH
from ..decision import DecisionParams, cell_decisions, spike_probability
from ..errors import DataError, ModelError
from . import spec as S
from ._backend import _tf
from .architecture import (
    MEMBER_INPUT_SHAPE,
    TIME_COLUMN,
    _as_snippets,
    _input_shape,
    _is_published,
    _output_shape,
    _plain_layers,
    build_member,
    member_kernel,
    to_member_input,
)

__all__ = ["ENGINES", "Ensemble", "random_ensemble", "predict_members_naive"]


def _fused_predictor(members):
    """One ``tf.function`` computing every member's output from the current column only.

    Whatever its unit, the time column is the same for every spike, so after the layer normalisation its
    path through conv1 -> pool1 -> conv2 -> relu is a constant per member: it is computed here once, with
    the member's own layers, and only the current column runs per spike (half the convolution work).
    ``MaxPooling2D((2, 2))`` then takes, at each pooled step, the max over the two time steps and the two
    columns: ``max(pool(current features), pool(time features))``.

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
        tfeat = np.asarray(h)[0, :, 0, :]  # (L2, second convolution filters), after relu
        n_pool = tfeat.shape[0] // 2
        tmax = np.maximum(tfeat[0 : 2 * n_pool : 2], tfeat[1 : 2 * n_pool : 2])
        if n_pool != S.pooled_length(int(w1.shape[0])):
            raise ModelError(
                f"member {member.name}: {n_pool} pooled steps, the specification {S.pooled_length(w1.shape[0])}"
            )
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
            # (x - mean) first: x * inv + (beta - mean * inv) loses ~1e-4 to cancellation when |mean| >> std
            xn = (x4 - mean) * inv + p["beta"]
            h = tf.nn.relu(tf.nn.conv2d(xn, p["w1"], 1, "VALID") + p["b1"])
            h = tf.nn.max_pool2d(h, (2, 1), (2, 1), "VALID")
            h = tf.nn.relu(tf.nn.conv2d(h, p["w2"], 1, "VALID") + p["b2"])
            h = tf.nn.max_pool2d(h, (2, 1), (2, 1), "VALID")[:, : p["n_pool"], 0, :]
            h = tf.maximum(h, p["tmax"])
            h = tf.reshape(h, (-1, p["n_pool"] * S.FILTERS[1]))
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


#: What can compute an ensemble's predictions (the ``engine`` of :class:`Ensemble`).
ENGINES = ("numpy", "tensorflow")


def _check_engine(engine) -> str:
    if engine not in ENGINES:
        raise ModelError(f"engine must be 'numpy' or 'tensorflow', got {engine!r}")
    return engine


def _keras_member(weights):
    """A Keras member (``build_member``) holding ``weights`` (a :class:`MemberWeights`)."""
    member = build_member(weights.kernel)
    member.set_weights(weights.keras_weights())
    for layer in _plain_layers(member):
        if type(layer).__name__ == "LayerNormalization":
            layer.epsilon = weights.epsilon
        elif type(layer).__name__ == "Dropout":
            layer.rate = weights.dropout
    return member


class Ensemble:
    """The members of a serotonergic-CNN ensemble and their consensus.

    Parameters
    ----------
    members : sequence of keras.Model
        Models taking (n, 160, 2, 1) and returning (n, 2) (unit 0 serotonergic).
    info : dict or None, default: None
        The ``model_info.json`` content of the model folder (``{}`` for an ensemble built in memory).
    engine : {"numpy", "tensorflow"}, default: "numpy"
        What computes the predictions when every member is the published architecture: ``"numpy"``, the
        fused forward pass in float32 numpy (:mod:`~spikeinterface_sero.model.numpy_engine`), or
        ``"tensorflow"``, the same fused pass as one compiled TensorFlow call. Both give the outputs of
        ``member.predict`` to float32 rounding (2e-7 for random members, 2e-6 for the trained demo members;
        tested to 1e-5). Other members always run as Keras models in one compiled TensorFlow call.

    Notes
    -----
    :func:`~spikeinterface_sero.model.load_model` builds an ensemble from the member files' weights alone
    (:meth:`from_weights`, no TensorFlow); the Keras models (:attr:`members`) are then built when something
    needs them (training, Grad-CAM, :func:`predict_members_naive`, saving, the TensorFlow engine). The
    weights are read when the first prediction is made: if you change a member's weights afterwards, make a
    new ``Ensemble``. ``threads`` (None: ``SERO_NUM_THREADS``, ``OMP_NUM_THREADS`` or the CPUs available)
    is how many threads the numpy engine splits the members over.
    """

    def __init__(self, members: Sequence, info: Mapping | None = None, *, engine: str = "numpy"):
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
        self._setup(info, engine)
        self._members = members
        self.kernels = tuple(member_kernel(m) for m in members)
        self.fused = all(_is_published(m) for m in members)

    @classmethod
    def from_weights(cls, weights: Sequence, info: Mapping | None = None, *, engine: str = "numpy") -> Ensemble:
        """An ensemble of published members given by their weights (:class:`~.weights.MemberWeights`),
        without building Keras models (they are built when :attr:`members` is first used)."""
        from .weights import MemberWeights

        weights = list(weights)
        if not weights:
            raise ModelError("an ensemble needs at least one member")
        if not all(isinstance(w, MemberWeights) for w in weights):
            raise ModelError("Ensemble.from_weights needs MemberWeights objects (spikeinterface_sero.model.weights)")
        self = cls.__new__(cls)
        self._setup(info, engine)
        self._members = None
        self._weights = weights
        self.kernels = tuple(w.kernel for w in weights)
        self.fused = True
        return self

    def _setup(self, info, engine) -> None:
        self.info = dict(info or {})
        self._engine = _check_engine(engine)
        self._members = None
        self._weights = None
        self._predictor = None
        self._numpy = None
        self.threads = None
        self._lock = threading.RLock()

    # -- properties -----------------------------------------------------------------------------------
    @property
    def members(self) -> list:
        """The members as Keras models (built from the weights on first use for a loaded model folder)."""
        if self._members is None:
            with self._lock:
                if self._members is None:
                    self._members = [_keras_member(w) for w in self._weights]
        return self._members

    @property
    def engine(self) -> str:
        """What :meth:`predict_members` runs: ``"numpy"`` or ``"tensorflow"``."""
        return "numpy" if self._engine == "numpy" and self.fused else "tensorflow"

    def with_engine(self, engine: str) -> Ensemble:
        """The same members (shared, not copied) and info, predicting with ``engine``."""
        _check_engine(engine)
        other = type(self).__new__(type(self))
        other._setup(self.info, engine)
        if engine == "tensorflow" and self.fused:
            self.members  # noqa: B018 - built once here, shared by both
        other._members, other._weights = self._members, self._weights
        other.kernels, other.fused, other.threads = self.kernels, self.fused, self.threads
        if engine == "numpy":
            other._numpy = self._numpy
        return other

    @property
    def is_demo(self) -> bool:
        """True for the bundled demonstration model (not for real classification)."""
        return bool(self.info.get("demo", False))

    @property
    def labels(self) -> tuple[str, str]:
        """The labels of output units 0 and 1: ``("serotonergic", "non_serotonergic")``."""
        return LABELS

    def __len__(self) -> int:
        return len(self.kernels)

    def __repr__(self) -> str:
        kind = "demo " if self.is_demo else ""
        src = self.info.get("folder") or "in memory"
        return f"<{kind}Ensemble of {len(self)} members, kernels {list(self.kernels)}, {src}>"

    # -- prediction -----------------------------------------------------------------------------------
    def _member_weights(self) -> list:
        if self._weights is None:
            from .weights import member_weights_from_keras

            self._weights = [member_weights_from_keras(m) for m in self._members]
        return self._weights

    def _get_numpy(self):
        with self._lock:
            if self._numpy is None:
                from .numpy_engine import NumpyEngine

                self._numpy = NumpyEngine(self._member_weights())
            return self._numpy

    def _get_predictor(self):
        with self._lock:
            if self._predictor is None:
                self._predictor = _fused_predictor(self.members) if self.fused else _generic_predictor(self.members)
            return self._predictor

    def predict_members(self, snippets, batch_size: int = 512) -> np.ndarray:
        """Every member's output for every snippet: (n, n_members, 2) float32.

        Parameters
        ----------
        snippets : array-like or Snippets
            (n, 160) or (n, 160, 1) float, pA (or a ``Snippets`` object).
        batch_size : int, default: 512
            TensorFlow engine: spikes per compiled call (12 members: ~90 kB of working memory per spike,
            ~45 MB at the default). Numpy engine: at most this many spikes per pass (it uses 128 at most,
            the fastest on a 2-core CPU: ~100 kB per spike and thread).
        """
        x = _as_snippets(snippets)
        m = len(self)
        if x.shape[0] == 0:
            return np.zeros((0, m, 2), dtype=np.float32)
        batch_size = int(batch_size)
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if self.engine == "numpy":
            return self._get_numpy().predict_members(x, batch_size=batch_size, threads=self.threads)
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

    Parameters
    ----------
    kernels : iterable of int, default: DEFAULT_KERNELS (20-31)
        One member per kernel size.
    seed : int, default: 0
        Seed of a local numpy generator (no global seed is set).

    Returns
    -------
    Ensemble
        Besides Glorot-uniform kernels, the LayerNormalization gamma/beta and all biases are randomised, so
        every parameter influences the output.
    """
    rng = np.random.default_rng(seed)
    members = []
    for k in kernels:
        m = build_member(k)
        weights = []
        for _, _, weight in S.weight_specs(k):
            shape = weight.shape(k)
            if weight.field in ("gamma", "beta"):
                weights.append(rng.normal(1.0 if weight.field == "gamma" else 0.0, 0.3, shape))
            elif len(shape) == 1:  # biases
                weights.append(rng.normal(0.0, 0.05, shape))
            else:  # Glorot-uniform kernels
                fan_in = int(np.prod(shape[:-1]))
                fan_out = int(shape[-1]) * (int(np.prod(shape[:-2])) if len(shape) > 2 else 1)
                lim = math.sqrt(6.0 / (fan_in + fan_out))
                weights.append(rng.uniform(-lim, lim, shape))
        m.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        members.append(m)
    return Ensemble(members, info={"demo": False, "description": f"untrained random members (seed {seed})"})


def predict_members_naive(ensemble_or_members, snippets, batch_size: int = 32) -> np.ndarray:
    """The reference path: ``member.predict`` on the full (n, 160, 2, 1) input, one member after the other.

    Parameters
    ----------
    ensemble_or_members : Ensemble or sequence of keras.Model
        The members to run.
    snippets : array-like
        (n, 160) currents in pA.
    batch_size : int, default: 32
        Passed to ``member.predict``.

    Returns
    -------
    numpy.ndarray
        (n, n_members, 2). Slow; kept for tests and benchmarks of the fused path.
    """
    members = ensemble_or_members.members if isinstance(ensemble_or_members, Ensemble) else list(ensemble_or_members)
    x = to_member_input(snippets)
    return np.stack([np.asarray(m.predict(x, batch_size=batch_size, verbose=0)) for m in members], axis=1)
