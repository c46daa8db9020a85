"""The fused ensemble forward pass in float32 numpy: the published members' outputs without TensorFlow.
The maths, step by step: ``docs/model-folder.md`` ("The numpy engine").
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections.abc import Sequence

import numpy as np

from ..constants import SNIPPET_LENGTH
from ..errors import DataError
from . import spec as S
from .architecture import TIME_COLUMN
from .weights import MemberWeights

__all__ = ["NumpyEngine", "default_threads"]

CHUNK = 64  # spikes per pass: ~100 kB of buffers per spike and thread (6 MB at 64, in cache)


def default_threads() -> int:
    """Threads for the numpy engine: ``SERO_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this
    process may run on."""
    for var in ("SERO_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "").strip()
        if v.isdigit() and int(v) >= 1:
            return int(v)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------------
# One BLAS thread while the engine's own threads run (process-wide, reference counted)
# --------------------------------------------------------------------------------------------------------
class _SingleThreadedBlas:
    _lock = threading.Lock()
    _depth = 0
    _saved = None
    _controller = None
    _unavailable = False

    @classmethod
    def available(cls) -> bool:
        if cls._controller is None and not cls._unavailable:
            with cls._lock:
                if cls._controller is None and not cls._unavailable:
                    try:
                        from threadpoolctl import ThreadpoolController

                        cls._controller = ThreadpoolController()
                    except Exception:  # noqa: BLE001 - no threadpoolctl: the engine runs one thread
                        cls._unavailable = True
        return cls._controller is not None

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0 and cls._controller is not None:
                blas = cls._controller.select(user_api="blas")
                cls._saved = [(lib, lib.num_threads) for lib in blas.lib_controllers]
                for lib, n in cls._saved:
                    if n != 1:
                        lib.set_num_threads(1)
            cls._depth += 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0 and cls._saved:
                for lib, n in cls._saved:
                    if n != 1:
                        lib.set_num_threads(n)
                cls._saved = None
        return False


_nothing = contextlib.nullcontext


# --------------------------------------------------------------------------------------------------------
# Per-member constants
# --------------------------------------------------------------------------------------------------------
class _Member:
    """Everything of one member that does not depend on the spikes."""

    def __init__(self, w: MemberWeights):
        k = w.kernel
        f32 = np.float32
        self.k = k
        self.c1, self.c2 = c1, c2 = S.FILTERS  # read when the engine is made: the spec of now
        self.eps = f32(w.epsilon)
        self.gamma = w.gamma
        self.beta = w.beta
        w1 = w.conv1_kernel.reshape(k, c1)
        self.w1 = np.ascontiguousarray(w1)
        # conv1 at steps 2t and 2t + 1 from the same k + 1 samples from 2t (im2col half the size)
        self.w1_even = np.zeros((k + 1, c1), dtype=f32)
        self.w1_even[:k] = w1
        self.w1_odd = np.zeros((k + 1, c1), dtype=f32)
        self.w1_odd[1:] = w1
        self.neg_b1 = -w.conv1_bias
        lengths = S.layer_lengths(k)
        self.n_pool = n_pool = lengths["pool2"]
        self.n_out = n_out = 2 * n_pool  # conv2 outputs the second pooling uses
        self.n_in = n_in = n_out + k - 1  # pooled conv1 steps those outputs need
        self.n_conv1 = 2 * n_in  # conv1 outputs those need
        self._conv2_by_dft(w)
        self.tmax = self._time_features(w, lengths["pool1"])  # (n_pool, 1, c2)
        self.wd = np.ascontiguousarray(w.dense_kernel.reshape(n_pool, c2, S.N_OUTPUTS))
        self.bd = w.dense_bias
        # buffer sizes per spike
        B = self.B
        self.sizes = {
            "A": n_in * (k + 1),
            "h": 2 * n_in * c1,
            "hp": n_in * c1,
            "H": 2 * B * c1,
            "X": B * 2 * c1,
            "Yf": 2 * B * c2,
            "y": n_out * c2,
            "yp": n_pool * c2,
        }

    def _conv2_by_dft(self, w: MemberWeights) -> None:
        """The second convolution as products with the DFT of its kernel, over the steps the pooling uses."""
        f32 = np.float32
        k, c1, c2, n_in, n_out = self.k, self.c1, self.c2, self.n_in, self.n_out
        P = n_in  # DFT length: no circular wrap for the outputs used
        B = P // 2 + 1
        self.B = B
        f = np.arange(B)
        ang = 2.0 * np.pi * np.outer(f, np.arange(P)) / P  # (B, P)
        # forward transform, rows (frequency, re/im): Re = sum h cos, Im = -sum h sin
        self.F = np.stack([np.cos(ang), -np.sin(ang)], axis=1).reshape(2 * B, P).astype(f32)
        # correlation with w2 <=> product with conj(DFT(w2)) = Wr + i S per frequency
        w2 = w.conv2_kernel.astype(np.float64).reshape(k, c1, c2)
        angw = 2.0 * np.pi * np.outer(f, np.arange(k)) / P  # (B, k)
        wr = np.einsum("fj,jio->fio", np.cos(angw), w2)
        ws = np.einsum("fj,jio->fio", np.sin(angw), w2)
        # [Re | Im] (n, 2 c1) @ [[Wr, S], [-S, Wr]] = [Re out | Im out]
        self.w_re = np.ascontiguousarray(np.concatenate([wr, -ws], axis=1), dtype=f32)  # (B, 2 c1, c2)
        self.w_im = np.ascontiguousarray(np.concatenate([ws, wr], axis=1), dtype=f32)
        # inverse transform onto the n_out steps, columns (re/im, frequency)
        amp = np.full(B, 2.0)
        amp[0] = 1.0
        if P % 2 == 0:
            amp[-1] = 1.0
        angt = 2.0 * np.pi * np.outer(np.arange(n_out), f) / P  # (n_out, B)
        self.G = np.concatenate([amp * np.cos(angt), -amp * np.sin(angt)], axis=1).astype(f32) / f32(P)
        # constants through the linear conv2: the conv1 bias (pooled features are stored minus it) and the
        # conv2 bias, both added to the zero-frequency real part (the inverse maps it to every step / P)
        b1 = w.conv1_bias.astype(np.float64)
        self.dc = (P * (b1 @ w2.sum(axis=0) + w.conv2_bias.astype(np.float64))).astype(f32)  # (c2,)

    def _time_features(self, w: MemberWeights, n1p: int) -> np.ndarray:
        """The time column through LN -> conv1 -> relu -> pool -> conv2 -> relu -> pool over time (float32)."""
        k = self.k
        t = TIME_COLUMN
        mean = t.mean(dtype=np.float32)
        var = np.square(t - mean).mean(dtype=np.float32)
        inv = np.float32(1.0) / np.sqrt(var + self.eps)
        tn = (t - mean) * inv * self.gamma + self.beta
        h = np.lib.stride_tricks.sliding_window_view(tn, k) @ self.w1 + w.conv1_bias
        np.maximum(h, 0, out=h)
        h = np.maximum(h[0 : 2 * n1p : 2], h[1 : 2 * n1p : 2])  # (n1p, 32)
        win = np.lib.stride_tricks.sliding_window_view(h, k, axis=0)  # (n2, 32, k)
        w2 = w.conv2_kernel.reshape(k, self.c1, self.c2)
        h2 = np.einsum("tik,kio->to", win, w2, dtype=np.float32) + w.conv2_bias
        np.maximum(h2, 0, out=h2)
        n_out = self.n_out
        return np.ascontiguousarray(np.maximum(h2[0:n_out:2], h2[1:n_out:2])[:, None, :], dtype=np.float32)

    def run(self, x: np.ndarray, mean: np.ndarray, var: np.ndarray, buf: dict, out: np.ndarray) -> None:
        """Outputs (n, 2) of this member for the chunk ``x`` (n, 160) into ``out``."""
        n = x.shape[0]
        k, n_in, B = self.k, self.n_in, self.B

        def view(name, *shape):
            return buf[name][: math.prod(shape)].reshape(shape)

        # layer normalisation of the current column
        xn = view("xn", n, SNIPPET_LENGTH)
        inv = np.float32(1.0) / np.sqrt(var + self.eps)
        np.subtract(x, mean, out=xn)
        xn *= inv
        xn *= self.gamma
        xn += self.beta
        # conv1 at the 2 * n_in steps used, in pairs (2t, 2t + 1): im2col of the k + 1 samples from 2t
        # (pooled step, spike, tap), one product giving both steps' c1 channels
        A = view("A", n_in, n, k + 1)
        s0, s1 = xn.strides
        np.copyto(A, np.lib.stride_tricks.as_strided(xn, (n_in, n, k + 1), (2 * s1, s0, s1), writeable=False))
        c1, c2 = self.c1, self.c2
        h = view("h", 2, n_in * n, c1)
        np.matmul(A.reshape(n_in * n, k + 1), self.w1_even, out=h[0])
        np.matmul(A.reshape(n_in * n, k + 1), self.w1_odd, out=h[1])
        hp = view("hp", n_in, n, c1)
        np.maximum(h[0].reshape(n_in, n, c1), h[1].reshape(n_in, n, c1), out=hp)  # pool (2, 1)
        np.maximum(hp, self.neg_b1, out=hp)  # relu(. + b1) - b1
        # conv2 through the DFT
        H = view("H", 2 * B, n * c1)
        np.matmul(self.F, hp.reshape(n_in, n * c1), out=H)
        X = view("X", B, n, 2, c1)
        np.copyto(X, H.reshape(B, 2, n, c1).transpose(0, 2, 1, 3))
        X = X.reshape(B, n, 2 * c1)
        Yf = view("Yf", 2, B, n, c2)
        np.matmul(X, self.w_re, out=Yf[0])
        np.matmul(X, self.w_im, out=Yf[1])
        Yf[0, 0] += self.dc
        y = view("y", self.n_out, n * c2)
        np.matmul(self.G, Yf.reshape(2 * B, n * c2), out=y)
        y4 = y.reshape(self.n_pool, 2, n, c2)
        yp = view("yp", self.n_pool, n, c2)
        np.maximum(y4[:, 0], y4[:, 1], out=yp)  # pool over time (conv2 relu folded into the max below)
        np.maximum(yp, self.tmax, out=yp)  # ... and over the (time, current) columns
        # dense + sigmoid
        z = np.matmul(yp, self.wd).sum(axis=0)
        z += self.bd
        e = np.exp(-np.abs(z))
        out[:] = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class NumpyEngine:
    """Every member's output for a batch of snippets, in float32 numpy.

    Parameters
    ----------
    weights : sequence of MemberWeights
        The members (published architecture), in ensemble order.
    threads : int or None, default: None
        Threads to split the members over (None: :func:`default_threads`, read at each call).
    """

    def __init__(self, weights: Sequence[MemberWeights], threads: int | None = None):
        self.members = [_Member(w) for w in weights]
        self.threads = threads
        if not self.members:
            raise DataError("the numpy engine needs at least one member")
        self._sizes = {name: max(m.sizes[name] for m in self.members) for name in self.members[0].sizes}
        self._sizes["xn"] = SNIPPET_LENGTH

    def __len__(self) -> int:
        return len(self.members)

    def _buffers(self, n: int) -> dict:
        return {name: np.empty(size * n, dtype=np.float32) for name, size in self._sizes.items()}

    def _run_tasks(self, x, mean, var, out, tasks: list, counter, chunk: int) -> None:
        """Run ``tasks[next(counter)]`` ((chunk start, member) pairs) until none is left."""
        buf = self._buffers(min(chunk, x.shape[0]))
        while True:
            j = next(counter)
            if j >= len(tasks):
                return
            start, i = tasks[j]
            sl = slice(start, start + chunk)
            self.members[i].run(x[sl], mean[sl], var[sl], buf, out[sl, i])

    def predict_members(self, x: np.ndarray, batch_size: int = 512, threads: int | None = None) -> np.ndarray:
        """(n, n_members, 2) float32 for validated snippets ``x`` (n, 160) float32.

        ``batch_size`` bounds the spikes per pass (at most :data:`CHUNK`, the fastest on a 2-core CPU);
        ``threads`` overrides the engine's ``threads``.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, m = x.shape[0], len(self.members)
        out = np.empty((n, m, 2), dtype=np.float32)
        if n == 0:
            return out
        if int(batch_size) < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        chunk = min(int(batch_size), CHUNK)
        mean = x.mean(axis=1, keepdims=True, dtype=np.float32)
        var = np.square(x - mean).mean(axis=1, keepdims=True, dtype=np.float32)
        if threads is None:
            threads = self.threads if self.threads is not None else default_threads()
        # (chunk, member) tasks, chunk by chunk (a chunk stays in cache for all its members), taken in turn
        # by the threads: a thread slowed by other work on the machine simply takes fewer
        tasks = [(start, i) for start in range(0, n, chunk) for i in range(m)]
        counter = itertools.count()
        threads = max(1, min(int(threads), len(tasks), -(-n // 8)))  # a few spikes: not worth a thread
        if threads > 1 and not _SingleThreadedBlas.available():
            threads = 1
        if threads == 1:
            with _SingleThreadedBlas() if _SingleThreadedBlas.available() else _nothing():
                self._run_tasks(x, mean, var, out, tasks, counter, chunk)
            return out
        errors = []

        def work():
            try:
                self._run_tasks(x, mean, var, out, tasks, counter, chunk)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(exc)

        with _SingleThreadedBlas():
            workers = [threading.Thread(target=work, daemon=True) for _ in range(threads - 1)]
            for t in workers:
                t.start()
            work()
            for t in workers:
                t.join()
        if errors:
            raise errors[0]
        return out
