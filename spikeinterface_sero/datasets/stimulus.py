"""Trains of electrical-stimulation artefacts: biphasic pulses, exactly periodic and identical, for the
``stimulus_artefact`` check's tests (docs/quality.md)."""

from __future__ import annotations

import numpy as np

from ..constants import SAMPLING_FREQUENCY
from .simulator import SimulatorError

__all__ = ["simulate_stimulus_train"]


def simulate_stimulus_train(
    duration_s: float = 20.0,
    *,
    rate_hz: float = 2.0,
    phase_ms: float = 0.1,
    amplitude_pa: float = 400.0,
    noise_sd_pa: float = 3.0,
    filter_hz: float | None = None,
    cathodic_first: bool = True,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed: int = 0,
) -> np.ndarray:
    """A trace in pA of biphasic stimulus artefacts at a fixed rate, every pulse the same.

    Parameters
    ----------
    duration_s : float, default: 20.0
        Length of the trace.
    rate_hz : float, default: 2.0
        Pulses per second; the pulses are exactly periodic (the stimulator is clocked with the digitiser).
    phase_ms : float, default: 0.1
        Width of each phase (0.1 ms: a 0.2 ms biphasic pulse).
    amplitude_pa : float, default: 400.0
        Height of both phases.
    noise_sd_pa : float, default: 3.0
        White recording noise.
    filter_hz : float or None, default: None
        Corner of a 4-pole Bessel low-pass applied to pulses and noise (the amplifier's filter); None: none.
    cathodic_first : bool, default: True
        Inward (negative) phase first, as an action current; False: outward first.
    sampling_frequency : float, default: 40000.0
        Rate of the trace.
    seed : int, default: 0
        Seed of the noise.

    Returns
    -------
    np.ndarray
        (n_samples,) float32, pA.
    """
    if not (rate_hz > 0 and phase_ms > 0 and amplitude_pa > 0 and noise_sd_pa >= 0 and duration_s > 0):
        raise SimulatorError("rate_hz, phase_ms, amplitude_pa and duration_s must be > 0, noise_sd_pa >= 0.")
    n = int(round(duration_s * sampling_frequency))
    width = max(1, int(round(phase_ms * sampling_frequency / 1000.0)))
    sign = -1.0 if cathodic_first else 1.0
    pulse = np.concatenate([np.full(width, sign * amplitude_pa), np.full(width, -sign * amplitude_pa)])
    period = int(round(sampling_frequency / rate_hz))
    trace = np.zeros(n)
    for start in range(period // 4, n - pulse.size, period):
        trace[start : start + pulse.size] = pulse
    trace += np.random.default_rng(seed).normal(0.0, noise_sd_pa, n)
    if filter_hz is not None:
        from scipy.signal import bessel, sosfilt

        if not 0 < filter_hz < 0.5 * sampling_frequency:
            raise SimulatorError(f"filter_hz must lie between 0 and half the sampling rate, got {filter_hz}.")
        trace = sosfilt(bessel(4, filter_hz, btype="low", norm="mag", output="sos", fs=sampling_frequency), trace)
    return trace.astype(np.float32)
