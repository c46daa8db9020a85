"""spikeinterface-sero: serotonergic / non-serotonergic classification of action currents.

Importing the package is light (no TensorFlow) and registers the ``serotonergic`` SortingAnalyzer
extension with SpikeInterface.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter, not the user's business

from ._version import __version__  # noqa: E402
from .errors import SeroError
from .extension import ComputeSerotonergic, compute_serotonergic, load_sorting_analyzer
from .io import abf_channels, read_abf
from .snippets import (
    Snippets,
    abf_to_analyzer,
    abf_to_snippets,
    read_snippet_csv_folder,
    recording_to_analyzer,
    recording_to_snippets,
    snippets_from_analyzer,
    write_snippet_csv_folder,
)

__all__ = [
    "__version__",
    "SeroError",
    "ComputeSerotonergic",
    "compute_serotonergic",
    "load_sorting_analyzer",
    "read_abf",
    "abf_channels",
    "Snippets",
    "abf_to_snippets",
    "abf_to_analyzer",
    "recording_to_snippets",
    "recording_to_analyzer",
    "snippets_from_analyzer",
    "read_snippet_csv_folder",
    "write_snippet_csv_folder",
]
