"""Numbers fixed by the published method (Corradetti et al. 2024): every stage reads them from here."""

SAMPLING_FREQUENCY = 40_000.0  # Hz, the rate of the authors' recordings
NBEFORE = 40  # samples before the trigger (1 ms)
NAFTER = 120  # samples after the trigger (3 ms)
SNIPPET_LENGTH = NBEFORE + NAFTER  # 160
MS_BEFORE = 1.0
MS_AFTER = 3.0
DEFAULT_THRESHOLD_PA = -50.0  # the paper's trigger level
MIN_SAMPLING_FREQUENCY = 20_000.0  # below this, 4 ms of 40 kHz shape cannot be recovered
LABELS = ("serotonergic", "non_serotonergic")  # output unit 0, unit 1
DEFAULT_KERNELS = tuple(range(20, 32))
