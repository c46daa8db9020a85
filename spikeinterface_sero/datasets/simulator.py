"""Simulated loose-seal cell-attached recordings of dorsal raphe (DRN) neurons.

The full explanation is in ``docs/simulator.md`` (section "Module notes: spikeinterface_sero.datasets.simulator").
"""

from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import DEFAULT_THRESHOLD_PA, LABELS, SAMPLING_FREQUENCY
from ..errors import TrainingError
from .abf_writer import write_abf

__all__ = [
    "CELL_TYPES",
    "SimulatorError",
    "SimulatedRecording",
    "simulate_drn_recording",
    "simulate_dataset",
    "dataset_table",
    "spike_waveform",
    "draw_cell_params",
    "VARIED_DAYS",
]

SER, NSER = LABELS
#: The kinds of cell the simulator makes (``cell_type`` of :class:`SimulatedRecording`).
CELL_TYPES = ("serotonergic", "atypical_serotonergic", "non_serotonergic")
_ALIASES = {
    "ser": "serotonergic",
    "serotonergic": "serotonergic",
    "typical_serotonergic": "serotonergic",
    "typical": "serotonergic",
    "atypical": "atypical_serotonergic",
    "atypical_ser": "atypical_serotonergic",
    "atypical_serotonergic": "atypical_serotonergic",
    "nser": "non_serotonergic",
    "non_serotonergic": "non_serotonergic",
    "non-serotonergic": "non_serotonergic",
}
_LABEL_OF = {"serotonergic": SER, "atypical_serotonergic": SER, "non_serotonergic": NSER}

# Window of one rendered spike, relative to its negative peak (ms).  Long enough for the slowest
# after-phase; spikes closer than this simply add up (they are >= refractory_ms apart).
_WIN_BEFORE_MS = 1.5
_WIN_AFTER_MS = 9.0


class SimulatorError(TrainingError, ValueError):
    """Bad simulator options (unknown cell type or parameter, impossible value); also a ``ValueError``."""


# --------------------------------------------------------------------------------------------------
# parameter distributions
# --------------------------------------------------------------------------------------------------
def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _draw_firing(rng, cell_type):
    if cell_type == "serotonergic":
        rate = float(np.clip(rng.lognormal(np.log(1.2), 0.45), 0.4, 3.0))
        cv = rng.uniform(0.08, 0.45)
    elif cell_type == "atypical_serotonergic":
        rate = _loguniform(rng, 2.0, 8.0)
        cv = rng.uniform(0.2, 0.8)
    else:
        rate = _loguniform(rng, 3.0, 15.0)
        cv = rng.uniform(0.5, 1.2)
    return rate, float(cv)


def _draw_shape(rng, cell_type, udi_override=None):
    """Shape parameters; the lobe widths scale with the UDI (the drawn one, or ``udi_override``)."""
    u = rng.uniform
    lo, hi = {"serotonergic": (1.0, 2.0), "atypical_serotonergic": (0.6, 1.1)}.get(cell_type, (0.3, 0.8))
    udi = u(lo, hi)
    if udi_override is not None:
        udi = float(udi_override)
    if cell_type == "serotonergic":
        rise = u(0.08, 0.14)
        p = dict(
            udi_ms=udi,
            rise_ms=rise,
            fall_ms=rise * u(1.3, 2.0),
            pos_ratio=u(0.2, 0.45),
            pos_rise_ms=udi * u(0.3, 0.42),
            pos_decay_ms=udi * u(0.6, 0.9),
            shoulder=u(0.15, 0.35),
            shoulder_lead_ms=rise * u(2.2, 3.0),
            after_phase=u(0.15, 0.35),
            after_tau_ms=u(0.8, 1.6),
            prephase=u(0.0, 0.08),
            undershoot=u(0.0, 0.03),
        )
    elif cell_type == "atypical_serotonergic":
        rise = u(0.05, 0.09)
        p = dict(
            udi_ms=udi,
            rise_ms=rise,
            fall_ms=rise * u(1.3, 2.0),
            pos_ratio=u(0.25, 0.5),
            pos_rise_ms=udi * u(0.3, 0.4),
            pos_decay_ms=udi * u(0.3, 0.4) * u(1.6, 2.5),
            shoulder=u(0.15, 0.35),
            shoulder_lead_ms=rise * u(2.2, 3.0),
            after_phase=u(0.15, 0.35),
            after_tau_ms=u(0.8, 1.6),
            prephase=u(0.0, 0.08),
            undershoot=u(0.0, 0.03),
        )
    else:
        rise = u(0.035, 0.07)
        pr = udi * u(0.35, 0.5)
        p = dict(
            udi_ms=udi,
            rise_ms=rise,
            fall_ms=rise * u(1.0, 1.5),
            pos_ratio=u(0.35, 0.8),
            pos_rise_ms=pr,
            pos_decay_ms=pr * u(0.9, 1.3),
            shoulder=u(0.0, 0.05),
            shoulder_lead_ms=rise * u(2.2, 3.0),
            after_phase=u(0.0, 0.08),
            after_tau_ms=u(0.3, 0.8),
            prephase=u(0.0, 0.08),
            undershoot=u(0.03, 0.12),
        )
    return {k: float(v) for k, v in p.items()}


def _draw_background(rng, sampling_frequency):
    return dict(
        noise_sd_pa=float(rng.uniform(3.0, 10.0)),
        noise_knee_hz=_loguniform(rng, 50.0, 500.0),
        lowpass_hz=float(min(rng.uniform(5000.0, 10000.0), 0.45 * sampling_frequency)),
        drift_pa=float(rng.uniform(5.0, 40.0)),
        drift_period_s=float(rng.uniform(10.0, 60.0)),
        hum_pa=float(rng.uniform(0.0, 5.0)),
        hum_hz=50.0,
        holding_pa=float(rng.uniform(-100.0, 100.0)),
    )


# Recording conditions that a cell does not draw (they stay off unless a day or an override sets them, so a
# seed gives the same recording as before they existed): 1/f slope of the noise power, a 4-pole Bessel
# electrode/amplifier filter on the whole signal (0 = none), the relative change of the spike amplitude from
# the start to the end of the recording, a gain on the amplitude, and events of a neighbouring cell
# overlapping a fraction of the spikes.
_CONDITION_DEFAULTS = dict(
    noise_exponent=1.0,
    electrode_filter_hz=0.0,
    amplitude_drift=0.0,
    amplitude_scale=1.0,
    overlap_fraction=0.0,
    overlap_amplitude=0.35,
)

#: The day-to-day ranges of ``simulate_dataset(day_ranges=VARIED_DAYS)``; docs/simulator.md §2.3 gives the
#: source or reason of each. A (low, high) pair is a range (log-uniform for the names in _LOG_DRAWN), a list
#: is a set of choices.
VARIED_DAYS: dict[str, Any] = {
    "noise_sd_pa": (2.0, 12.0),
    "noise_knee_hz": (20.0, 1000.0),
    "noise_exponent": (0.6, 1.6),
    "lowpass_hz": (5000.0, 10000.0),
    "hum_pa": (0.0, 8.0),
    "hum_hz": [50.0, 60.0],
    "drift_pa": (5.0, 60.0),
    "electrode_filter_hz": (2000.0, 10000.0),
    "amplitude_scale": (0.75, 2.0),
    "amplitude_drift": (-0.3, 0.2),
    "overlap_fraction": (0.0, 0.05),
}
_LOG_DRAWN = {"noise_knee_hz", "electrode_filter_hz", "amplitude_scale"}


def draw_cell_params(
    cell_type: str = "serotonergic", sampling_frequency: float = SAMPLING_FREQUENCY, seed=None, **overrides
) -> dict[str, Any]:
    """Draw the parameters of one simulated cell (firing, spike shape, background); see
    :func:`simulate_drn_recording` for their meaning.  ``overrides`` replace drawn values."""
    canonical_type = _cell_type(cell_type)
    rng = np.random.default_rng(seed)
    rate, cv = _draw_firing(rng, canonical_type)
    params: dict[str, Any] = dict(firing_rate_hz=rate, cv_isi=cv, refractory_ms=5.0)
    params.update(amplitude_pa=_loguniform(rng, 80.0, 600.0), amplitude_jitter=0.10, shape_jitter=0.03)
    params.update(_draw_shape(rng, canonical_type, overrides.get("udi_ms")))
    params.update(_draw_background(rng, sampling_frequency))
    params.update(_CONDITION_DEFAULTS)
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise SimulatorError(f"unknown simulator parameter(s) {unknown}; valid names are: {', '.join(sorted(params))}.")
    params.update({k: (float(v) if isinstance(v, (int, float, np.number)) else v) for k, v in overrides.items()})
    _check_params(params, sampling_frequency)
    return params


def _check_params(p, sampling_frequency):
    def need(condition, message):
        if not condition:
            raise SimulatorError(message)

    need(p["firing_rate_hz"] >= 0, f"firing_rate_hz must be >= 0, got {p['firing_rate_hz']}.")
    need(p["refractory_ms"] >= 0, "refractory_ms must be >= 0.")
    if p["firing_rate_hz"] > 0:
        need(
            1000.0 / p["firing_rate_hz"] > p["refractory_ms"],
            f"firing_rate_hz={p['firing_rate_hz']} leaves no room for refractory_ms={p['refractory_ms']}.",
        )
    need(p["cv_isi"] > 0, "cv_isi must be > 0.")
    need(0.05 <= p["udi_ms"] <= 3.0, f"udi_ms must lie in [0.05, 3.0] ms, got {p['udi_ms']}.")
    for k in ("rise_ms", "fall_ms", "pos_rise_ms", "pos_decay_ms", "after_tau_ms", "shoulder_lead_ms"):
        need(p[k] > 0, f"{k} must be > 0, got {p[k]}.")
    for k in ("amplitude_pa", "pos_ratio"):
        need(p[k] > 0, f"{k} must be > 0, got {p[k]}.")
    for k in (
        "noise_sd_pa",
        "drift_pa",
        "hum_pa",
        "amplitude_jitter",
        "shape_jitter",
        "shoulder",
        "after_phase",
        "prephase",
        "undershoot",
        "noise_exponent",
        "electrode_filter_hz",
        "overlap_amplitude",
    ):
        need(p[k] >= 0, f"{k} must be >= 0, got {p[k]}.")
    need(p["amplitude_scale"] > 0, f"amplitude_scale must be > 0, got {p['amplitude_scale']}.")
    need(
        p["amplitude_drift"] > -1,
        f"amplitude_drift must be > -1 (the amplitude stays positive), got {p['amplitude_drift']}.",
    )
    need(0 <= p["overlap_fraction"] <= 1, f"overlap_fraction must lie in [0, 1], got {p['overlap_fraction']}.")
    need(
        p["electrode_filter_hz"] == 0 or p["electrode_filter_hz"] < 0.5 * sampling_frequency,
        f"electrode_filter_hz must be 0 (no filter) or below half the sampling rate, got {p['electrode_filter_hz']}.",
    )
    need(p["lowpass_hz"] > 0 and p["noise_knee_hz"] >= 0, "lowpass_hz must be > 0, noise_knee_hz >= 0.")
    need(p["hum_hz"] > 0 and p["drift_period_s"] > 0, "hum_hz and drift_period_s must be > 0.")


def _cell_type(cell_type: str) -> str:
    key = str(cell_type).strip().lower().replace(" ", "_")
    if key not in _ALIASES:
        raise SimulatorError(f"cell_type must be one of {', '.join(CELL_TYPES)}; got {cell_type!r}.")
    return _ALIASES[key]


# --------------------------------------------------------------------------------------------------
# spike waveform
# --------------------------------------------------------------------------------------------------
def _half_gauss(t, centre, left, right):
    s = np.where(t < centre, left, right)
    return np.exp(-0.5 * ((t - centre) / s) ** 2)


def _waveform(t_ms, p, pos_centre, pos_ratio=None):
    """Unnormalised action current (negative lobe amplitude ~1) at times ``t_ms`` (ms) from the
    negative peak; broadcasts over leading dimensions of ``t_ms`` / ``pos_ratio``."""
    r = p["pos_ratio"] if pos_ratio is None else pos_ratio
    w = -_half_gauss(t_ms, 0.0, p["rise_ms"], p["fall_ms"])
    if p["shoulder"] > 0:  # inflection on the upstroke (earlier, smaller negative component)
        w = w - p["shoulder"] * np.exp(-0.5 * ((t_ms + p["shoulder_lead_ms"]) / (1.2 * p["rise_ms"])) ** 2)
    if p["prephase"] > 0:  # small positive capacitive pre-phase
        w = w + p["prephase"] * np.exp(-0.5 * ((t_ms + 0.35) / 0.15) ** 2)
    w = w + r * _half_gauss(t_ms, pos_centre, p["pos_rise_ms"], p["pos_decay_ms"])
    if p["after_phase"] > 0:  # slow positive after-phase, rising with the repolarisation
        dt = np.maximum(t_ms - pos_centre, 0.0)
        onset = 1.0 / (1.0 + np.exp(-(t_ms - pos_centre) / max(p["pos_rise_ms"] * 0.5, 1e-3)))
        w = w + r * p["after_phase"] * onset * np.exp(-dt / p["after_tau_ms"])
    if p["undershoot"] > 0:  # small late negative phase (after-hyperpolarisation recovery)
        c = pos_centre + 2.0 * p["pos_decay_ms"] + 0.3
        w = w - p["undershoot"] * np.exp(-0.5 * ((t_ms - c) / max(p["pos_decay_ms"], 0.2)) ** 2)
    return w


def _udi_of(w, dt_ms):
    trough_index = int(np.argmin(w))
    return (trough_index + int(np.argmax(w[trough_index:]))) * dt_ms - trough_index * dt_ms, trough_index


def _solve_shape(p, dt_ms=0.0025):
    """Place the positive lobe so that the waveform's trough-to-positive-peak interval equals
    ``udi_ms``; return (pos_centre, trough_offset_ms, norm) where norm makes the trough -1."""
    t = np.arange(-_WIN_BEFORE_MS, _WIN_AFTER_MS, dt_ms)
    target = p["udi_ms"]
    centre = target
    for _ in range(30):
        w = _waveform(t, p, centre)
        udi, trough_index = _udi_of(w, dt_ms)
        error = target - udi
        if abs(error) <= dt_ms:
            break
        centre = max(centre + error, 0.02)
    w = _waveform(t, p, centre)
    trough_index = int(np.argmin(w))
    return centre, float(t[trough_index]), float(-w[trough_index])


def spike_waveform(t_ms, cell_type: str = "serotonergic", seed=None, **params) -> np.ndarray:
    """The noise-free action current (pA) of a simulated cell at times ``t_ms`` (ms, 0 = negative peak).

    Parameters are drawn as in :func:`simulate_drn_recording` (``seed``), ``params`` override them; the
    trough is ``-amplitude_pa`` and the positive peak comes ``udi_ms`` after it.
    """
    p = draw_cell_params(cell_type, seed=seed, **params)
    centre, off, norm = _solve_shape(p)
    t = np.asarray(t_ms, dtype=float)
    return (p["amplitude_pa"] / norm) * _waveform(t + off, p, centre)


# --------------------------------------------------------------------------------------------------
# spike trains and background
# --------------------------------------------------------------------------------------------------
def _spike_times(rng, rate, cv, refractory_s, t_lo, t_hi):
    """Renewal process: ISI = refractory + gamma, mean 1/rate, CV (of the whole ISI) = cv."""
    if rate <= 0 or t_hi <= t_lo:
        return np.empty(0)
    mean = 1.0 / rate
    free = mean - refractory_s
    standard_deviation = cv * mean
    shape = (free / standard_deviation) ** 2
    scale = standard_deviation**2 / free
    span = t_hi - t_lo
    n = int(span * rate * 1.3 + 10 * np.sqrt(span * rate + 1) + 10)
    isi = refractory_s + rng.gamma(shape, scale, size=n)
    first = t_lo + rng.uniform(0.0, 1.0) * isi[0]  # stationary start (approximately)
    times = first + np.concatenate([[0.0], np.cumsum(isi[1:])])
    while times[-1] < t_hi:  # rare: draw more
        more = refractory_s + rng.gamma(shape, scale, size=n)
        times = np.concatenate([times, times[-1] + np.cumsum(more)])
    return times[times < t_hi]


def _bessel_sos(cutoff_hz, sampling_frequency):
    """The 4-pole Bessel low-pass (-3 dB at ``cutoff_hz``) of patch-clamp amplifiers, as digital sections."""
    from scipy.signal import bessel

    return bessel(4, cutoff_hz, btype="low", norm="mag", output="sos", fs=sampling_frequency)


def _bessel_gain(f, cutoff_hz):
    """|H(f)| of the analog 4-pole Bessel low-pass with its -3 dB point at ``cutoff_hz``."""
    from scipy.signal import bessel, freqs

    b, a = bessel(4, 2 * np.pi * cutoff_hz, btype="low", analog=True, norm="mag")
    return np.abs(freqs(b, a, worN=2 * np.pi * np.asarray(f, dtype=np.float64))[1])


def _coloured_noise(rng, n, sampling_frequency, standard_deviation, knee_hz, lowpass_hz, exponent=1.0, filter_hz=0.0):
    import scipy.fft as sfft

    if standard_deviation <= 0 or n < 2:
        return np.zeros(n, dtype=np.float32)
    white = rng.standard_normal(n, dtype=np.float32)
    spec = sfft.rfft(white, workers=2)
    f = np.fft.rfftfreq(n, 1.0 / sampling_frequency).astype(np.float32)
    f[0] = f[1] if n > 1 else 1.0
    lowest_frequency = max(0.5, sampling_frequency / n)
    if exponent == 1.0:
        gain = np.sqrt(1.0 + knee_hz / np.maximum(f, lowest_frequency))  # white + 1/f power below the knee
    else:  # white + 1/f**exponent power below the knee
        gain = np.sqrt(1.0 + (knee_hz / np.maximum(f, lowest_frequency)) ** exponent)
    gain /= np.sqrt(1.0 + (f / lowpass_hz) ** 8)  # 4-pole low-pass (amplifier output filter)
    if filter_hz > 0:  # the electrode filter, applied to spikes and noise alike
        gain = gain * _bessel_gain(f, filter_hz).astype(np.float32)
    gain[0] = 0.0
    spec *= gain.astype(np.float32)
    x = sfft.irfft(spec, n=n, workers=2)
    s = float(np.std(x))
    return (x * np.float32(standard_deviation / s)).astype(np.float32) if s > 0 else np.zeros(n, dtype=np.float32)


def _drift(rng, n, sampling_frequency, amplitude, period_s):
    if amplitude <= 0 or n < 2:
        return np.zeros(n, dtype=np.float32)
    duration = n / sampling_frequency
    step = 0.1  # s, coarse grid of the random walk
    m = int(np.ceil(duration / step)) + 2
    walk = np.cumsum(rng.standard_normal(m))
    walk -= np.linspace(walk[0], walk[-1], m)  # a bridge: no net trend over the recording
    walk_sd = float(np.std(walk))
    if walk_sd > 0:
        walk *= 0.7 * amplitude / walk_sd
    knot_times = np.arange(m) * step
    slow = 0.7 * amplitude * np.sin(2 * np.pi * knot_times / period_s + rng.uniform(0, 2 * np.pi))
    return np.interp(np.arange(n) / sampling_frequency, knot_times, walk + slow).astype(np.float32)


def _hum(rng, n, sampling_frequency, amplitude, f0):
    if amplitude <= 0:
        return np.zeros(n, dtype=np.float32)
    amplitudes = amplitude * np.array([1.0, rng.uniform(0.1, 0.5), rng.uniform(0.05, 0.3)])
    phases = rng.uniform(0, 2 * np.pi, 3)
    period = sampling_frequency / f0
    m = int(round(period)) if abs(period - round(period)) < 1e-9 else n  # one period, then tile
    k = np.arange(min(m, n), dtype=np.float64)
    one = sum(
        a * np.sin(2 * np.pi * f0 * (h + 1) * k / sampling_frequency + phase)
        for h, (a, phase) in enumerate(zip(amplitudes, phases))
    )
    one = one.astype(np.float32)
    return np.tile(one, n // one.size + 1)[:n] if one.size < n else one


# --------------------------------------------------------------------------------------------------
# result object
# --------------------------------------------------------------------------------------------------
@dataclass
class SimulatedRecording:
    """One simulated cell.

    Attributes
    ----------
    traces : (n_samples,) float32, pA
    sampling_frequency : Hz
    spike_samples : int64 array; ground-truth trigger of each spike: the first sample at which the
        noise-free action current is at or below ``DEFAULT_THRESHOLD_PA`` (-50 pA) relative to its
        baseline (or half its peak, for a spike smaller than 50 pA)
    peak_samples : int64 array; the sample of each spike's negative peak (noise-free)
    overlap_samples : int64 array; the negative peak of each overlapping event of a neighbouring cell
        (``overlap_fraction`` of the spikes; not the cell's spikes, so not in ``spike_samples``)
    cell_type : "serotonergic", "atypical_serotonergic" or "non_serotonergic"
    label : "serotonergic" or "non_serotonergic"
    params : the drawn parameters (see :func:`simulate_drn_recording`) plus ``n_spikes``,
        ``measured_rate_hz`` and ``measured_cv_isi`` of the ground-truth train
    cell_id, group, file : set by :func:`simulate_dataset`
    """

    traces: np.ndarray
    sampling_frequency: float
    spike_samples: np.ndarray
    peak_samples: np.ndarray
    cell_type: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    overlap_samples: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    cell_id: str = "sim"
    group: str | None = None
    file: Path | None = None

    @property
    def duration_s(self) -> float:
        """The length of the recording in seconds."""
        return self.traces.size / self.sampling_frequency

    @property
    def spike_times_s(self) -> np.ndarray:
        """Ground-truth negative-peak times in seconds."""
        return self.peak_samples / self.sampling_frequency

    def to_recording(self):
        """A SpikeInterface ``NumpyRecording`` (one channel, id ``"0"``, pA, gain 1, offset 0, dummy probe)."""
        from spikeinterface.core import NumpyRecording

        recording = NumpyRecording([self.traces[:, None]], self.sampling_frequency, channel_ids=["0"])
        recording.set_channel_gains(1.0)
        recording.set_channel_offsets(0.0)
        recording.set_property("physical_unit", ["pA"])
        recording.set_property("gain_to_physical_unit", [1.0])
        recording.set_property("offset_to_physical_unit", [0.0])
        recording.set_property("channel_name", ["IN 0"])
        recording.set_dummy_probe_from_locations(np.zeros((1, 2)))
        recording.annotate(cell_type=self.cell_type, label=self.label, cell_id=self.cell_id)
        return recording

    def to_abf(
        self, path, *, data_format: str = "int16", version: int = 2, rec_datetime: _dt.datetime | None = None
    ) -> Path:
        """Write the trace as a one-channel gap-free .abf ("IN 0", pA); see :func:`write_abf`."""
        return write_abf(
            path,
            self.traces,
            self.sampling_frequency,
            units="pA",
            channel_names=["IN 0"],
            data_format=data_format,
            version=version,
            rec_datetime=rec_datetime,
        )


# --------------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------------
def simulate_drn_recording(
    cell_type: str = "serotonergic",
    duration_s: float = 30.0,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed=None,
    **overrides,
) -> SimulatedRecording:
    """Simulate a gap-free loose-seal cell-attached recording of one DRN neuron.

    Parameters
    ----------
    cell_type : "serotonergic", "atypical_serotonergic" or "non_serotonergic" (aliases "ser",
        "atypical", "nser")
    duration_s, sampling_frequency : length (s) and rate (Hz) of the trace
    seed : int, numpy Generator or None; the same seed gives the same recording
    **overrides : fix any drawn parameter:

        * firing: ``firing_rate_hz``, ``cv_isi`` (CV of the inter-spike intervals), ``refractory_ms``
        * spike: ``amplitude_pa`` (mean negative peak, positive number), ``amplitude_jitter`` (sd of the
          log spike-to-spike amplitude, 0.10), ``shape_jitter`` (sd of the per-spike time scale, 0.03),
          ``udi_ms``, ``rise_ms``/``fall_ms`` (widths of the negative lobe before/after its peak),
          ``pos_ratio`` (positive/negative lobe amplitude), ``pos_rise_ms``/``pos_decay_ms``,
          ``shoulder``/``shoulder_lead_ms`` (upstroke inflection), ``after_phase``/``after_tau_ms``
          (slow positive after-phase), ``prephase``, ``undershoot`` (relative amplitudes)
        * background: ``noise_sd_pa`` (rms of the coloured noise), ``noise_knee_hz`` (1/f corner),
          ``lowpass_hz``, ``drift_pa``, ``drift_period_s``, ``hum_pa``, ``hum_hz`` (50), ``holding_pa``

    Returns
    -------
    SimulatedRecording
    """
    sampling_frequency_hz = float(sampling_frequency)
    if not (np.isfinite(sampling_frequency_hz) and sampling_frequency_hz > 0):
        raise SimulatorError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency!r}.")
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise SimulatorError(f"duration_s must be > 0, got {duration_s!r}.")
    canonical_type = _cell_type(cell_type)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    p = draw_cell_params(canonical_type, sampling_frequency_hz, seed=rng, **overrides)
    n = int(round(duration_s * sampling_frequency_hz))

    # ---- spike train (negative-peak times, s) ----
    before_s, after_s = _WIN_BEFORE_MS / 1000.0, _WIN_AFTER_MS / 1000.0
    times = _spike_times(
        rng,
        p["firing_rate_hz"],
        p["cv_isi"],
        p["refractory_ms"] / 1000.0,
        before_s,
        n / sampling_frequency_hz - after_s,
    )
    k = times.size

    # ---- spikes, rendered analytically (sub-sample timing, per-spike jitter) ----
    traces = np.zeros(n, dtype=np.float64)
    spike_samples = np.empty(0, dtype=np.int64)
    peak_samples = np.empty(0, dtype=np.int64)
    overlap_samples = np.empty(0, dtype=np.int64)
    filter_sos = _bessel_sos(p["electrode_filter_hz"], sampling_frequency_hz) if p["electrode_filter_hz"] > 0 else None
    if k:
        factors = np.exp(p["amplitude_jitter"] * rng.standard_normal(k))
        if p["amplitude_scale"] != 1.0 or p["amplitude_drift"] != 0.0:  # a day's gain, a seal that changes
            drift = p["amplitude_scale"] * (1.0 + p["amplitude_drift"] * times / (n / sampling_frequency_hz))
        else:
            drift = None
        sample_indices, waves = _render_spikes(rng, times, factors, p, sampling_frequency_hz, filter_sos, drift)
        valid = (sample_indices >= 0) & (sample_indices < n)
        traces += np.bincount(sample_indices[valid], weights=waves[valid], minlength=n)
        peak_samples = sample_indices[np.arange(k), np.argmin(waves, axis=1)]
        depth = waves.min(axis=1)  # the -50 pA crossing; half the peak only for a spike that never reaches it
        threshold = np.where(depth <= DEFAULT_THRESHOLD_PA, DEFAULT_THRESHOLD_PA, 0.5 * depth)
        spike_samples = sample_indices[np.arange(k), np.argmax(waves <= threshold[:, None], axis=1)]
        if p["overlap_fraction"] > 0:
            overlap_samples = _add_overlapping_events(
                rng, traces, times, p, sampling_frequency_hz, filter_sos, before_s, after_s
            )

    # ---- background ----
    traces += _coloured_noise(
        rng,
        n,
        sampling_frequency_hz,
        p["noise_sd_pa"],
        p["noise_knee_hz"],
        min(p["lowpass_hz"], 0.49 * sampling_frequency_hz),
        exponent=p["noise_exponent"],
        filter_hz=p["electrode_filter_hz"],
    )
    traces += _drift(rng, n, sampling_frequency_hz, p["drift_pa"], p["drift_period_s"])
    traces += _hum(rng, n, sampling_frequency_hz, p["hum_pa"], p["hum_hz"])
    traces += p["holding_pa"]

    isi = np.diff(times)
    p.update(
        n_spikes=int(k),
        measured_rate_hz=float(k / (n / sampling_frequency_hz)),
        measured_cv_isi=float(isi.std() / isi.mean()) if isi.size > 1 else float("nan"),
    )
    return SimulatedRecording(
        traces=traces.astype(np.float32),
        sampling_frequency=sampling_frequency_hz,
        spike_samples=spike_samples.astype(np.int64),
        peak_samples=peak_samples.astype(np.int64),
        cell_type=canonical_type,
        label=_LABEL_OF[canonical_type],
        params=p,
        overlap_samples=overlap_samples,
    )


def _render_spikes(rng, times, factors, p, sampling_frequency, filter_sos=None, drift=None):
    """The sample indices (k, w) and the current (k, w) of ``k`` spikes of shape ``p`` whose negative peaks
    lie at ``times`` (s), with trough ``-amplitude_pa * factors`` (times ``drift`` when given) before the
    per-spike time-scale and lobe-ratio jitter; through the electrode filter ``filter_sos`` (causal, as an
    analog filter) when given."""
    k = len(times)
    centre, trough_off, norm = _solve_shape(p)
    scale = np.clip(1.0 + p["shape_jitter"] * rng.standard_normal(k), 0.85, 1.15)
    ratio = p["pos_ratio"] * np.clip(1.0 + 0.5 * p["shape_jitter"] * rng.standard_normal(k), 0.8, 1.2)
    samples_before = int(np.ceil(_WIN_BEFORE_MS * 1.2 * sampling_frequency / 1000.0))
    samples_after = int(np.ceil(_WIN_AFTER_MS * 1.2 * sampling_frequency / 1000.0))
    pos = times * sampling_frequency  # continuous sample position of each negative peak
    first = np.floor(pos).astype(np.int64) - samples_before
    sample_indices = first[:, None] + np.arange(samples_before + samples_after)[None, :]
    t_ms = (sample_indices - pos[:, None]) * (1000.0 / sampling_frequency) / scale[:, None] + trough_off
    amplitudes = p["amplitude_pa"] / norm * factors
    if drift is not None:
        amplitudes = amplitudes * drift
    waves = amplitudes[:, None] * _waveform(t_ms, p, centre, ratio[:, None])
    if filter_sos is not None:  # the window starts 1.8 ms before the peak, where the current is still 0
        from scipy.signal import sosfilt

        waves = sosfilt(filter_sos, waves, axis=1)
    return sample_indices, waves


def _add_overlapping_events(rng, traces, times, p, sampling_frequency, filter_sos, before_s, after_s):
    """Add to ``traces`` the action currents of a neighbouring cell (a narrow, non-serotonergic shape,
    ``overlap_amplitude`` times the cell's amplitude) overlapping a ``overlap_fraction`` of the spikes,
    each 1 ms before to 3 ms after the spike's negative peak (the snippet window). Returns their peaks."""
    chosen = np.flatnonzero(rng.random(len(times)) < p["overlap_fraction"])
    if not len(chosen):
        return np.empty(0, dtype=np.int64)
    n = traces.size
    neighbour = draw_cell_params("non_serotonergic", sampling_frequency, seed=rng)
    neighbour.update(shape_jitter=p["shape_jitter"])
    event_times = times[chosen] + rng.uniform(-1e-3, 3e-3, len(chosen))
    event_times = event_times[(event_times > before_s) & (event_times < n / sampling_frequency - after_s)]
    if not len(event_times):
        return np.empty(0, dtype=np.int64)
    neighbour["amplitude_pa"] = p["overlap_amplitude"] * p["amplitude_pa"] * p["amplitude_scale"]
    factors = np.exp(p["amplitude_jitter"] * rng.standard_normal(len(event_times)))
    sample_indices, waves = _render_spikes(rng, event_times, factors, neighbour, sampling_frequency, filter_sos)
    valid = (sample_indices >= 0) & (sample_indices < n)
    traces += np.bincount(sample_indices[valid], weights=waves[valid], minlength=n)
    return sample_indices[np.arange(len(event_times)), np.argmin(waves, axis=1)].astype(np.int64)


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63 - 1)))
    return np.random.SeedSequence(seed)


_DEFAULT_COUNTS = {"serotonergic": 6, "atypical_serotonergic": 2, "non_serotonergic": 6}
_DAY_KEYS = ("noise_sd_pa", "noise_knee_hz", "lowpass_hz", "hum_pa")


def simulate_dataset(
    n_cells_per_type: dict[str, int] | int | None = None,
    duration_s: float = 30.0,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    seed=None,
    out_dir=None,
    *,
    n_groups: int = 3,
    data_format: str = "int16",
    abf_version: int = 2,
    day_ranges: dict[str, Any] | None = None,
    day_prefix: str = "day",
    type_ranges: dict[str, dict[str, Any]] | None = None,
    **overrides,
) -> list[SimulatedRecording]:
    """Simulate several cells over ``n_groups`` simulated recording days.

    Cells of every type are spread over the days (round-robin after shuffling).  A day sets the
    background every cell of that day shares, up to ±15 %: noise level, 1/f corner, low-pass filter and
    mains-hum amplitude, so that a split by day (group) differs from a split by cell.  With ``out_dir``,
    writes one gap-free .abf per cell (``<group>_c<NNN>.abf``, one pA channel "IN 0", ``data_format``
    int16 or float32, recording date = the day) and ``labels.csv`` with columns
    ``file,label,channel,group,cell_type`` (plus ``params.csv`` with every drawn parameter).

    ``n_cells_per_type``: a count per cell type (``{"serotonergic": 4, ...}``), or one count for every type.
    ``overrides`` are passed to :func:`simulate_drn_recording` for every cell.  Returns the recordings in
    file order, with ``cell_id``, ``group`` and ``file`` set.

    ``day_ranges`` widens what a day sets: a dict of cell parameters, each a ``(low, high)`` range
    (log-uniform for ``noise_knee_hz``, ``electrode_filter_hz`` and ``amplitude_scale``, uniform otherwise)
    or a list of choices (``hum_hz``: ``[50.0, 60.0]``); every day draws one value of each, and every cell
    of the day gets it times U(0.85, 1.15) (a choice exactly).  ``VARIED_DAYS`` holds ranges of noise
    level and spectrum (1/f corner and slope), hum, drift, electrode filtering, amplitude gain and drift
    within a recording, and overlapping events (sources in docs/simulator.md §2.3).  None (default) keeps
    the classic days (noise, 1/f corner, low-pass and hum only), cell for cell as before.
    ``day_prefix`` names the days (``<prefix>01`` ...), so that datasets simulated apart can be joined.
    ``type_ranges`` draws parameters per cell of a type, e.g. ``{"non_serotonergic": {"udi_ms": (0.3,
    1.0)}}`` (ranges uniform, or lists of choices), replacing the type's own distribution.
    """
    counts = _cell_counts(n_cells_per_type)
    if int(n_groups) < 1:
        raise SimulatorError(f"n_groups must be >= 1, got {n_groups}.")
    n_groups = int(n_groups)
    ranges = _check_day_ranges(day_ranges, sampling_frequency)
    per_type = {
        _cell_type(cell_type): _check_day_ranges(type_range, sampling_frequency, "type_ranges")
        for cell_type, type_range in (type_ranges or {}).items()
    }
    root = _seed_sequence(seed)
    day_ss, assign_ss, *cell_ss = root.spawn(2 + sum(counts.values()))

    day_rng = np.random.default_rng(day_ss)
    days = [
        {k: v for k, v in _draw_background(day_rng, sampling_frequency).items() if k in _DAY_KEYS}
        for _ in range(n_groups)
    ]
    if ranges is not None:  # the widened days replace the classic ones (drawn after them: same cells' seeds)
        days = [_draw_day(day_rng, ranges) for _ in range(n_groups)]
    base = _dt.datetime(2024, 1, 8, 10, 0, 0)
    day_names = [f"{day_prefix}{g + 1:02d}" for g in range(n_groups)]

    plan = _plan_cells(counts, n_groups, np.random.default_rng(assign_ss))

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    recordings: list[SimulatedRecording] = []
    for i, ((cell_type, g), seed_sequence) in enumerate(zip(plan, cell_ss)):
        rng = np.random.default_rng(seed_sequence)
        day = _cell_day(days[g], ranges, rng, sampling_frequency)
        recording_kwargs = {**day, **overrides}
        if cell_type in per_type:
            recording_kwargs.update(_draw_day(rng, per_type[cell_type], log_drawn=()))
        recording = simulate_drn_recording(cell_type, duration_s, sampling_frequency, seed=rng, **recording_kwargs)
        recording.group = day_names[g]
        recording.cell_id = f"{day_names[g]}_c{i + 1:03d}"
        if out is not None:
            recording.file = recording.to_abf(
                out / f"{recording.cell_id}.abf",
                data_format=data_format,
                version=abf_version,
                rec_datetime=base + _dt.timedelta(days=g, minutes=5 * i),
            )
        recordings.append(recording)

    if out is not None:
        _write_dataset_tables(out, recordings)
    return recordings


def _cell_counts(n_cells_per_type) -> dict[str, int]:
    """Cells per type from a dict, one count for every type, or None (the default counts)."""
    if isinstance(n_cells_per_type, (int, np.integer)) and not isinstance(n_cells_per_type, bool):
        n_cells_per_type = dict.fromkeys(CELL_TYPES, int(n_cells_per_type))  # that many cells of every type
    counts = dict(_DEFAULT_COUNTS if n_cells_per_type is None else n_cells_per_type)
    counts = {_cell_type(k): int(v) for k, v in counts.items()}
    if any(v < 0 for v in counts.values()) or sum(counts.values()) == 0:
        raise SimulatorError(f"n_cells_per_type needs non-negative counts and at least one cell; got {counts}.")
    return counts


def _plan_cells(counts: dict[str, int], n_groups: int, assign_rng) -> list[tuple[str, int]]:
    """(cell_type, group index) of every cell: types spread round-robin over the days, shuffled, by day."""
    plan = []
    g_next = 0
    for cell_type in CELL_TYPES:
        for _ in range(counts.get(cell_type, 0)):
            plan.append((cell_type, g_next % n_groups))
            g_next += 1
    order = assign_rng.permutation(len(plan))
    plan = [plan[i] for i in order]
    plan.sort(key=lambda x: x[1])  # file order: by day
    return plan


def _cell_day(day: dict[str, Any], ranges, rng, sampling_frequency: float) -> dict[str, Any]:
    """One cell's background: its day's values times U(0.85, 1.15) (a choice exactly), filters below Nyquist."""
    cell_day = {
        k: v if ranges is not None and isinstance(ranges[k], list) else v * float(rng.uniform(0.85, 1.15))
        for k, v in day.items()
    }
    for key in ("lowpass_hz", "electrode_filter_hz"):
        if key in cell_day:
            cell_day[key] = min(cell_day[key], 0.45 * sampling_frequency)
    if "overlap_fraction" in cell_day:
        cell_day["overlap_fraction"] = min(cell_day["overlap_fraction"], 1.0)
    return cell_day


def _write_dataset_tables(out: Path, recordings: list[SimulatedRecording]) -> None:
    """Write ``labels.csv`` and ``params.csv`` (every drawn parameter) beside the cells' files."""
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "channel", "group", "cell_type"])
        for r in recordings:
            w.writerow([r.file.name, r.label, "0", r.group, r.cell_type])
    keys = sorted({k for r in recordings for k in r.params})
    with open(out / "params.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "cell_id", "group", "cell_type", "label", *keys])
        for r in recordings:
            w.writerow([r.file.name, r.cell_id, r.group, r.cell_type, r.label, *[r.params.get(k) for k in keys]])


def _check_day_ranges(day_ranges, sampling_frequency, name: str = "day_ranges") -> dict[str, Any] | None:
    if day_ranges is None:
        return None
    if not isinstance(day_ranges, dict):
        raise SimulatorError(f"{name} must be a dict of parameter ranges (e.g. VARIED_DAYS), got {day_ranges!r}.")
    valid = set(draw_cell_params("serotonergic", sampling_frequency, seed=0))
    unknown = sorted(set(day_ranges) - valid)
    if unknown:
        raise SimulatorError(
            f"unknown simulator parameter(s) {unknown} in {name}; valid names are: {', '.join(sorted(valid))}."
        )
    checked: dict[str, Any] = {}
    for key, value in day_ranges.items():
        if isinstance(value, list):
            if not value:
                raise SimulatorError(f"{name}[{key!r}] is an empty list of choices.")
            checked[key] = [float(v) for v in value]
            continue
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise SimulatorError(
                f"{name}[{key!r}] must be a (low, high) pair or a list of choices, got {value!r}."
            ) from None
        if not (np.isfinite(low) and np.isfinite(high) and low <= high) or (key in _LOG_DRAWN and low <= 0):
            raise SimulatorError(f"{name}[{key!r}] = {value!r} is not a range low <= high (> 0 for {key}).")
        checked[key] = (low, high)
    return checked


def _draw_day(rng, ranges: dict[str, Any], log_drawn=_LOG_DRAWN) -> dict[str, float]:
    day = {}
    for key, value in ranges.items():
        if isinstance(value, list):
            day[key] = float(value[int(rng.integers(len(value)))])
        elif key in log_drawn:
            day[key] = _loguniform(rng, *value) if value[0] < value[1] else float(value[0])
        else:
            day[key] = float(rng.uniform(*value))
    return day


def dataset_table(recordings):
    """A pandas DataFrame with one row per recording: ``file, label, channel, group, cell_type, cell_id``
    and the drawn parameters."""
    import pandas as pd

    rows = []
    for r in recordings:
        rows.append(
            dict(
                file=r.file.name if r.file is not None else None,
                label=r.label,
                channel="0",
                group=r.group,
                cell_type=r.cell_type,
                cell_id=r.cell_id,
                **r.params,
            )
        )
    return pd.DataFrame(rows)
