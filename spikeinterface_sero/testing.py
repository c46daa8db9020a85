"""Fixture factories for the tests and benchmarks: one synthetic biphasic action current, the traces,
snippets and recordings built from it, and the simulator and ABF writer of :mod:`spikeinterface_sero.datasets`.

Imports only stage-0 modules and ``datasets`` (no TensorFlow), so that tests of every stage can use it.
"""

from __future__ import annotations

import numpy as np
from spikeinterface.core import NumpyRecording

from .constants import SAMPLING_FREQUENCY, SNIPPET_LENGTH
from .datasets import SimulatedRecording, simulate_dataset, simulate_drn_recording, write_abf

__all__ = [
    "biphasic_action_current",
    "synthetic_trace",
    "long_synthetic_trace",
    "synthetic_snippets",
    "labelled_synthetic_snippets",
    "numpy_recording",
    "SimulatedRecording",
    "simulate_drn_recording",
    "simulate_dataset",
    "write_abf",
]


def biphasic_action_current(
    t,
    amplitude: float = 200.0,
    width: float = 0.1,
    udi: float = 0.8,
    *,
    positive_ratio: float = 0.3,
    positive_width_factor: float = 2.5,
) -> np.ndarray:
    """The synthetic loose-seal action current: a sharp negative Gaussian phase, then a broader positive one.

    ``t``, ``width`` and ``udi`` share one time unit (ms for traces, samples for snippets); the arguments
    broadcast, so per-spike amplitudes and widths can be given as ``(n, 1)`` arrays.

    Parameters
    ----------
    t : array_like
        Times relative to the negative peak.
    amplitude : float or array_like, default: 200.0
        Depth of the negative phase (pA, a positive number).
    width : float or array_like, default: 0.1
        Standard deviation of the negative phase.
    udi : float or array_like, default: 0.8
        Upstroke-downstroke interval: the time of the positive phase's centre after the negative peak.
    positive_ratio : float or array_like, default: 0.3
        Height of the positive phase as a fraction of ``amplitude``.
    positive_width_factor : float, default: 2.5
        Standard deviation of the positive phase as a multiple of ``width``.

    Returns
    -------
    numpy.ndarray
        The current (pA) at ``t``.
    """
    negative = -amplitude * np.exp(-0.5 * (t / width) ** 2)
    positive = positive_ratio * amplitude * np.exp(-0.5 * ((t - udi) / (positive_width_factor * width)) ** 2)
    return negative + positive


def synthetic_trace(
    sampling_frequency: float = SAMPLING_FREQUENCY,
    duration_s: float = 5.0,
    spike_times_s=None,
    noise_pa: float = 2.0,
    offset_pa: float = -35.0,
    drift_pa: float = 15.0,
    seed: int = 0,
    amplitude_pa: float = 200.0,
) -> np.ndarray:
    """A cell-attached trace: offset, a slow (0.3 Hz) sinusoidal drift, white noise and biphasic spikes.

    The spikes (:func:`biphasic_action_current`, width 0.1 ms, UDI 0.8 ms) are evaluated analytically at
    the sample times, so the same trace can be made at any rate.

    Parameters
    ----------
    sampling_frequency : float, default: 40000.0
        Rate in Hz.
    duration_s : float, default: 5.0
        Length in seconds.
    spike_times_s : array_like or None, default: None
        Times of the spikes' negative peaks in seconds.
    noise_pa : float, default: 2.0
        Standard deviation of the white noise (pA); 0 for none.
    offset_pa : float, default: -35.0
        Holding current (pA).
    drift_pa : float, default: 15.0
        Amplitude of the drift (pA).
    seed : int, default: 0
        Seed of the noise.
    amplitude_pa : float, default: 200.0
        Depth of every spike's negative phase (pA).

    Returns
    -------
    numpy.ndarray
        ``(n_samples,)`` float32 trace in pA.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sampling_frequency))
    t = np.arange(n) / sampling_frequency
    x = offset_pa + drift_pa * np.sin(2 * np.pi * 0.3 * t)
    if noise_pa:
        x = x + rng.normal(0, noise_pa, n)
    if spike_times_s is not None:
        for spike_time in spike_times_s:
            lo = int(max(0, (spike_time - 0.004) * sampling_frequency))
            hi = int(min(n, (spike_time + 0.006) * sampling_frequency))
            x[lo:hi] += biphasic_action_current((t[lo:hi] - spike_time) * 1000.0, amplitude=amplitude_pa)
    return x.astype(np.float32)


def long_synthetic_trace(
    duration_s: float,
    rate_hz: float = 10 / 3,
    seed: int = 0,
    noise_pa: float = 4.0,
    chunk_s: float = 60.0,
) -> tuple[np.ndarray, int]:
    """A long 40 kHz recording of one cell, built in chunks so that only the float32 result has its size.

    Offset -30 pA, drift (two slow sines and a bounded random walk), white noise, and spikes with
    gamma-distributed intervals (CV ~0.3, 3 ms refractory), one :func:`biphasic_action_current` template
    per cell (width 0.08-0.15 ms, UDI 0.6-1.2 ms) with amplitudes 80-300 pA.

    Parameters
    ----------
    duration_s : float
        Length in seconds.
    rate_hz : float, default: 3.33
        Mean firing rate (about 2,000 spikes in 10 minutes).
    seed : int, default: 0
        Seed of everything drawn.
    noise_pa : float, default: 4.0
        Standard deviation of the white noise (pA).
    chunk_s : float, default: 60.0
        Seconds of background made at a time.

    Returns
    -------
    trace : numpy.ndarray
        ``(n_samples,)`` float32 trace in pA at 40 kHz.
    n_spikes : int
        Number of spikes drawn.
    """
    fs = SAMPLING_FREQUENCY
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    x = np.empty(n, np.float32)
    mean_isi = 1.0 / rate_hz
    shape = 1.0 / 0.3**2
    intervals = rng.gamma(shape, mean_isi / shape, int(duration_s * rate_hz * 1.5) + 10)
    times = np.cumsum(np.maximum(intervals, 0.003)) + 0.05
    times = times[times < duration_s - 0.05]
    step = int(chunk_s * fs)
    walk = 0.0
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        t = np.arange(lo, hi, dtype=np.float64) / fs
        w = walk + np.cumsum(rng.normal(0.0, 0.02, hi - lo))  # slow random walk, pA
        walk = float(w[-1])
        x[lo:hi] = (
            -30.0
            + 12.0 * np.sin(2 * np.pi * 0.05 * t)
            + 4.0 * np.sin(2 * np.pi * 0.7 * t)
            + np.clip(w, -40, 40)
            + rng.normal(0.0, noise_pa, hi - lo)
        ).astype(np.float32)
    t_ms = (np.arange(-160, 240) / fs) * 1000.0
    width, udi = rng.uniform(0.08, 0.15), rng.uniform(0.6, 1.2)
    template = biphasic_action_current(t_ms, 1.0, width, udi).astype(np.float32)
    amplitudes = rng.uniform(80.0, 300.0, times.size).astype(np.float32)
    for spike_time, amplitude in zip(times, amplitudes):
        centre = int(round(spike_time * fs))
        lo, hi = centre - 160, centre + 240
        if lo >= 0 and hi <= n:
            x[lo:hi] += amplitude * template
    return x, int(times.size)


def _snippets_of_widths(rng: np.random.Generator, width_samples: np.ndarray, noise_pa: float) -> np.ndarray:
    """Snippets whose negative phase is ``exp(-(t / w) ** 2)`` wide (w in samples), trough at index 44,
    positive phase 2.5 w later, 1.5 times as wide, of an independent height (10-60 pA)."""
    n = len(width_samples)
    t = np.arange(SNIPPET_LENGTH) - 44
    amplitude = rng.uniform(60, 250, (n, 1))
    positive = rng.uniform(10, 60, (n, 1))
    current = biphasic_action_current(
        t,
        amplitude,
        width_samples / np.sqrt(2.0),
        2.5 * width_samples,
        positive_ratio=positive / amplitude,
        positive_width_factor=1.5,
    )
    return (current + rng.normal(0, noise_pa, (n, SNIPPET_LENGTH))).astype(np.float32)


def synthetic_snippets(
    n: int, seed: int = 0, *, width_samples: tuple[float, float] = (4.0, 14.0), noise_pa: float = 5.0
) -> np.ndarray:
    """Paper-format snippets of biphasic action currents of varied width and amplitude, plus noise.

    Parameters
    ----------
    n : int
        Number of snippets.
    seed : int, default: 0
        Seed of everything drawn.
    width_samples : tuple of float, default: (4.0, 14.0)
        Range of the negative phase's width in samples (uniform).
    noise_pa : float, default: 5.0
        Standard deviation of the white noise (pA).

    Returns
    -------
    numpy.ndarray
        ``(n, 160)`` float32 snippets in pA, trough at index 44.
    """
    rng = np.random.default_rng(seed)
    return _snippets_of_widths(rng, rng.uniform(*width_samples, (n, 1)), noise_pa)


def labelled_synthetic_snippets(
    n: int,
    seed: int = 0,
    *,
    ser_width_samples: tuple[float, float] = (6.0, 12.0),
    nser_width_samples: tuple[float, float] = (2.0, 5.0),
    noise_pa: float = 5.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-class snippets: broad spikes labelled 0 (serotonergic), narrow ones labelled 1 (non-serotonergic).

    Parameters
    ----------
    n : int
        Number of snippets; each label is drawn with probability 1/2.
    seed : int, default: 0
        Seed of everything drawn.
    ser_width_samples : tuple of float, default: (6.0, 12.0)
        Width range (samples) of the serotonergic spikes, as in :func:`synthetic_snippets`.
    nser_width_samples : tuple of float, default: (2.0, 5.0)
        Width range (samples) of the non-serotonergic spikes.
    noise_pa : float, default: 5.0
        Standard deviation of the white noise (pA).

    Returns
    -------
    snippets : numpy.ndarray
        ``(n, 160)`` float32 snippets in pA.
    labels : numpy.ndarray
        ``(n,)`` int64 class indices.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    widths = np.where(labels == 0, rng.uniform(*ser_width_samples, n), rng.uniform(*nser_width_samples, n))
    return _snippets_of_widths(rng, widths[:, None], noise_pa), labels


def numpy_recording(traces, sampling_frequency: float = SAMPLING_FREQUENCY):
    """A SpikeInterface ``NumpyRecording`` in pA with a dummy probe (channels 100 µm apart).

    Parameters
    ----------
    traces : array_like or list of array_like
        One segment ``(n_samples,)`` or ``(n_samples, n_channels)``, or a list of segments.
    sampling_frequency : float, default: 40000.0
        Rate in Hz.

    Returns
    -------
    spikeinterface.core.NumpyRecording
    """
    segments = [np.asarray(trace, dtype=np.float32) for trace in (traces if isinstance(traces, list) else [traces])]
    segments = [segment[:, None] if segment.ndim == 1 else segment for segment in segments]
    n_channels = segments[0].shape[1]
    recording = NumpyRecording(segments, sampling_frequency)
    recording.set_dummy_probe_from_locations(np.c_[np.arange(n_channels) * 100.0, np.zeros(n_channels)])
    recording.set_property("physical_unit", ["pA"] * n_channels)
    return recording
