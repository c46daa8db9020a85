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
#: compute precision of training: "auto" = bfloat16 where the hardware computes it natively, else float32
DEFAULT_PRECISION = "auto"
DEFAULT_DEAD_TIME_MS = 2.0  # crossings within this time after a trigger are the same spike
DEFAULT_BASELINE_WINDOW_MS = 100.0  # running-median baseline of the detector
MAX_N_BOOT = 100_000  # bootstrap resamples: above this the informational interval costs minutes per cell
DEFAULT_N_BOOT = 1000  # bootstrap resamples of a cell's interval
DEFAULT_CI = 0.95  # coverage of a cell's interval
DEFAULT_MIN_SPIKES = 20  # a call is reliable only with at least this many spikes
# snippets kept per cell when no cap is given: beyond, a uniform random subset (SpikeInterface's random_spikes),
# so memory does not grow with the number of crossings; the counts and firing statistics use every spike.
# 50 Hz (MAX_FIRING_RATE_HZ, docs/quality.md) for 10 minutes: a DRN neuron rarely gets there, noise in seconds
MAX_WAVEFORMS_PER_CELL = 30_000
POLARITIES = ("negative", "positive")


def is_paper_rate(sampling_frequency: float) -> bool:
    """True when ``sampling_frequency`` is the paper's 40 kHz (within :data:`SAMPLING_FREQUENCY_TOLERANCE`)."""
    return abs(float(sampling_frequency) - SAMPLING_FREQUENCY) <= SAMPLING_FREQUENCY_TOLERANCE * SAMPLING_FREQUENCY


# Is this an action current? (per cell; the reasons and sources are in docs/quality.md)
MAX_FIRING_RATE_HZ = 50.0  # DRN neurons fire at 0.4-3 Hz (5-HT) and up to ~20-30 Hz (non-5-HT) in slices
SHORT_ISI_MS = 4.0  # shorter intervals break a DRN neuron's refractoriness
MAX_SHORT_ISI_FRACTION = 0.02
MIN_SNR = 5.0  # trough depth over the robust noise SD of the pre-trigger baseline
MIN_OUTWARD_RATIO = 0.08  # the outward (positive) phase after the trough, relative to the trough depth
MAX_OUTWARD_RATIO = 2.0  # an outward phase far larger than the inward peak is a step or a pulse
MAX_END_OFFSET_RATIO = 0.4  # the mean snippet returns towards baseline by the end of the window
MAX_HALF_WIDTH_MS = 1.0  # width of the inward peak at half its depth
MIN_SHAPE_CONSISTENCY = 0.6  # median correlation of a cell's spikes with their mean
MAX_CLIPPED_FRACTION = 0.1  # spikes whose trough is flat at the amplifier's range
PEAK_EDGE_SAMPLES = 20  # an outward peak in the last 0.5 ms of the window is its edge (UDI > ~2.5 ms), not a spike
# Is this like what the model was trained on? (docs/quality.md, "Like the training data")
MAX_TRAINING_SHAPES = 128  # cell shapes a model folder keeps to describe its training snippets
TRAINING_DISTANCE_QUANTILE = 0.95  # of the training cells' own leave-one-out nearest-neighbour distances
TRAINING_DISTANCE_MARGIN = 2.0  # a cell is unlike the training data beyond this many times that quantile
LAYER_NORM_EPSILON = 1e-3  # the members' LayerNormalization epsilon: the model sees each snippet z-scored
# Honest figures on small sets: fewer evaluation cells, cells of one class, or groups than these get a warning
MIN_EVALUATION_CELLS = 20
MIN_CELLS_PER_CLASS = 5
MIN_EVALUATION_GROUPS = 3
# A guarantee on the user's rig (docs/validate.md)
DEFAULT_CONFORMAL_LEVEL = 0.90  # per-class coverage of the conformal sets; 9 labelled cells per class can reach it
RIG_FINGERPRINT_MARGIN = 0.5  # a cell is unlike a rig beyond this share of the rig's own span outside its range
MIN_CALIBRATION_CELLS = 10  # a temperature is fitted only on at least this many held-out cells ...
MIN_CALIBRATION_CELLS_PER_CLASS = 4  # ... with at least this many of each class
MAX_TEMPERATURE = 4.0  # temperatures are limited to [1 / MAX_TEMPERATURE, MAX_TEMPERATURE]
# Is this a stimulus or pacing artefact? (per cell; docs/quality.md, "stimulus_artefact")
MIN_STIMULUS_EVENTS = 5  # fewer events (or intervals) say nothing about periodicity or identity
MAX_STIMULUS_JITTER_MS = 0.1  # robust SD of the intervals: a neuron's is >= ~10 ms (CV >= 0.05 at <= 5 Hz)
MAX_STIMULUS_AMPLITUDE_SPREAD = 0.01  # robust SD of the inward peak depths over their median
MIN_ACTION_CURRENT_ONSET_MS = 0.03  # 10-90 % leading edge of the mean event: faster is a digital edge
RIG_DENSITY_LEVEL = 0.999  # a cell's noise spectrum is unlike a rig's outside this Gaussian prediction region
MIN_FINGERPRINT_DAYS = 3  # with cells of this many days, a rig's limits come from each cell's distance to other days
RIG_SHAPE_QUANTILE = (
    0.99  # a cell's shape is unlike a rig's beyond this quantile of its cells' own (other-day) nearest distances
)
RIG_JOINT_QUANTILE = 0.99  # a cell near the limits of all rig checks at once: beyond this quantile of the rig's own
# Is a session (a day's cells) like the rig? (docs/validate.md, "Sessions")
MIN_SESSION_CELLS = 5  # fewer cells of one session: no session judgement, each cell is judged alone
