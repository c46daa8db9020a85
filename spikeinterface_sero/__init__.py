"""spikeinterface-sero: serotonergic / non-serotonergic classification of action currents.

Importing the package is light (no TensorFlow) and registers the ``serotonergic`` SortingAnalyzer
extension with SpikeInterface.
"""

from ._version import __version__
from .errors import SeroError

__all__ = ["__version__", "SeroError"]
