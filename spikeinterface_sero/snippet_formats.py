"""Snippets in memory (:class:`Snippets`) and in files: the authors' per-spike CSV folders and ``.npz``.

The formats are described in ``docs/csv-format.md``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arguments import check_choice, check_flag, check_integer, check_path
from .constants import NAFTER, NBEFORE, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from .errors import ParameterError, SeroError, SnippetError
from .files import atomic_path
from .io import check_regular_file

__all__ = [
    "Snippets",
    "cell_id",
    "write_snippet_csv_folder",
    "read_snippet_csv_folder",
    "save_npz",
    "load_npz",
    "CSV_NAME",
]


@dataclass
class Snippets:
    """Aligned action-current snippets of one or more cells.

    Attributes
    ----------
    waveforms : numpy.ndarray
        (n, 160) float32, pA, trigger at index 40, 40 kHz.
    trigger_samples : numpy.ndarray
        (n,) int64, the trigger sample within its segment (40 kHz).
    segment_index : numpy.ndarray
        (n,) int64, the sweep (segment) of each spike.
    unit_ids : numpy.ndarray
        (n,) str, the recording channel / sorting unit of each spike.
    cell_ids : numpy.ndarray
        (n,) str, the cell each spike belongs to (``"<file stem>"`` or ``"<file stem>_ch<id>"``).
    n_dropped_edge : dict
        Per cell, the triggers too close to a sweep edge for a full window (dropped, not padded).
    n_detected : dict
        Per cell, triggers with a full window, before any cap.
    segment_durations_s, segment_t_starts_s : list of float
        Per segment of the recording.
    thresholds_pa : dict
        Per cell, the threshold (relative to baseline) actually used.
    all_trigger_samples, all_segment_index, all_unit_ids : numpy.ndarray or None
        Every detected spike (before the cap), for firing statistics.
    """

    waveforms: np.ndarray
    trigger_samples: np.ndarray
    segment_index: np.ndarray
    unit_ids: np.ndarray
    cell_ids: np.ndarray
    sampling_frequency: float = SAMPLING_FREQUENCY
    source: str | None = None
    detection: dict = field(default_factory=dict)
    n_dropped_edge: dict = field(default_factory=dict)
    n_detected: dict = field(default_factory=dict)
    thresholds_pa: dict = field(default_factory=dict)
    segment_durations_s: list = field(default_factory=list)
    segment_t_starts_s: list = field(default_factory=list)
    all_trigger_samples: np.ndarray | None = None
    all_segment_index: np.ndarray | None = None
    all_unit_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.waveforms.shape[0])

    @property
    def cells(self) -> list[str]:
        """Cell ids in order of first appearance."""
        return list(dict.fromkeys(self.cell_ids.tolist()))

    def select(self, mask) -> Snippets:
        """A copy keeping only the spikes in ``mask`` (boolean or index array)."""
        idx = np.asarray(mask)
        return Snippets(
            self.waveforms[idx],
            self.trigger_samples[idx],
            self.segment_index[idx],
            self.unit_ids[idx],
            self.cell_ids[idx],
            self.sampling_frequency,
            self.source,
            dict(self.detection),
            dict(self.n_dropped_edge),
            dict(self.n_detected),
            dict(self.thresholds_pa),
            list(self.segment_durations_s),
            list(self.segment_t_starts_s),
            self.all_trigger_samples,
            self.all_segment_index,
            self.all_unit_ids,
        )

    def cell_index(self) -> tuple[list[str], np.ndarray]:
        """The cells in order of first appearance and, per spike, the index of its cell among them."""
        cells = self.cells
        lookup = {cell: index for index, cell in enumerate(cells)}
        return cells, np.array([lookup[cell] for cell in np.asarray(self.cell_ids).astype(str).tolist()], np.int64)

    def segment_samples(self) -> list[int]:
        """Samples per segment: from ``segment_durations_s`` when known, else up to the end of the segment's
        last window."""
        if self.segment_durations_s:
            return [int(round(d * SAMPLING_FREQUENCY)) for d in self.segment_durations_s]
        segments = np.asarray(self.segment_index, dtype=np.int64)
        samples = np.asarray(self.trigger_samples, dtype=np.int64)
        n_segments = int(segments.max()) + 1 if segments.size else 0
        return [int(samples[segments == k].max(initial=0)) + NAFTER for k in range(n_segments)]

    def capped(self, max_spikes_per_cell: int | None, seed: int | None = 0) -> Snippets:
        """At most ``max_spikes_per_cell`` spikes per cell, a uniform random subset as SpikeInterface's
        ``random_spikes`` draws it (the cap of :func:`abf_to_snippets`); the firing statistics keep every spike.

        Parameters
        ----------
        max_spikes_per_cell : int or None
            The cap; None keeps every spike.
        seed : int or None, default: 0
            Seed of the selection.

        Returns
        -------
        Snippets
            ``self`` when no cell has more spikes than the cap, else a copy.
        """
        check_cap(max_spikes_per_cell)
        if seed is not None:
            check_integer(seed, "seed", minimum=0)
        if max_spikes_per_cell is None:
            return self
        cells, cell_index = self.cell_index()
        if len(self) == 0 or np.bincount(cell_index).max() <= int(max_spikes_per_cell):
            return self
        num_samples = self.segment_samples()
        keep = spike_cap(
            self.segment_index,
            self.trigger_samples,
            cell_index,
            len(cells),
            num_samples,
            self.sampling_frequency,
            int(max_spikes_per_cell),
            seed,
        )
        result = self.select(keep)
        if result.all_trigger_samples is None:  # the rate, CV and LV still see every spike
            result.all_trigger_samples = self.trigger_samples
            result.all_segment_index = self.segment_index
            result.all_unit_ids = self.unit_ids
        return result

    def __repr__(self) -> str:
        cells = self.cells
        return (
            f"Snippets({len(self)} spikes x {self.waveforms.shape[1] if self.waveforms.ndim == 2 else '?'} "
            f"samples, {len(cells)} cell(s): {', '.join(cells[:4])}{' ...' if len(cells) > 4 else ''})"
        )


def check_snippets(value, name: str = "snippets") -> Snippets:
    """``value`` when it is a :class:`Snippets`; ParameterError naming ``name`` if not."""
    if isinstance(value, Snippets):
        return value
    raise ParameterError(
        f"{name} must be a Snippets (from recording_to_snippets, abf_to_snippets or load_npz), not {value!r:.80}."
    )


def cell_id(stem: str, channel_id, n_channels: int) -> str:
    """The cell name of a recorded channel: the file stem (the authors' names, e.g. ``A140313#073``) when the
    file holds one cell (one current channel), ``<stem>_ch<id>`` when it holds several (even if only one
    of them is read)."""
    return str(stem) if n_channels == 1 else f"{stem}_ch{channel_id}"


def spike_cap(segment_index, sample_index, unit_index, n_units, num_samples, sampling_frequency, cap, seed):
    """Boolean mask of the spikes SpikeInterface's ``random_spikes`` (method "uniform") keeps: the same
    selection as :func:`create_analyzer` with ``max_spikes_per_cell``, for the same seed."""
    from spikeinterface.core import NumpySorting
    from spikeinterface.core.sorting_tools import random_spikes_selection

    vector = np.zeros(
        segment_index.size, dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")]
    )
    vector["sample_index"], vector["unit_index"], vector["segment_index"] = sample_index, unit_index, segment_index
    order = np.lexsort((unit_index, sample_index, segment_index))  # SpikeInterface's spike-vector order
    sorting = NumpySorting(vector[order], sampling_frequency, unit_ids=np.arange(n_units))
    selected = random_spikes_selection(sorting, num_samples, method="uniform", max_spikes_per_unit=int(cap), seed=seed)
    keep = np.zeros(segment_index.size, dtype=bool)
    keep[order[selected]] = True
    return keep


def check_cap(max_spikes_per_cell) -> int | None:
    """``max_spikes_per_cell`` when it is None or a positive whole number; ParameterError if not."""
    if max_spikes_per_cell is None:
        return None
    return check_integer(max_spikes_per_cell, "max_spikes_per_cell", minimum=1)


# --------------------------------------------------------------------------------------------------------------
# the authors' per-spike CSV format and npz

#: the name of one spike's file in the authors' per-spike CSV folders: ``<cell>_trigger_<sample>.csv``
CSV_NAME = re.compile(r"^(?P<cell>.+)_trigger_(?P<sample>\d+)\.csv$")
_CSV_HEADER = "Time (s),Current (pA)"
#: the end of the message about a malformed file: the argument that skips such files instead
SKIP_HINT = ", or pass on_bad='skip' to leave such files out"


def write_snippet_csv_folder(snippets: Snippets, folder, *, overwrite: bool = False) -> int:
    """Write one ``<cell>_trigger_<sample>.csv`` per spike (header + 160 rows: time in s, current in pA),
    the authors' format. For multi-sweep recordings ``<sample>`` counts from the start of the first sweep
    (sweeps laid end to end). Values are written with 9 significant digits: float32 round-trips exactly.
    Returns the number of files written."""
    check_snippets(snippets)
    folder = check_path(folder, "folder")
    overwrite = check_flag(overwrite, "overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    fs = snippets.sampling_frequency
    offsets = (
        np.concatenate([[0], np.cumsum(np.round(np.asarray(snippets.segment_durations_s) * fs))]).astype(np.int64)
        if snippets.segment_durations_s
        else np.zeros(1, np.int64)
    )
    rel = np.arange(SNIPPET_LENGTH) - NBEFORE
    triggers = [
        int(snippets.trigger_samples[k] + offsets[int(snippets.segment_index[k])]) for k in range(len(snippets))
    ]
    paths = [folder / f"{snippets.cell_ids[k]}_trigger_{s}.csv" for k, s in enumerate(triggers)]
    if not overwrite:  # check them all first: a refusal must not leave half the cell written
        for path in paths:
            if path.exists():
                raise SeroError(f"{path} exists; pass overwrite=True (CLI: --overwrite) or choose another folder.")
    for k, (s, path) in enumerate(zip(triggers, paths)):
        t = (s + rel) / fs
        body = "\n".join(f"{ti:.9g},{xi:.9g}" for ti, xi in zip(t, snippets.waveforms[k]))
        path.write_text(_CSV_HEADER + "\n" + body + "\n")
    return len(snippets)


def read_snippet_csv_folder(folder, *, on_bad: str = "raise"):
    """Read a folder of the authors' per-spike CSV files.

    Returns ``(X, cell_ids, trigger_samples)``: X (n, 160) float32 current in pA (the second column),
    sorted by cell then trigger. Files whose name does not match ``<cell>_trigger_<sample>.csv`` are ignored;
    a matching file that does not hold 160 rows of two numbers raises SnippetError (``on_bad="skip"`` skips
    it with a warning instead: the authors' loader silently kept only 160-row files).
    """
    folder = check_path(folder, "folder")
    check_choice(on_bad, "on_bad", ("raise", "skip"))
    if not folder.is_dir():
        raise SnippetError(f"{folder} is not a folder of <cell>_trigger_<sample>.csv files.")
    entries = []
    for p in folder.iterdir():
        m = CSV_NAME.match(p.name)
        if m and p.is_file():
            entries.append((m["cell"], int(m["sample"]), p))
    entries.sort(key=lambda e: (e[0], e[1]))
    X, cells, samples, bad = [], [], [], []
    for cell, s, p in entries:
        try:
            arr = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
            ok = arr.shape == (SNIPPET_LENGTH, 2) and np.isfinite(arr).all()
        except ValueError:
            ok = False
        if not ok:
            if on_bad == "raise":
                raise SnippetError(
                    f"{p.name} is not a 160-row, 2-column (time, current) snippet file. Fix or remove it{SKIP_HINT}."
                )
            bad.append(p.name)
            continue
        X.append(arr[:, 1])
        cells.append(cell)
        samples.append(s)
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} malformed snippet file(s) in {folder}: {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}",
            stacklevel=2,
        )
    if not X:
        raise SnippetError(f"{folder} holds no <cell>_trigger_<sample>.csv snippet files.")
    return (np.asarray(X, dtype=np.float32), np.array(cells, dtype=str), np.array(samples, dtype=np.int64))


def save_npz(snippets: Snippets, path) -> Path:
    """Save snippets (waveforms in pA, triggers, segments, units, cells, and detection settings) as .npz,
    atomically (a crash leaves the old file or the new one). numpy's rule: ``.npz`` is added to a name
    without it. Every detected spike (``all_*``, before a cap) is kept too, for the firing statistics."""
    import json

    check_snippets(snippets)
    path = check_path(path, "path")
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    every_spike = {}
    if snippets.all_trigger_samples is not None:
        every_spike = dict(
            all_trigger_samples=snippets.all_trigger_samples,
            all_segment_index=snippets.all_segment_index,
            all_unit_ids=np.asarray(snippets.all_unit_ids).astype(str),
        )
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            **every_spike,
            waveforms=snippets.waveforms,
            trigger_samples=snippets.trigger_samples,
            segment_index=snippets.segment_index,
            unit_ids=snippets.unit_ids.astype(str),
            cell_ids=snippets.cell_ids.astype(str),
            sampling_frequency=np.float64(snippets.sampling_frequency),
            meta=np.array(
                json.dumps(
                    dict(
                        source=snippets.source,
                        detection=snippets.detection,
                        n_dropped_edge=snippets.n_dropped_edge,
                        n_detected=snippets.n_detected,
                        thresholds_pa=snippets.thresholds_pa,
                        segment_durations_s=snippets.segment_durations_s,
                        segment_t_starts_s=snippets.segment_t_starts_s,
                    )
                )
            ),
        )
    return path


_EVERY_SPIKE = ("all_trigger_samples", "all_segment_index", "all_unit_ids")


# deflate gives at most about 1032 bytes out per byte in (RFC 1951's longest match per 2-bit code, plus slack)
_MAX_DEFLATE_RATIO = 1100


def _check_npz_sizes(path: Path) -> None:
    """Refuse an .npz whose members declare more data than the file can hold, before anything is allocated.

    ``np.load`` allocates each array from the shape its ``.npy`` header declares; a forged header (4 billion
    values in a 1 kB file) would ask for gigabytes. Each member's header is read alone and its size checked
    against the member's uncompressed size in the zip directory, and that against the member's stored size
    (deflate cannot expand more than about 1000-fold).
    """
    import zipfile

    size = check_regular_file(path, SnippetError, "a snippets .npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.file_size > _MAX_DEFLATE_RATIO * member.compress_size + 4096 or member.compress_size > size:
                    raise SnippetError(
                        f"{path}: its member {member.filename} declares {member.file_size} bytes in "
                        f"{member.compress_size} stored bytes of a {size}-byte file; the file is corrupt. "
                        "Write it again with sero snippets --out or spikeinterface_sero.snippets.save_npz."
                    )
                if member.filename.endswith(".npy"):
                    _check_npy_header(path, archive, member)
    except zipfile.BadZipFile as e:
        raise SnippetError(f"{path} is not a snippets .npz written by spikeinterface-sero ({e}).") from None


def _check_npy_header(path: Path, archive, member) -> None:
    """Raise SnippetError when an .npy member's header declares more bytes than the member holds."""
    from numpy.lib import format as npy_format

    with archive.open(member) as handle:
        try:
            version = npy_format.read_magic(handle)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
        except (ValueError, TypeError, OSError) as e:
            raise SnippetError(f"{path}: its member {member.filename} is not a numpy array ({e}).") from None
        declared = int(np.prod(shape, dtype=object)) * max(dtype.itemsize, 1)
        available = member.file_size - handle.tell()
    if dtype.hasobject or declared > available:
        raise SnippetError(
            f"{path}: its member {member.filename} declares a {shape} {dtype} array ({declared} bytes) but holds "
            f"only {max(available, 0)} bytes; the file is corrupt or forged. Write it again with sero snippets "
            "--out or spikeinterface_sero.snippets.save_npz."
        )


def load_npz(path) -> Snippets:
    """Read snippets written by :func:`save_npz` (or ``sero snippets --out x.npz``).

    Parameters
    ----------
    path : str or Path
        The .npz file.

    Returns
    -------
    Snippets
    """
    import json

    path = check_path(path, "path")
    _check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z else {}
            return Snippets(
                waveforms=z["waveforms"].astype(np.float32),
                trigger_samples=z["trigger_samples"],
                segment_index=z["segment_index"],
                unit_ids=z["unit_ids"],
                cell_ids=z["cell_ids"],
                sampling_frequency=float(z["sampling_frequency"]),
                **{name: z[name] for name in _EVERY_SPIKE if name in z},
                **meta,
            )
    except (OSError, KeyError, ValueError) as e:
        raise SnippetError(f"{path} is not a snippets .npz written by spikeinterface-sero ({e}).") from None
