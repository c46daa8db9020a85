"""The former ``snippets`` module, kept as a re-export: detection is in :mod:`.detection`, analyzer building
in :mod:`.analyzers` and the snippet formats in :mod:`.snippet_formats`. New code imports from those.
"""

from .analyzers import (
    POLARITY_PROPERTY,
    abf_to_analyzer,
    check_analyzer_waveforms,
    create_analyzer,
    main_channel_waveforms,
    own_channel_sparsity,
    recording_to_analyzer,
    snippets_from_analyzer,
    snippets_to_sorting,
)
from .detection import DetectionParams, abf_to_snippets, detection_trace, recording_to_snippets
from .snippet_formats import (
    Snippets,
    cell_id,
    load_npz,
    read_snippet_csv_folder,
    save_npz,
    write_snippet_csv_folder,
)

__all__ = [
    "POLARITY_PROPERTY",
    "main_channel_waveforms",
    "Snippets",
    "DetectionParams",
    "recording_to_snippets",
    "abf_to_snippets",
    "snippets_to_sorting",
    "own_channel_sparsity",
    "create_analyzer",
    "abf_to_analyzer",
    "recording_to_analyzer",
    "snippets_from_analyzer",
    "check_analyzer_waveforms",
    "cell_id",
    "write_snippet_csv_folder",
    "read_snippet_csv_folder",
    "save_npz",
    "load_npz",
    "detection_trace",
]
