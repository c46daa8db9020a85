"""Synthetic action currents, streamed (Corradetti et al., arXiv 2407.05701).

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.synthetic").
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ..constants import DEFAULT_THRESHOLD_PA, NBEFORE, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from ..errors import TrainingError
from .data import SER, SpikeDataset

DEFAULT_N_MASKS = 600


@dataclass(frozen=True)
class Augmentation:
    """Random changes of the recording conditions applied to each synthetic sample (none by default).

    Each sample is, in this order: the smoothed spike times a gain drawn log-uniformly in ``spike_gain``;
    with probability ``filter_probability`` passed through a 4-pole Bessel low-pass (the electrode /
    amplifier filter, causal) at a cutoff drawn log-uniformly in ``filter_hz``; re-aligned so that its
    -50 pA crossing (half its peak when shallower) sits at the trigger sample again, as the detector would
    align it; plus the noise mask times a gain drawn log-uniformly in ``noise_gain`` (the SNR); plus a
    baseline: a line and a parabola over the window, each of standard deviation ``baseline_pa`` at the
    window's ends (drift), and a 50 or 60 Hz sinusoid of amplitude up to ``hum_pa`` (mains hum); and last
    shifted by up to ``time_jitter`` samples either way (the trigger found on a noisy trace).

    Parameters
    ----------
    spike_gain : tuple of float, default: (1.0, 1.0)
        Range of the spike amplitude gain (log-uniform).
    noise_gain : tuple of float, default: (1.0, 1.0)
        Range of the noise mask gain (log-uniform).
    filter_hz : tuple of float, default: (2000.0, 10000.0)
        Range of the low-pass cutoff (log-uniform; a bank of ``n_filters`` cutoffs).
    filter_probability : float, default: 0.0
        Share of the samples low-pass filtered.
    baseline_pa : float, default: 0.0
        Standard deviation of the drift line and parabola at the window's ends (pA).
    hum_pa : float, default: 0.0
        Largest mains-hum amplitude (pA).
    time_jitter : int, default: 0
        Largest shift of the trigger (samples).
    n_filters : int, default: 6
        Number of cutoffs in the filter bank.
    """

    spike_gain: tuple = (1.0, 1.0)
    noise_gain: tuple = (1.0, 1.0)
    filter_hz: tuple = (2000.0, 10000.0)
    filter_probability: float = 0.0
    baseline_pa: float = 0.0
    hum_pa: float = 0.0
    time_jitter: int = 0
    n_filters: int = 6

    def __post_init__(self):
        for name in ("spike_gain", "noise_gain", "filter_hz"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 2 or not 0 < value[0] <= value[1] or not all(map(math.isfinite, value)):
                raise TrainingError(
                    f"augmentation {name} must be a range (low, high) with 0 < low <= high, got {value}"
                )
            object.__setattr__(self, name, value)
        if self.filter_hz[1] >= 0.5 * SAMPLING_FREQUENCY:
            raise TrainingError(f"augmentation filter_hz must stay below {0.5 * SAMPLING_FREQUENCY:g} Hz")
        if not 0.0 <= float(self.filter_probability) <= 1.0:
            raise TrainingError(f"augmentation filter_probability must lie in [0, 1], got {self.filter_probability}")
        for name in ("baseline_pa", "hum_pa", "time_jitter", "n_filters"):
            if not getattr(self, name) >= 0:
                raise TrainingError(f"augmentation {name} must be >= 0, got {getattr(self, name)}")

    @property
    def active(self) -> bool:
        """False when it changes nothing."""
        return self != Augmentation(filter_hz=self.filter_hz, n_filters=self.n_filters)

    def to_dict(self) -> dict:
        """JSON-able parameters."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def apply(self, spikes: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``spikes`` (n, 160) smoothed spikes and ``masks`` (n, 160) their noise masks -> (n, 160) float32."""
        n = len(spikes)
        x = np.asarray(spikes, dtype=np.float64)
        if self.spike_gain != (1.0, 1.0):
            x = x * _log_uniform(rng, self.spike_gain, n)[:, None]
        if self.filter_probability > 0:
            x = self._filter(x, rng)
        if self.spike_gain != (1.0, 1.0) or self.filter_probability > 0:
            x = realign(x)
        noise = np.asarray(masks, dtype=np.float64)
        if self.noise_gain != (1.0, 1.0):
            noise = noise * _log_uniform(rng, self.noise_gain, n)[:, None]
        x = x + noise
        t = np.linspace(-1.0, 1.0, SNIPPET_LENGTH)
        if self.baseline_pa > 0:
            line, parabola = rng.standard_normal((2, n, 1)) * self.baseline_pa
            x = x + line * t + parabola * (t**2 - 1.0 / 3.0)
        if self.hum_pa > 0:
            seconds = np.arange(SNIPPET_LENGTH) / SAMPLING_FREQUENCY
            frequency = np.where(rng.random((n, 1)) < 0.5, 50.0, 60.0)
            amplitude = rng.uniform(0.0, self.hum_pa, (n, 1))
            x = x + amplitude * np.sin(2 * np.pi * frequency * seconds + rng.uniform(0, 2 * np.pi, (n, 1)))
        if self.time_jitter > 0:
            shift = rng.integers(-int(self.time_jitter), int(self.time_jitter) + 1, n)
            columns = np.clip(np.arange(SNIPPET_LENGTH)[None, :] + shift[:, None], 0, SNIPPET_LENGTH - 1)
            x = np.take_along_axis(x, columns, axis=1)
        return x.astype(np.float32)

    def _filter(self, x, rng):
        from scipy.signal import bessel, sosfilt, sosfilt_zi

        cutoffs = np.geomspace(self.filter_hz[0], self.filter_hz[1], max(1, int(self.n_filters)))
        choice = np.where(rng.random(len(x)) < self.filter_probability, rng.integers(0, len(cutoffs), len(x)), -1)
        out = x.copy()
        for index in np.unique(choice[choice >= 0]):
            rows = np.flatnonzero(choice == index)
            sos = bessel(4, cutoffs[index], btype="low", norm="mag", output="sos", fs=SAMPLING_FREQUENCY)
            zi = sosfilt_zi(sos)[:, None, :] * x[rows, 0][None, :, None]  # settled on the first sample
            out[rows], _ = sosfilt(sos, x[rows], axis=1, zi=zi)
        return out


def _log_uniform(rng, bounds, n):
    low, high = bounds
    return np.exp(rng.uniform(np.log(low), np.log(high), n))


def realign(x, threshold: float = DEFAULT_THRESHOLD_PA) -> np.ndarray:
    """Shift each snippet so that its first crossing of ``threshold`` below its baseline (the median of its
    first 20 samples), or of half its trough when shallower, sits at the trigger sample (edge values
    repeated)."""
    x = np.asarray(x, dtype=np.float64)
    relative = x - np.median(x[:, :20], axis=1, keepdims=True)
    depth = relative[:, 20:].min(axis=1)
    level = np.where(depth <= threshold, threshold, 0.5 * depth)
    crossing = 20 + np.argmax(relative[:, 20:] <= level[:, None], axis=1)
    columns = np.clip(np.arange(x.shape[1])[None, :] + (crossing - NBEFORE)[:, None], 0, x.shape[1] - 1)
    return np.take_along_axis(x, columns, axis=1)


def smooth3(X) -> np.ndarray:
    """3-point centred moving mean along the last axis; the first and last samples are the mean of the
    two available points (``pandas.Series.rolling(3, center=True, min_periods=1).mean()``). float32."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty_like(X)
    out[..., 1:-1] = (X[..., :-2] + X[..., 1:-1] + X[..., 2:]) / 3.0
    out[..., 0] = (X[..., 0] + X[..., 1]) / 2.0
    out[..., -1] = (X[..., -2] + X[..., -1]) / 2.0
    return out.astype(np.float32)


def residual_masks(X) -> np.ndarray:
    """Fallback noise masks: ``raw - smooth3(raw)`` of snippets, each minus its mean (float32)."""
    X = np.asarray(X, dtype=np.float32)
    residuals = X.astype(np.float64) - smooth3(X)
    return (residuals - residuals.mean(axis=-1, keepdims=True)).astype(np.float32)


def _round_robin(groups: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` items taken in turn from each group (groups and items shuffled)."""
    order = {}
    for group in rng.permutation(np.unique(groups)):
        order[group] = list(rng.permutation(np.flatnonzero(groups == group)))
    out = []
    while len(out) < n and any(order.values()):
        for group in list(order):
            if order[group]:
                out.append(order[group].pop())
                if len(out) >= n:
                    break
    return np.asarray(out, dtype=np.int64)


def choose_masks(
    dataset: SpikeDataset, n_masks: int = DEFAULT_N_MASKS, *, seed: int = 0, source: str = "auto"
) -> tuple[np.ndarray, dict]:
    """The noise masks for a training set: ``n_masks`` (at most what is available) drawn round-robin
    across cells from the dataset's spike-free noise pool (``source="recording"``), or residuals of the
    snippets (``source="residual"``; ``"auto"`` uses them only when the dataset has no noise pool, and
    warns). Returns (masks (m, 160) float32, info dict)."""
    rng = np.random.default_rng([seed, 7])
    if n_masks < 1:
        raise TrainingError(f"n_masks must be >= 1, got {n_masks}")
    have_pool = dataset.noise is not None and len(dataset.noise) > 0
    if source not in ("auto", "recording", "residual"):
        raise TrainingError(f"noise source must be 'auto', 'recording' or 'residual', got {source!r}")
    if source == "recording" and not have_pool:
        raise TrainingError(
            "the dataset holds no spike-free noise stretches (no recording traces): "
            "use source='residual' or build the dataset from recordings"
        )
    if source in ("auto", "recording") and have_pool:
        indices = _round_robin(dataset.noise_cell, n_masks, rng)
        masks = dataset.noise[indices]
        kind = dataset.source.get("noise_source", "recording")
        kind = "recording" if kind in ("none", "mixed") else kind
        info = {
            "source": kind,
            "description": "spike-free stretches of the training recordings, mean-subtracted",
            "n_masks": int(len(masks)),
            "n_cells": int(len(np.unique(dataset.noise_cell[indices]))),
        }
    else:
        if source == "auto":
            warnings.warn(
                "no recording traces available: noise masks are the residuals raw - smoothed (3-point mean) "
                "of training snippets, which hold only the high-frequency part of the noise. Build the "
                "dataset from ABF recordings (dataset_from_table) for spike-free noise stretches.",
                UserWarning,
                stacklevel=2,
            )
        if not len(dataset):
            raise TrainingError("no snippets to take residual noise masks from")
        indices = _round_robin(dataset.cell, n_masks, rng)
        masks = residual_masks(dataset.X[indices])
        info = {
            "source": "residual",
            "description": "raw - smoothed (3-point mean) of training snippets, "
            "mean-subtracted (no recording traces were available)",
            "n_masks": int(len(masks)),
            "n_cells": int(len(np.unique(dataset.cell[indices]))),
        }
    if not len(masks):
        raise TrainingError("no noise masks could be cut from the training data")
    return np.ascontiguousarray(masks, dtype=np.float32), info


class SyntheticGenerator:
    """Vectorised synthetic spikes: smoothed real spike + random noise mask, classes balanced.

    ``smoothed`` (n, 160) float32 (already smoothed spikes), ``y`` (n,) 0/1, ``masks`` (m, 160) float32.
    """

    def __init__(self, smoothed, y, masks, *, seed: int = 0, augmentation: Augmentation | None = None):
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.smoothed = np.ascontiguousarray(smoothed, dtype=np.float32)
        self.masks = np.ascontiguousarray(masks, dtype=np.float32)
        y = np.asarray(y, dtype=np.int64)
        if self.smoothed.ndim != 2 or self.smoothed.shape[1] != SNIPPET_LENGTH:
            raise TrainingError(f"spikes must have shape (n, {SNIPPET_LENGTH}), got {self.smoothed.shape}")
        if self.masks.ndim != 2 or self.masks.shape[1] != SNIPPET_LENGTH or not len(self.masks):
            raise TrainingError(f"masks must have shape (m >= 1, {SNIPPET_LENGTH}), got {self.masks.shape}")
        self.class_index = [np.flatnonzero(y == c) for c in (0, 1)]
        if min(len(c) for c in self.class_index) == 0:
            raise TrainingError("synthetic data need training spikes of both classes")
        self.seed = int(seed)
        self.info: dict = {}

    @classmethod
    def from_dataset(
        cls,
        dataset: SpikeDataset,
        *,
        n_masks: int = DEFAULT_N_MASKS,
        seed: int = 0,
        noise: str = "auto",
        augmentation: Augmentation | None = None,
        extra_masks=None,
    ) -> SyntheticGenerator:
        """Smooth the dataset's spikes and choose its noise masks (see :func:`choose_masks`); ``extra_masks``
        (m, 160) pA, spike-free stretches of other recordings (other days, unlabelled), join the pool
        (each mean-subtracted); ``augmentation`` changes every sample (see :class:`Augmentation`)."""
        masks, info = choose_masks(dataset, n_masks, seed=seed, source=noise)
        if extra_masks is not None and len(extra_masks):
            extra = np.asarray(extra_masks, dtype=np.float64).reshape(-1, SNIPPET_LENGTH)
            if not np.all(np.isfinite(extra)):
                raise TrainingError("extra noise masks contain NaN or inf values")
            masks = np.concatenate([masks, (extra - extra.mean(axis=1, keepdims=True)).astype(np.float32)])
            info = dict(info, n_masks=int(len(masks)), n_extra_masks=int(len(extra)))
        generator = cls(smooth3(dataset.X), dataset.y, masks, seed=seed, augmentation=augmentation)
        generator.info = {
            "smoothing": "3-point centred moving mean",
            "augmentation": generator.augmentation.to_dict() if generator.augmentation is not None else None,
            "masks": info,
            "n_spikes": {
                "serotonergic": int(len(generator.class_index[0])),
                "non_serotonergic": int(len(generator.class_index[1])),
            },
        }
        return generator

    def sample(self, n: int, rng: np.random.Generator, out: np.ndarray | None = None):
        """``n`` synthetic spikes from ``rng``: returns (X (n, 160) float32, y (n,) int64, spike index,
        mask index), with X[i] = smoothed[spike[i]] + masks[mask[i]] and classes alternating (exactly
        balanced; for odd n the extra one's class is random). Spikes are uniform within their class, masks
        uniform; one call to the random generator per batch."""
        ser_indices, nser_indices = self.class_index
        uniforms = rng.random(2 * n + 1)
        first = int(uniforms[-1] < 0.5) if n % 2 else 0
        y = np.empty(n, dtype=np.int64)
        y[0::2] = first
        y[1::2] = 1 - first
        first_class, second_class = (ser_indices, nser_indices) if first == SER else (nser_indices, ser_indices)
        spike = np.empty(n, dtype=np.int64)
        spike[0::2] = first_class[(uniforms[0:n:2] * len(first_class)).astype(np.int64)]
        spike[1::2] = second_class[(uniforms[1:n:2] * len(second_class)).astype(np.int64)]
        mask = (uniforms[n : 2 * n] * len(self.masks)).astype(np.int64)
        if out is None:
            out = np.empty((n, SNIPPET_LENGTH), dtype=np.float32)
        step = 2048  # gather + add in cache-sized blocks
        for start in range(0, n, step):
            end = min(n, start + step)
            np.take(self.smoothed, spike[start:end], axis=0, out=out[start:end])
            if self.augmentation is not None:
                masks = np.take(self.masks, mask[start:end], axis=0)
                out[start:end] = self.augmentation.apply(out[start:end], masks, rng)
            else:
                out[start:end] += np.take(self.masks, mask[start:end], axis=0)
        return out, y, spike, mask

    def batch(self, epoch: int, index: int, n: int):
        """The deterministic batch ``index`` of ``epoch`` (a pure function of seed, epoch and index)."""
        return self.sample(n, np.random.default_rng([self.seed, int(epoch), int(index)]))

    def generate(self, n: int, *, seed: int | None = None, chunk: int = 1 << 16):
        """``n`` synthetic spikes (X, y) in one array (for inspection or a fixed synthetic set)."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        X = np.empty((n, SNIPPET_LENGTH), dtype=np.float32)
        y = np.empty(n, dtype=np.int64)
        for start in range(0, n, chunk):
            end = min(n, start + chunk)
            _, y[start:end], _, _ = self.sample(end - start, rng, out=X[start:end])
        return X, y


def epoch_plan(n_real: int, n_synthetic: int, batch_size: int) -> tuple[int, np.ndarray, np.ndarray]:
    """How an epoch of ``n_real`` real and ``n_synthetic`` synthetic samples is cut into batches of at
    most ``batch_size`` (about ``batch_size``): returns (n_batches, real per batch, synthetic per batch),
    both spread evenly over the batches and summing to ``n_real`` and ``n_synthetic``."""
    total = n_real + n_synthetic
    if total <= 0:
        raise TrainingError("an epoch needs at least one sample")
    n_batches = max(1, math.ceil(total / batch_size))
    batch_numbers = np.arange(n_batches + 1, dtype=np.int64)
    real_edges = batch_numbers * n_real // n_batches
    synthetic_edges = batch_numbers * n_synthetic // n_batches
    return n_batches, np.diff(real_edges), np.diff(synthetic_edges)


def make_training_stream(
    X_real,
    y_real,
    *,
    generator: SyntheticGenerator | None = None,
    n_synthetic: int = 0,
    batch_size: int = 64,
    seed: int = 0,
    to_input=None,
    output_names=None,
    shuffle: bool = True,
    **pydataset_kwargs,
):
    """A ``keras.utils.PyDataset`` over the real spikes (shuffled each epoch) plus ``n_synthetic`` streamed
    synthetic spikes per epoch, spread evenly over the batches. Batch ``i`` of epoch ``e`` depends only on
    (seed, e, i). ``to_input`` maps (b, 160) pA to the model input (default: identity); ``output_names``
    turns targets into a dict ``{name: onehot}`` for a multi-output model (default: the (b, 2) one-hot
    array)."""
    import keras

    X_real = np.ascontiguousarray(X_real, dtype=np.float32).reshape(-1, SNIPPET_LENGTH)
    y_real = np.asarray(y_real, dtype=np.int64)
    if n_synthetic and generator is None:
        raise TrainingError("n_synthetic > 0 needs a SyntheticGenerator")
    onehot_rows = np.eye(2, dtype=np.float32)
    names = list(output_names) if output_names is not None else None
    identity = lambda a: a  # noqa: E731

    class SyntheticStream(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(**pydataset_kwargs)
            self.epoch = 0
            self.n_batches, self.real_per, self.synthetic_per = epoch_plan(len(X_real), int(n_synthetic), batch_size)
            self.real_start = np.concatenate([[0], np.cumsum(self.real_per)])
            self._order_epoch = -1
            self._order = None

        def __len__(self):
            return int(self.n_batches)

        def _real_order(self):
            if self._order_epoch != self.epoch:
                if shuffle:
                    rng = np.random.default_rng([seed, self.epoch, 1 << 20])
                    self._order = rng.permutation(len(X_real))
                else:
                    self._order = np.arange(len(X_real))
                self._order_epoch = self.epoch
            return self._order

        def get_batch(self, index: int, epoch: int | None = None):
            """(x, y onehot, is_synthetic) of batch ``index``."""
            if epoch is not None and epoch != self.epoch:
                self.epoch = int(epoch)
            indices = self._real_order()[self.real_start[index] : self.real_start[index + 1]]
            x_real_batch, y_real_batch = X_real[indices], y_real[indices]
            n_synthetic_batch = int(self.synthetic_per[index])
            if n_synthetic_batch:
                x_synthetic, y_synthetic, _, _ = generator.batch(self.epoch, index, n_synthetic_batch)
                x = np.concatenate([x_real_batch, x_synthetic])
                y = np.concatenate([y_real_batch, y_synthetic])
            else:
                x, y = x_real_batch, y_real_batch
            is_synthetic = np.zeros(len(x), dtype=bool)
            is_synthetic[len(x_real_batch) :] = True
            return x, onehot_rows[y], is_synthetic

        def __getitem__(self, index):
            x, target, _ = self.get_batch(int(index))
            x = (to_input or identity)(x)
            if names is not None:
                return x, {name: target for name in names}
            return x, target

        def on_epoch_end(self):
            self.epoch += 1

    return SyntheticStream()
