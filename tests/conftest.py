"""Shared fixtures. Real .abf files live in ../shared/abf (never copied here); tests that need them skip
cleanly when that folder is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_ABF = SHARED / "abf"
SHARED_MODELS = SHARED / "models" / "keras2-tf2.15"


def shared_abf_files():
    return sorted(SHARED_ABF.glob("*.abf")) if SHARED_ABF.is_dir() else []


@pytest.fixture
def shared_abf():
    if not SHARED_ABF.is_dir():
        pytest.skip("../shared/abf is not present on this machine")
    return SHARED_ABF


@pytest.fixture
def shared_models():
    if not SHARED_MODELS.is_dir():
        pytest.skip("../shared/models/keras2-tf2.15 is not present on this machine")
    return SHARED_MODELS


FS = 40_000.0


def spike_shape(t_ms: np.ndarray, amp: float = 200.0, width_ms: float = 0.1, udi_ms: float = 0.8) -> np.ndarray:
    """A biphasic action current (negative then positive phase), t_ms relative to the negative peak."""
    neg = -amp * np.exp(-0.5 * (t_ms / width_ms) ** 2)
    pos = 0.3 * amp * np.exp(-0.5 * ((t_ms - udi_ms) / (2.5 * width_ms)) ** 2)
    return neg + pos


def make_trace(
    fs: float = FS,
    duration_s: float = 5.0,
    spike_times_s=None,
    noise_pa: float = 2.0,
    offset_pa: float = -35.0,
    drift_pa: float = 15.0,
    seed: int = 0,
    amp: float = 200.0,
):
    """A synthetic cell-attached trace: offset + slow drift + noise + biphasic spikes at spike_times_s
    (times of the negative peaks). Evaluated analytically, so the same trace can be made at any rate."""
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs
    x = offset_pa + drift_pa * np.sin(2 * np.pi * 0.3 * t)
    if noise_pa:
        x = x + rng.normal(0, noise_pa, n)
    if spike_times_s is not None:
        for ts in spike_times_s:
            lo, hi = int(max(0, (ts - 0.004) * fs)), int(min(n, (ts + 0.006) * fs))
            x[lo:hi] += spike_shape((t[lo:hi] - ts) * 1000.0, amp=amp)
    return x.astype(np.float32)


def numpy_recording(traces, fs: float = FS):
    from spikeinterface.core import NumpyRecording

    traces = [np.asarray(tr, dtype=np.float32) for tr in (traces if isinstance(traces, list) else [traces])]
    traces = [tr[:, None] if tr.ndim == 1 else tr for tr in traces]
    rec = NumpyRecording(traces, fs)
    rec.set_dummy_probe_from_locations(np.c_[np.arange(traces[0].shape[1]) * 100.0, np.zeros(traces[0].shape[1])])
    rec.set_property("physical_unit", ["pA"] * traces[0].shape[1])
    return rec
