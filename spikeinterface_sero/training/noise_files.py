"""Noise masks cut from the spike-free stretches of unlabelled recordings (``sero adapt --unlabelled``).

The synthetic spikes of an adaptation (``training/synthetic.py``) are smoothed spikes of the labelled cells
plus noise masks; here the masks may also come from a lab's recordings that carry no label (docs/adapt.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import DEFAULT_THRESHOLD_PA, SAMPLING_FREQUENCY
from ..detection import recording_to_snippets
from ..errors import ParameterError
from ..io import read_abf
from .data import noise_masks_from_traces

__all__ = ["DEFAULT_MASKS_PER_FILE", "noise_masks_from_files", "unlabelled_files"]

#: the cap on the noise masks cut from one unlabelled file (all its channels together), as many as
#: ``dataset_from_table`` cuts per labelled cell: many unlabelled files cannot swamp the labelled cells' own
DEFAULT_MASKS_PER_FILE = 64


def unlabelled_files(paths, name: str = "unlabelled") -> list[Path]:
    """The .abf files that ``paths`` name: files as given, folders searched for .abf files (recursively).

    Parameters
    ----------
    paths : str, Path, sequence of them, or None
        Files or folders.
    name : str, default: "unlabelled"
        The argument's name in the caller's interface (``"--unlabelled"`` from the CLI), for the error.

    Returns
    -------
    list of Path
        Sorted within each folder, in the order given, each file once.
    """
    if paths is None:
        return []
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for item in items:
        if not isinstance(item, (str, Path)) or not str(item).strip():
            raise ParameterError(f"{name} must name .abf files or folders that hold them, not {item!r}.")
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".abf")
            if not found:
                raise ParameterError(f"{name}: the folder {path} holds no .abf files; name .abf files or their folder.")
            out.extend(found)
        elif not path.exists():
            raise ParameterError(f"{name}: {path} does not exist; name .abf files or folders that hold them.")
        elif path.suffix.lower() != ".abf":
            raise ParameterError(f"{name}: {path} is not an .abf file; name .abf files or folders that hold them.")
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def noise_masks_from_files(
    files,
    *,
    masks_per_file: int = DEFAULT_MASKS_PER_FILE,
    threshold: float = DEFAULT_THRESHOLD_PA,
    margin_ms: float = 5.0,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """Up to ``masks_per_file`` mean-subtracted noise masks from each recording's spike-free stretches.

    Every current channel of a file is read (:func:`~spikeinterface_sero.io.read_abf`) and its spikes
    detected at ``threshold`` as for the labelled cells; windows keep ``margin_ms`` away from every detected
    spike (:func:`~spikeinterface_sero.training.data.noise_masks_from_traces`). A file whose channels give
    more masks than the cap keeps a random (seeded) ``masks_per_file`` of them.

    Parameters
    ----------
    files : sequence of Path
        The .abf files (:func:`unlabelled_files`).
    masks_per_file : int, default: 64
        The cap per file.
    threshold : float, default: -50.0
        The detection threshold (pA).
    margin_ms : float, default: 5.0
        Distance from every detected spike.
    seed : int, default: 0
        Seed of the choice of windows.

    Returns
    -------
    masks : (m, 160) float32 numpy.ndarray
        The masks of every file, in file order.
    per_file : dict
        File path -> number of masks cut from it.
    """
    margin = int(round(margin_ms * SAMPLING_FREQUENCY / 1000.0))
    parts, per_file = [], {}
    for number, path in enumerate(files):
        recording = read_abf(path)
        snippets = recording_to_snippets(recording, threshold=threshold, max_spikes_per_cell=1, seed=seed)
        units = np.asarray(snippets.all_unit_ids).astype(str)
        segments = np.asarray(snippets.all_segment_index)
        triggers = np.asarray(snippets.all_trigger_samples)
        masks = []
        for channel in recording.channel_ids:
            traces = [
                recording.get_traces(segment_index=s, channel_ids=[channel], return_in_uV=True)[:, 0]
                for s in range(recording.get_num_segments())
            ]
            selected = units == str(channel)
            masks.append(
                noise_masks_from_traces(
                    traces,
                    [triggers[selected & (segments == s)] for s in range(len(traces))],
                    n_masks=masks_per_file,
                    margin=margin,
                    rng=np.random.default_rng([seed, number, len(masks)]),
                )
            )
        masks = np.concatenate(masks)
        if len(masks) > masks_per_file:
            masks = masks[np.sort(np.random.default_rng([seed, number]).choice(len(masks), masks_per_file, False))]
        parts.append(masks)
        per_file[str(path)] = int(len(masks))
    masks = np.concatenate(parts) if parts else np.zeros((0, 160), dtype=np.float32)
    return masks.astype(np.float32), per_file
