"""Memory bounded whatever the number of threshold crossings (issue #14): every crossing is counted, the
snippets kept per cell are capped (a uniform random subset, SpikeInterface's ``random_spikes``), and a noise
channel at an implausible rate is classified and flagged, not a MemoryError."""

from __future__ import annotations

import sys
import tracemalloc
import warnings

import numpy as np
import pytest

from spikeinterface_sero import detection as detector
from spikeinterface_sero.analyzers import recording_to_analyzer, snippets_from_analyzer
from spikeinterface_sero.constants import MAX_FIRING_RATE_HZ, NBEFORE, SNIPPET_LENGTH
from spikeinterface_sero.detection import recording_to_snippets
from spikeinterface_sero.errors import DemoModelWarning
from spikeinterface_sero.testing import long_synthetic_trace, numpy_recording


def _noise(seconds: float, seed: int, n_channels: int = 1) -> np.ndarray:
    """White noise (5 pA SD): with a -8 pA threshold a crossing every few ms, hundreds of "spikes" a second."""
    return np.random.default_rng(seed).normal(0.0, 5.0, (int(seconds * 40_000), n_channels)).astype(np.float32)


def _greedy_dead_time(starts, last, dead):
    out = []
    for sample in starts:
        if sample - last > dead:
            out.append(sample)
            last = sample
    return np.array(out, dtype=np.int64)


def test_vectorised_dead_time_is_the_greedy_rule():
    rng = np.random.default_rng(0)
    for _ in range(500):
        starts = np.unique(rng.integers(0, rng.integers(1, 3000), rng.integers(0, 300))).astype(np.int64)
        dead, last = int(rng.integers(0, 120)), int(rng.integers(-300, 200))
        np.testing.assert_array_equal(detector._dead_time(starts, last, dead), _greedy_dead_time(starts, last, dead))


def test_many_crossings_exact_counts_and_bounded_snippets(monkeypatch):
    """Far more crossings than the cap: the counts are those of the uncapped run, each cell keeps exactly the
    cap (the spikes SpikeInterface's random_spikes keeps), and both paths keep the same spikes and waveforms."""
    recording = numpy_recording([_noise(12.0, 1, 2), _noise(3.0, 2, 2)])
    detection = dict(threshold=-8.0, baseline_window_ms=None)
    everything = recording_to_snippets(recording, max_spikes_per_cell=10**9, **detection)
    counts = everything.n_detected
    assert min(counts.values()) > 20 * 200  # hundreds of crossings a second

    monkeypatch.setattr(detector, "MAX_WAVEFORMS_PER_CELL", 200)
    capped = recording_to_snippets(recording, **detection)
    assert capped.n_detected == counts
    np.testing.assert_array_equal(capped.all_trigger_samples, everything.all_trigger_samples)
    np.testing.assert_array_equal(capped.all_segment_index, everything.all_segment_index)
    assert np.unique(capped.unit_ids, return_counts=True)[1].tolist() == [200, 200]
    # the kept spikes are a subset of all, and their snippets are those of the uncapped run
    key = {
        (u, g, s): k
        for k, (u, g, s) in enumerate(zip(everything.unit_ids, everything.segment_index, everything.trigger_samples))
    }
    rows = [key[(u, g, s)] for u, g, s in zip(capped.unit_ids, capped.segment_index, capped.trigger_samples)]
    np.testing.assert_array_equal(capped.waveforms, everything.waveforms[rows])
    assert len(set(capped.segment_index.tolist())) == 2  # drawn over the whole recording, not its start

    analyzer = recording_to_analyzer(recording, **detection)
    assert {str(k): int(v) for k, v in analyzer.sorting.count_num_spikes_per_unit().items()} == {
        "0": counts["cell_ch0"],
        "1": counts["cell_ch1"],
    }
    assert analyzer.get_extension("waveforms").get_data().shape == (400, SNIPPET_LENGTH, 1)  # own channel only
    back = snippets_from_analyzer(analyzer)
    order = np.lexsort((back.trigger_samples, back.segment_index, back.unit_ids))
    ref = np.lexsort((capped.trigger_samples, capped.segment_index, capped.unit_ids))
    np.testing.assert_array_equal(back.trigger_samples[order], capped.trigger_samples[ref])
    np.testing.assert_array_equal(back.waveforms[order], capped.waveforms[ref])


def test_under_the_cap_every_spike_is_cut_from_the_trace():
    """Under the cap nothing changes: every trigger has its snippet, cut from the trace at the trigger."""
    trace, _ = long_synthetic_trace(30.0, rate_hz=12.0, seed=4)
    segments = [trace[:700_000], trace[700_000:]]
    recording = numpy_recording([np.c_[s, s[::-1]] for s in segments])
    result = recording_to_snippets(recording, chunk_duration_s=1.5)
    assert len(result) == len(result.all_trigger_samples) == sum(result.n_detected.values()) > 300
    window = np.arange(SNIPPET_LENGTH) - NBEFORE
    for k in range(len(result)):
        segment = segments[int(result.segment_index[k])]
        channel = int(result.unit_ids[k])
        column = segment if channel == 0 else segment[::-1]
        np.testing.assert_array_equal(result.waveforms[k], column[result.trigger_samples[k] + window])
    analyzer = recording_to_analyzer(recording)  # random_spikes keeps every spike under the cap
    assert analyzer.get_extension("random_spikes").get_data().size == len(result)


def test_detection_memory_does_not_grow_with_the_crossings():
    """The detector holds the spike times of every crossing but the snippets of the cap only: its peak is far
    below what the snippets of every crossing would need."""
    recording = numpy_recording(_noise(40.0, 3))
    detection = dict(threshold=-8.0, baseline_window_ms=None)
    recording_to_snippets(numpy_recording(_noise(1.0, 4)), max_spikes_per_cell=10, **detection)  # lazy imports
    tracemalloc.start()
    try:
        result = recording_to_snippets(recording, max_spikes_per_cell=100, **detection)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_crossings = result.n_detected["cell"]
    assert len(result) == 100 and n_crossings > 8000
    all_snippets_bytes = n_crossings * SNIPPET_LENGTH * 4
    assert peak < 0.5 * all_snippets_bytes + 8 * 2**20, (peak, all_snippets_bytes)


def test_implausible_rate_is_classified_and_flagged(monkeypatch):
    """Noise at hundreds of Hz: the cell is classified on the capped snippets and flagged rate_too_high (its
    rate from every spike), not refused and not a MemoryError."""
    monkeypatch.setattr(detector, "MAX_WAVEFORMS_PER_CELL", 300)
    analyzer = recording_to_analyzer(numpy_recording(_noise(10.0, 5)), threshold=-8.0, baseline_window_ms=None)
    n_all = int(analyzer.sorting.count_num_spikes_per_unit()["0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        units = analyzer.compute("serotonergic").get_data()
    row = units.iloc[0]
    # classified on the capped snippets (on their stable stretch when the seal watch cuts one: docs/seal.md)
    assert 0 < int(row["n_spikes"]) <= 300
    assert row["firing_rate_hz"] == pytest.approx(n_all / 10.0)
    assert row["firing_rate_hz"] > MAX_FIRING_RATE_HZ
    assert "rate_too_high" in row["sero_quality"] and not bool(row["sero_reliable"])


_CHANNEL_SWEEP = """
import json, sys
import numpy as np
from spikeinterface_sero.analyzers import recording_to_analyzer
from spikeinterface_sero.testing import numpy_recording, synthetic_trace

def status(key):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith(key))

n_channels = int(sys.argv[1])
x = synthetic_trace(duration_s=20.0, spike_times_s=np.arange(0.005, 19.995, 0.01))  # 2,000 spikes
recording_to_analyzer(numpy_recording(x[:40_000, None]))  # imports and first-call caches
recording = numpy_recording(np.repeat(x[:, None], n_channels, axis=1))
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # restart the peak (VmHWM) from the current resident set
base = status("VmRSS")
analyzer = recording_to_analyzer(recording)
waveforms = analyzer.get_extension("waveforms").get_data()
print(json.dumps(dict(increase=status("VmHWM") - base, waveform_bytes=int(waveforms.nbytes))))
"""


def _analyzer_peak(n_channels: int) -> dict:
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _CHANNEL_SWEEP, str(n_channels)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak resident set from /proc")
def test_analyzer_memory_is_linear_in_the_channels():
    """One cell per channel: each unit's waveforms hold its own channel only (a ChannelSparsity), so the
    waveforms and the peak grow with the channels, not with their square (dense: 16 channels of 2,000 spikes
    took 625 MB, 4 channels 39 MB)."""
    four, sixteen = _analyzer_peak(4), _analyzer_peak(16)
    one_channel_waveforms = 2_000 * SNIPPET_LENGTH * 4
    assert four["waveform_bytes"] == 4 * one_channel_waveforms
    assert sixteen["waveform_bytes"] == 16 * one_channel_waveforms
    assert sixteen["increase"] < 4 * 1.3 * four["increase"] + 8 * 2**20, (four, sixteen)
    assert sixteen["increase"] < 16 * 4 * 2**20, (four, sixteen)  # ~2.4 MB a channel measured
