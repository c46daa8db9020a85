"""spikeinterface-sero: serotonergic / non-serotonergic classification of action currents.

Importing the package registers the ``serotonergic`` SortingAnalyzer extension; it imports no TensorFlow
and changes no environment variable.
"""

from ._version import __version__
from .analyzers import abf_to_analyzer, recording_to_analyzer
from .errors import SeroError
from .extension import compute_serotonergic, load_sorting_analyzer, serotonergic_label_units
from .io import abf_channels, read_abf
from .model import load_model
from .pipeline import classify_files

__all__ = [
    "__version__",
    "SeroError",
    "read_abf",
    "abf_channels",
    "abf_to_analyzer",
    "recording_to_analyzer",
    "compute_serotonergic",
    "serotonergic_label_units",
    "load_sorting_analyzer",
    "load_model",
    "classify_files",
]
