"""Numbers fixed by the published method (Corradetti et al. 2024): every stage reads them from here."""

SAMPLING_FREQUENCY = 40_000.0  # Hz, the rate of the authors' recordings
SAMPLING_FREQUENCY_TOLERANCE = 1e-4  # relative: within 4 Hz of 40 kHz is 40 kHz (< 0.02 samples over a snippet)
NBEFORE = 40  # samples before the trigger (1 ms)
NAFTER = 120  # samples after the trigger (3 ms)
SNIPPET_LENGTH = NBEFORE + NAFTER  # 160
MS_BEFORE = 1.0
MS_AFTER = 3.0
DEFAULT_THRESHOLD_PA = -50.0  # the paper's trigger level
MIN_SAMPLING_FREQUENCY = 20_000.0  # below this, 4 ms of 40 kHz shape cannot be recovered
LABELS = ("serotonergic", "non_serotonergic")  # output unit 0, unit 1
DEFAULT_KERNELS = tuple(range(20, 32))
DEFAULT_DEAD_TIME_MS = 2.0  # crossings within this time after a trigger are the same spike
DEFAULT_BASELINE_WINDOW_MS = 100.0  # running-median baseline of the detector
DEFAULT_N_BOOT = 1000  # bootstrap resamples of a cell's interval
DEFAULT_CI = 0.95  # coverage of a cell's interval
DEFAULT_MIN_SPIKES = 20  # a call is reliable only with at least this many spikes
POLARITIES = ("negative", "positive")


def is_paper_rate(sampling_frequency: float) -> bool:
    """True when ``sampling_frequency`` is the paper's 40 kHz (within :data:`SAMPLING_FREQUENCY_TOLERANCE`)."""
    return abs(float(sampling_frequency) - SAMPLING_FREQUENCY) <= SAMPLING_FREQUENCY_TOLERANCE * SAMPLING_FREQUENCY
