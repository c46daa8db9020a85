"""Recordings that are not loose-seal action currents, for the quality checks' tests and benchmark.

Each kind crosses the −50 pA trigger, so the detector finds "spikes" in it; none is an action current.
"""

from __future__ import annotations

import numpy as np

from ..constants import SAMPLING_FREQUENCY
from ..errors import TrainingError
from .simulator import simulate_drn_recording

__all__ = ["ARTEFACT_KINDS", "simulate_artefact"]

#: the kinds :func:`simulate_artefact` makes
ARTEFACT_KINDS = (
    "current_steps",
    "membrane_test",
    "mains_hum",
    "inverted_intracellular_aps",
    "noise_bursts",
    "clipped_spikes",
    "monophasic_events",
    "white_noise",
)


def _exp_kernel(t_ms: np.ndarray, tau_ms: float) -> np.ndarray:
    return np.where(t_ms >= 0, np.exp(-np.maximum(t_ms, 0) / tau_ms), 0.0)


def simulate_artefact(
    kind: str, duration_s: float = 20.0, seed: int = 0, sampling_frequency: float = SAMPLING_FREQUENCY
) -> np.ndarray:
    """A trace in pA of one artefact kind (float32, ``duration_s`` at ``sampling_frequency``).

    Parameters
    ----------
    kind : str
        One of :data:`ARTEFACT_KINDS`: ``current_steps`` (2 nA command steps, 200 ms, at 2 Hz);
        ``membrane_test`` (capacitive transients of a ±5 mV seal test at 18.8 Hz); ``mains_hum`` (150 pA of
        50 Hz and harmonics); ``inverted_intracellular_aps`` (current-clamp action potentials recorded as if
        they were pA: 1 ms, 80 "pA" spikes with a 30 ms after-hyperpolarisation, inverted);
        ``noise_bursts`` (bursts of 60 pA noise); ``clipped_spikes`` (a simulated serotonergic cell whose
        inward peaks saturate at −60 pA); ``monophasic_events`` (fast inward events with an exponential
        decay and no outward phase, e.g. synaptic currents); ``white_noise`` (40 pA white noise).
    duration_s : float, default: 20.0
        Length of the trace.
    seed : int, default: 0
        Seed of the random parts.
    sampling_frequency : float, default: 40000.0
        Rate of the trace.

    Returns
    -------
    np.ndarray
        (n_samples,) float32, pA.
    """
    if kind not in ARTEFACT_KINDS:
        raise TrainingError(f"kind must be one of {', '.join(ARTEFACT_KINDS)}, not {kind!r}.")
    rng = np.random.default_rng(seed)
    sampling_frequency_hz = float(sampling_frequency)
    n = int(round(duration_s * sampling_frequency_hz))
    t = np.arange(n) / sampling_frequency_hz
    noise = rng.normal(0.0, 3.0, n)
    if kind == "current_steps":
        step = ((t % 0.5) >= 0.1) & ((t % 0.5) < 0.3)
        trace = -2000.0 * step + noise
    elif kind == "membrane_test":
        period = 1.0 / 18.8
        phase = t % period
        on = _exp_kernel((phase - 0.0) * 1000.0, 0.3) * (phase < period / 2)
        off = _exp_kernel((phase - period / 2) * 1000.0, 0.3) * (phase >= period / 2)
        trace = -400.0 * on + 400.0 * off + noise
    elif kind == "mains_hum":
        trace = sum(a * np.sin(2 * np.pi * 50.0 * h * t + rng.uniform(0, 2 * np.pi)) for h, a in ((1, 150), (3, 30)))
        trace = trace + noise
    elif kind == "inverted_intracellular_aps":
        trace = noise.copy()
        for start in np.cumsum(rng.exponential(0.25, int(duration_s * 8))):
            if start >= duration_s - 0.05:
                break
            lag = (t - start) * 1000.0
            window = (lag >= 0) & (lag < 60)
            spike = 80.0 * np.exp(-0.5 * (lag[window] / 0.25) ** 2)
            ahp = -12.0 * (1 - np.exp(-lag[window] / 1.0)) * np.exp(-lag[window] / 30.0)
            trace[window] -= spike + ahp  # inverted: the upstroke points down, the AHP up and slow
    elif kind == "noise_bursts":
        trace = noise.copy()
        for start in rng.uniform(0, duration_s - 0.2, int(duration_s * 2)):
            burst = (t >= start) & (t < start + 0.1)
            trace[burst] += rng.normal(0.0, 60.0, int(burst.sum()))
    elif kind == "clipped_spikes":
        simulated = simulate_drn_recording(
            "serotonergic",
            duration_s=duration_s,
            sampling_frequency=sampling_frequency_hz,
            seed=seed,
            amplitude_pa=300.0,
        )
        baseline = np.median(simulated.traces)
        trace = np.maximum(simulated.traces - baseline, -60.0) + baseline  # the amplifier's range ends at -60 pA
    elif kind == "monophasic_events":
        trace = noise.copy()
        for start in np.cumsum(rng.exponential(0.2, int(duration_s * 10))):
            if start >= duration_s - 0.05:
                break
            lag = (t - start) * 1000.0
            window = (lag >= 0) & (lag < 40)
            trace[window] -= 150.0 * (1 - np.exp(-lag[window] / 0.1)) * np.exp(-lag[window] / 5.0)
    else:  # white_noise
        trace = rng.normal(0.0, 40.0, n)
    return np.asarray(trace, dtype=np.float32)
