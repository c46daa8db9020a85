"""Simulated loose-seal failures: a healthy recording that, from an onset time on, loses its seal, breaks
into whole-cell, picks up a second cell or drifts. What each looks like and why: docs/simulator.md
("Seal failures")."""

from __future__ import annotations

import numpy as np

from ..constants import SAMPLING_FREQUENCY
from .simulator import SimulatedRecording, SimulatorError, draw_cell_params, simulate_drn_recording

__all__ = ["SEAL_FAILURES", "simulate_seal_failure"]

#: the failures :func:`simulate_seal_failure` makes ("healthy": none)
SEAL_FAILURES = ("healthy", "seal_loss", "break_in", "second_cell", "drift")
_QUIET = dict(noise_sd_pa=0.0, drift_pa=0.0, hum_pa=0.0, holding_pa=0.0, overlap_fraction=0.0)
_SEAL_LOSS_FLOOR = 0.25  # the action current falls to a quarter of its size ...
_SEAL_LOSS_TAU_S = 8.0  # ... with this time constant
_BREAK_IN_SCALE = dict(amplitude_pa=4.0, rise_ms=2.0, fall_ms=2.5, pos_ratio=0.3)
_BREAK_IN_HOLDING_PA = -250.0  # the holding current jumps when the patch opens
_SECOND_CELL_SCALE = 2.5  # the newcomer's action currents are this many times larger
_DRIFT_PA_PER_S = -6.0


def _spikes_only(cell_type, duration_s, fs, rng, params, **changes):
    return simulate_drn_recording(cell_type, duration_s, fs, seed=rng, **{**params, **_QUIET, **changes})


def simulate_seal_failure(
    kind: str,
    cell_type: str = "serotonergic",
    duration_s: float = 120.0,
    onset_s: float = 60.0,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed=None,
) -> SimulatedRecording:
    """One cell's gap-free recording whose seal fails at ``onset_s`` in the way ``kind`` names.

    Parameters
    ----------
    kind : str
        One of :data:`SEAL_FAILURES`.
    cell_type : str, default: "serotonergic"
        The recorded cell (as :func:`~.simulator.simulate_drn_recording`).
    duration_s, onset_s : float, default: 120.0, 60.0
        Length of the recording and when the failure starts (s).
    sampling_frequency : float, default: 40000.0
        Hz.
    seed : int, numpy Generator or None, default: None
        The same seed gives the same recording.

    Returns
    -------
    SimulatedRecording
        ``spike_samples``/``peak_samples`` are the recorded cell's spikes (the newcomer's are not);
        ``params`` adds ``seal_event`` and ``seal_onset_s``.
    """
    if kind not in SEAL_FAILURES:
        raise SimulatorError(f"kind must be one of {', '.join(SEAL_FAILURES)}, not {kind!r}.")
    if not (0 < onset_s < duration_s):
        raise SimulatorError(f"onset_s must lie inside the recording (0, {duration_s}), not {onset_s!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    params = draw_cell_params(cell_type, sampling_frequency, seed=rng)
    cell = _spikes_only(cell_type, duration_s, sampling_frequency, rng, params)
    background = simulate_drn_recording(
        cell_type, duration_s, sampling_frequency, seed=rng, **{**params, "firing_rate_hz": 0.0}
    )
    t = np.arange(cell.traces.size) / sampling_frequency
    after = t >= onset_s
    spikes = cell.traces.astype(np.float64)
    noise = background.traces.astype(np.float64)
    if kind == "seal_loss":
        envelope = _SEAL_LOSS_FLOOR + (1 - _SEAL_LOSS_FLOOR) * np.exp(-np.clip(t - onset_s, 0, None) / _SEAL_LOSS_TAU_S)
        spikes = spikes * np.where(after, envelope, 1.0)
    elif kind == "break_in":
        changed = {name: params[name] * factor for name, factor in _BREAK_IN_SCALE.items()}
        whole_cell = _spikes_only(cell_type, duration_s, sampling_frequency, rng, params, **changed)
        spikes = np.where(after, whole_cell.traces + _BREAK_IN_HOLDING_PA, spikes)
        noise = noise + np.where(after, noise - params["holding_pa"], 0.0)  # twice the noise through the opened patch
    elif kind == "second_cell":
        other = "non_serotonergic" if cell_type != "non_serotonergic" else "serotonergic"
        newcomer = draw_cell_params(other, sampling_frequency, seed=rng)
        newcomer["amplitude_pa"] = params["amplitude_pa"] * _SECOND_CELL_SCALE
        spikes = spikes + np.where(
            after, _spikes_only(other, duration_s, sampling_frequency, rng, newcomer).traces, 0.0
        )
    elif kind == "drift":
        noise = noise + np.where(after, _DRIFT_PA_PER_S * (t - onset_s), 0.0)
    params.update(seal_event=kind, seal_onset_s=float(onset_s))
    return SimulatedRecording(
        traces=(spikes + noise).astype(np.float32),
        sampling_frequency=float(sampling_frequency),
        spike_samples=cell.spike_samples,
        peak_samples=cell.peak_samples,
        cell_type=cell.cell_type,
        label=cell.label,
        params=params,
    )
