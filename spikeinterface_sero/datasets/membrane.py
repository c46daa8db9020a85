"""A second simulator family ("another rig"): action currents as the membrane current of a Hodgkin-Huxley
type two-compartment neuron, with its own firing, noise and electrode filter.

The model, its parameters and how its classes differ from ``simulator.py`` are in ``docs/simulator.md``
(section 2.6 "A second family: the membrane simulator").
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import DEFAULT_THRESHOLD_PA, SAMPLING_FREQUENCY
from .simulator import CELL_TYPES, SimulatedRecording, SimulatorError, _cell_type, _seed_sequence

__all__ = [
    "MEMBRANE_DAYS",
    "draw_membrane_params",
    "membrane_action_current",
    "membrane_spike_waveform",
    "simulate_membrane_recording",
    "simulate_membrane_dataset",
]

_LABEL_OF = {
    "serotonergic": "serotonergic",
    "atypical_serotonergic": "serotonergic",
    "non_serotonergic": "non_serotonergic",
}
_DT_MS = 0.0025  # integration step of the membrane (400 kHz)
_TEMPLATE_MS = 12.0  # length of the integrated action potential
_DRIVE_MS = 1.5  # centre of the smooth axial drive that starts the action potential
_WINDOW_BEFORE_MS = 1.5  # rendered window around each spike's inward peak
_WINDOW_AFTER_MS = 8.0

#: what a day of the membrane rig sets (each cell of the day gets it times U(0.9, 1.1)); docs/simulator.md
MEMBRANE_DAYS: dict[str, tuple[float, float]] = {
    "temperature_factor": (0.9, 1.15),  # the bath's temperature: every gate faster or slower together
    "filter_hz": (4000.0, 7000.0),  # the 8-pole Bessel low-pass of this rig
    "pink_sd_pa": (2.0, 8.0),
    "white_sd_pa": (0.5, 2.5),
    "hum_pa": (1.0, 12.0),
    "amplitude_scale": (0.7, 1.6),
}


# ------------------------------------------------------------------------------------------ parameters
def _firing(rng, cell_type):
    """Rate (Hz) and ISI coefficient of variation: SER pacemakers, NSER irregular; atypical SER fire like NSER."""
    if cell_type == "serotonergic":
        return float(rng.uniform(0.5, 2.5)), float(rng.uniform(0.1, 0.35))
    return float(np.exp(rng.uniform(np.log(2.5), np.log(12.0)))), float(rng.uniform(0.45, 1.1))


def _membrane(rng, cell_type):
    """Gate speeds (relative to Hodgkin-Huxley at 6.3 °C), calcium and axial conductances of one cell type."""
    u = rng.uniform
    if cell_type == "serotonergic":  # a large calcium current: the outward tail ends early
        return dict(sodium_speed=u(1.3, 2.0), potassium_speed=u(0.8, 1.3), calcium=u(4.0, 8.0), axial=u(0.3, 0.7))
    if cell_type == "atypical_serotonergic":  # a smaller calcium current, nearer the boundary
        return dict(sodium_speed=u(1.3, 2.0), potassium_speed=u(0.8, 1.3), calcium=u(2.5, 4.0), axial=u(0.3, 0.7))
    return dict(sodium_speed=u(1.3, 2.0), potassium_speed=u(0.8, 1.6), calcium=u(0.0, 1.0), axial=u(0.3, 0.7))


def draw_membrane_params(cell_type: str = "serotonergic", seed=None, **overrides) -> dict[str, Any]:
    """Draw the parameters of one cell of the membrane rig; ``overrides`` replace drawn values.

    Parameters
    ----------
    cell_type : str, default: "serotonergic"
        "serotonergic", "atypical_serotonergic" or "non_serotonergic" (aliases as in ``simulate_drn_recording``).
    seed : int, numpy Generator or None, default: None
        Seed of the draw.
    **overrides
        Any drawn parameter (see :func:`simulate_membrane_recording`).

    Returns
    -------
    dict
        The parameters.
    """
    canonical = _cell_type(cell_type)
    rng = np.random.default_rng(seed)
    rate, cv = _firing(rng, canonical)
    params: dict[str, Any] = dict(firing_rate_hz=rate, cv_isi=cv, refractory_ms=4.0)
    params.update(_membrane(rng, canonical))
    params.update(
        amplitude_pa=float(np.exp(rng.uniform(np.log(100.0), np.log(500.0)))),
        amplitude_jitter=0.08,
        time_jitter=0.04,
        temperature_factor=1.0,
        filter_hz=5500.0,
        pink_sd_pa=float(rng.uniform(2.0, 8.0)),
        white_sd_pa=float(rng.uniform(0.5, 2.5)),
        hum_pa=float(rng.uniform(1.0, 12.0)),
        hum_hz=50.0,
        holding_pa=float(rng.uniform(-60.0, 60.0)),
        amplitude_scale=1.0,
    )
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise SimulatorError(f"unknown membrane parameter(s) {unknown}; valid names are: {', '.join(sorted(params))}.")
    params.update({k: float(v) for k, v in overrides.items()})
    _check(params)
    return params


def _check(p):
    positive = ("firing_rate_hz", "cv_isi", "sodium_speed", "potassium_speed", "amplitude_pa", "temperature_factor")
    for name in positive + ("filter_hz", "hum_hz", "amplitude_scale"):
        if not p[name] > 0:
            raise SimulatorError(f"{name} must be > 0, got {p[name]}.")
    for name in ("calcium", "axial", "amplitude_jitter", "time_jitter", "pink_sd_pa", "white_sd_pa", "hum_pa"):
        if not p[name] >= 0:
            raise SimulatorError(f"{name} must be >= 0, got {p[name]}.")
    if 1000.0 / p["firing_rate_hz"] <= p["refractory_ms"]:
        raise SimulatorError(f"firing_rate_hz={p['firing_rate_hz']} leaves no room for refractory_ms.")


# ------------------------------------------------------------------------------------------ the membrane
def _rates(v):
    """Hodgkin-Huxley (1952) opening and closing rates (1/ms) at ``v`` mV (rest -65 mV)."""
    x = v + 65.0
    alpha_m = 0.1 * (25.0 - x) / math.expm1((25.0 - x) / 10.0) if abs(25.0 - x) > 1e-7 else 1.0
    alpha_n = 0.01 * (10.0 - x) / math.expm1((10.0 - x) / 10.0) if abs(10.0 - x) > 1e-7 else 0.1
    return (
        alpha_m,
        4.0 * math.exp(-x / 18.0),
        0.07 * math.exp(-x / 20.0),
        1.0 / (math.exp((30.0 - x) / 10.0) + 1.0),
        alpha_n,
        0.125 * math.exp(-x / 80.0),
    )


def _action_potential(p) -> np.ndarray:
    """Somatic and dendritic potential (mV) of one action potential, forward Euler at ``_DT_MS``."""
    sodium = p["sodium_speed"] * p["temperature_factor"]
    potassium = p["potassium_speed"] * p["temperature_factor"]
    v, dendrite, m, h, n, s = -65.0, -65.0, 0.053, 0.596, 0.318, 0.0
    steps = int(round(_TEMPLATE_MS / _DT_MS))
    soma = np.empty(steps)
    dend = np.empty(steps)
    for i in range(steps):
        drive = 60.0 * math.exp(-0.5 * ((i * _DT_MS - _DRIVE_MS) / 0.15) ** 2)  # axon initial segment
        alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _rates(v)
        m += _DT_MS * sodium * (alpha_m * (1.0 - m) - beta_m * m)
        h += _DT_MS * sodium * (alpha_h * (1.0 - h) - beta_h * h)
        n += _DT_MS * potassium * (alpha_n * (1.0 - n) - beta_n * n)
        s += _DT_MS * (1.0 / (1.0 + math.exp(-(v + 25.0) / 5.0)) - s) / (1.2 / p["temperature_factor"])
        ionic = 120.0 * m**3 * h * (v - 50.0) + 36.0 * n**4 * (v + 77.0) + 0.3 * (v + 54.4)
        ionic += p["calcium"] * s * (v - 120.0)
        axial = p["axial"] * (v - dendrite)
        v += _DT_MS * (drive - ionic - axial)
        dendrite += _DT_MS * (axial / 3.0 - 0.1 * (dendrite + 65.0))  # a larger, passive compartment
        soma[i] = v
        dend[i] = dendrite
    return np.stack([soma, dend])


def membrane_action_current(params: dict) -> tuple[np.ndarray, np.ndarray]:
    """The noise-free action current of a cell of the membrane rig, before the electrode filter.

    The patch under a loose seal passes the membrane's capacitive current, and the axial current to the
    dendrite: ``-(dV/dt + axial (V - V_dendrite))``. Normalised so that its inward peak is -1.

    Parameters
    ----------
    params : dict
        From :func:`draw_membrane_params`.

    Returns
    -------
    tuple of np.ndarray
        Times in ms relative to the inward peak, and the current (peak -1).
    """
    soma, dendrite = _action_potential(params)
    current = -np.gradient(soma, _DT_MS) + params["axial"] * (soma - dendrite)
    current -= current[0]
    trough = int(np.argmin(current))
    if soma.max() < 0.0 or current[trough] >= 0:
        raise SimulatorError("these membrane parameters fire no action potential; draw others.")
    return (np.arange(current.size) - trough) * _DT_MS, current / -current[trough]


def membrane_spike_waveform(
    t_ms, cell_type: str = "serotonergic", seed=None, sampling_frequency: float = SAMPLING_FREQUENCY, **params
) -> np.ndarray:
    """The noise-free action current (pA) of a cell of the membrane rig as recorded, through its filter.

    Parameters
    ----------
    t_ms : array_like
        Times in ms relative to the inward peak of the filtered current (0 = the peak), on the grid of
        ``sampling_frequency``.
    cell_type : str, default: "serotonergic"
        As :func:`draw_membrane_params`.
    seed : int, numpy Generator or None, default: None
        Seed of the drawn parameters.
    sampling_frequency : float, default: 40000.0
        Rate of the filter.
    **params
        Override drawn parameters.

    Returns
    -------
    np.ndarray
        The current at ``t_ms`` (inward peak ``-amplitude_pa * amplitude_scale``).
    """
    from scipy.signal import bessel, sosfilt

    p = draw_membrane_params(cell_type, seed=seed, **params)
    t_template, current = membrane_action_current(p)
    step_ms = 1000.0 / sampling_frequency
    grid = np.arange(-_WINDOW_BEFORE_MS, _WINDOW_AFTER_MS, step_ms)
    sos = bessel(8, p["filter_hz"], btype="low", norm="mag", output="sos", fs=sampling_frequency)
    filtered = sosfilt(sos, np.interp(grid, t_template, current, left=0.0, right=current[-1]))
    peak = int(np.argmin(filtered))
    scale = p["amplitude_pa"] * p["amplitude_scale"] / -filtered[peak]
    return scale * np.interp(np.asarray(t_ms, dtype=float), grid - grid[peak], filtered, left=0.0)


# ------------------------------------------------------------------------------------------ one recording
def _spike_times(rng, rate, cv, refractory_s, duration_s):
    """Log-normal renewal process with mean interval 1/rate and the interval CV ``cv`` (after refractoriness)."""
    mean = 1.0 / rate - refractory_s
    sigma = math.sqrt(math.log(1.0 + (cv / rate / mean) ** 2))
    n = int(duration_s * rate * 1.5 + 20)
    isi = refractory_s + rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)
    times = rng.uniform(0.0, 1.0 / rate) + np.concatenate([[0.0], np.cumsum(isi[1:])])
    return times[(times > 0.01) & (times < duration_s - 0.01)]


def _pink_noise(rng, n, sampling_frequency, standard_deviation):
    """1/f noise over the whole band (from 0.5 Hz), scaled to ``standard_deviation``."""
    if standard_deviation <= 0 or n < 2:
        return np.zeros(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.fft.rfftfreq(n, 1.0 / sampling_frequency)
    spectrum /= np.sqrt(np.maximum(frequency, 0.5))
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n=n)
    return x * (standard_deviation / max(float(np.std(x)), 1e-12))


def _hum(rng, n, sampling_frequency, amplitude, f0):
    """Mains hum rich in odd harmonics (a buzz), its amplitude wandering slowly."""
    t = np.arange(n) / sampling_frequency
    envelope = 1.0 + 0.3 * np.sin(2 * np.pi * t / rng.uniform(5.0, 20.0) + rng.uniform(0, 2 * np.pi))
    wave = sum(
        a * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) for h, a in ((1, 1.0), (3, 0.5), (5, 0.3))
    )
    return amplitude * envelope * wave


def _render(rng, times, p, sampling_frequency, n):
    """The spikes alone (before the filter): each a jittered copy of the action current."""
    t_ms, current = membrane_action_current(p)
    k = len(times)
    before = int(math.ceil(_WINDOW_BEFORE_MS * sampling_frequency / 1000.0))
    after = int(math.ceil(_WINDOW_AFTER_MS * sampling_frequency / 1000.0))
    position = times * sampling_frequency
    samples = np.floor(position).astype(np.int64)[:, None] - before + np.arange(before + after)[None, :]
    stretch = np.clip(1.0 + p["time_jitter"] * rng.standard_normal(k), 0.85, 1.15)
    lag_ms = (samples - position[:, None]) * (1000.0 / sampling_frequency) / stretch[:, None]
    amplitude = p["amplitude_pa"] * p["amplitude_scale"] * np.exp(p["amplitude_jitter"] * rng.standard_normal(k))
    waves = amplitude[:, None] * np.interp(lag_ms, t_ms, current, left=0.0, right=current[-1])
    spikes = np.zeros(n)
    valid = (samples >= 0) & (samples < n)
    np.add.at(spikes, samples[valid], waves[valid])
    return spikes, samples


def simulate_membrane_recording(
    cell_type: str = "serotonergic",
    duration_s: float = 30.0,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed=None,
    **overrides,
) -> SimulatedRecording:
    """Simulate one gap-free loose-seal recording of a cell of the membrane rig.

    Parameters
    ----------
    cell_type : str, default: "serotonergic"
        "serotonergic", "atypical_serotonergic" or "non_serotonergic".
    duration_s : float, default: 30.0
        Length of the trace.
    sampling_frequency : float, default: 40000.0
        Rate of the trace.
    seed : int, numpy Generator or None, default: None
        The same seed gives the same recording.
    **overrides
        Fix any drawn parameter: firing (``firing_rate_hz``, ``cv_isi``, ``refractory_ms``); membrane
        (``sodium_speed``, ``potassium_speed``, ``calcium``, ``axial``, ``temperature_factor``); spike
        (``amplitude_pa``, ``amplitude_scale``, ``amplitude_jitter``, ``time_jitter``); rig (``filter_hz``
        of the 8-pole Bessel, ``pink_sd_pa``, ``white_sd_pa``, ``hum_pa``, ``hum_hz``, ``holding_pa``).

    Returns
    -------
    SimulatedRecording
        As :func:`simulate_drn_recording` returns, with ``params["family"] == "membrane"``.
    """
    from scipy.signal import bessel, sosfilt

    canonical = _cell_type(cell_type)
    rng = np.random.default_rng(seed)
    p = draw_membrane_params(canonical, seed=rng, **overrides)
    if p["filter_hz"] >= 0.5 * sampling_frequency:
        raise SimulatorError(f"filter_hz must be below half the sampling rate, got {p['filter_hz']}.")
    n = int(round(duration_s * sampling_frequency))
    times = _spike_times(rng, p["firing_rate_hz"], p["cv_isi"], p["refractory_ms"] / 1000.0, n / sampling_frequency)
    spikes, samples = _render(rng, times, p, sampling_frequency, n)
    sos = bessel(8, p["filter_hz"], btype="low", norm="mag", output="sos", fs=sampling_frequency)
    spikes = sosfilt(sos, spikes)
    peak_samples, trigger_samples = _ground_truth(spikes, samples)
    noise = _pink_noise(rng, n, sampling_frequency, p["pink_sd_pa"]) + rng.normal(0.0, p["white_sd_pa"], n)
    traces = spikes + sosfilt(sos, noise) + _hum(rng, n, sampling_frequency, p["hum_pa"], p["hum_hz"]) + p["holding_pa"]
    isi = np.diff(times)
    p.update(
        family="membrane",
        n_spikes=int(len(times)),
        measured_rate_hz=float(len(times) / (n / sampling_frequency)),
        measured_cv_isi=float(isi.std() / isi.mean()) if isi.size > 1 else float("nan"),
    )
    return SimulatedRecording(
        traces=traces.astype(np.float32),
        sampling_frequency=float(sampling_frequency),
        spike_samples=trigger_samples,
        peak_samples=peak_samples,
        cell_type=canonical,
        label=_LABEL_OF[canonical],
        params=p,
    )


def _ground_truth(spikes, samples):
    """Inward peak and -50 pA crossing (half the peak for smaller spikes) of each filtered, noise-free spike."""
    n = spikes.size
    inside = np.clip(samples, 0, n - 1)
    window = spikes[inside]
    peak = inside[np.arange(len(samples)), np.argmin(window, axis=1)]
    depth = window.min(axis=1)
    threshold = np.where(depth <= DEFAULT_THRESHOLD_PA, DEFAULT_THRESHOLD_PA, 0.5 * depth)
    trigger = inside[np.arange(len(samples)), np.argmax(window <= threshold[:, None], axis=1)]
    return peak.astype(np.int64), trigger.astype(np.int64)


# ------------------------------------------------------------------------------------------ a dataset
_DEFAULT_COUNTS = {"serotonergic": 21, "atypical_serotonergic": 9, "non_serotonergic": 30}


def simulate_membrane_dataset(
    n_cells_per_type: dict[str, int] | None = None,
    duration_s: float = 30.0,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed=None,
    out_dir=None,
    *,
    n_days: int = 1,
    day_prefix: str = "rig2day",
    **overrides,
) -> list[SimulatedRecording]:
    """Simulate cells of the membrane rig over ``n_days`` recording days, optionally as .abf files.

    Parameters
    ----------
    n_cells_per_type : dict or None, default: None
        Cells per type; None: 21 serotonergic, 9 atypical serotonergic (30 % of the SER cells), 30 non-serotonergic.
    duration_s : float, default: 30.0
        Length of each recording.
    sampling_frequency : float, default: 40000.0
        Rate of the recordings.
    seed : int or None, default: None
        Seed of the whole dataset.
    out_dir : path or None, default: None
        Where to write ``<day>_c<NNN>.abf`` (one pA channel "IN 0"), ``labels.csv`` (``file, label, channel,
        group, cell_type``) and ``params.csv``, as ``simulate_dataset`` does.
    n_days : int, default: 1
        Recording days; each draws :data:`MEMBRANE_DAYS` (temperature, filter, noise, hum, gain).
    day_prefix : str, default: "rig2day"
        Names the days ``<prefix>01`` ...
    **overrides
        Passed to :func:`simulate_membrane_recording` for every cell.

    Returns
    -------
    list of SimulatedRecording
        In file order, with ``cell_id``, ``group`` and ``file`` set.
    """
    counts = {_cell_type(k): int(v) for k, v in (n_cells_per_type or _DEFAULT_COUNTS).items()}
    if any(v < 0 for v in counts.values()) or sum(counts.values()) == 0 or int(n_days) < 1:
        raise SimulatorError(
            f"n_cells_per_type needs non-negative counts, at least one cell and n_days >= 1; got {counts}."
        )
    day_seed, plan_seed, *cell_seeds = _seed_sequence(seed).spawn(2 + sum(counts.values()))
    day_rng = np.random.default_rng(day_seed)
    days = [{k: float(day_rng.uniform(*v)) for k, v in MEMBRANE_DAYS.items()} for _ in range(int(n_days))]
    plan = [(t, i % int(n_days)) for t in CELL_TYPES for i in range(counts.get(t, 0))]
    plan = [plan[i] for i in np.random.default_rng(plan_seed).permutation(len(plan))]
    plan.sort(key=lambda item: item[1])
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    recordings = []
    for index, ((cell_type, day), cell_seed) in enumerate(zip(plan, cell_seeds)):
        rng = np.random.default_rng(cell_seed)
        conditions = {k: v * float(rng.uniform(0.9, 1.1)) for k, v in days[day].items()}
        conditions["filter_hz"] = min(conditions["filter_hz"], 0.45 * sampling_frequency)
        recording = simulate_membrane_recording(
            cell_type, duration_s, sampling_frequency, seed=rng, **{**conditions, **overrides}
        )
        recording.group = f"{day_prefix}{day + 1:02d}"
        recording.cell_id = f"{recording.group}_c{index + 1:03d}"
        if out is not None:
            start = _dt.datetime(2024, 3, 4, 10, 0, 0) + _dt.timedelta(days=day, minutes=5 * index)
            recording.file = recording.to_abf(out / f"{recording.cell_id}.abf", rec_datetime=start)
        recordings.append(recording)
    if out is not None:
        _write_tables(out, recordings)
    return recordings


def _write_tables(out: Path, recordings) -> None:
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "channel", "group", "cell_type"])
        for r in recordings:
            writer.writerow([r.file.name, r.label, "0", r.group, r.cell_type])
    keys = sorted({k for r in recordings for k in r.params})
    with open(out / "params.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "cell_id", "group", "cell_type", "label", *keys])
        for r in recordings:
            writer.writerow([r.file.name, r.cell_id, r.group, r.cell_type, r.label, *[r.params.get(k) for k in keys]])
