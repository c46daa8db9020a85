"""Fixture factories: a writer of real .abf files and a simulator of dorsal-raphe loose-seal recordings.

Imports only the package's stage-0 modules (``constants``, ``errors``) so that tests and examples of every
stage can use it.
"""

from .abf_writer import AbfWriteError, abf_sampling_rate, int16_scaling, write_abf
from .artefacts import ARTEFACT_KINDS, simulate_artefact
from .simulator import (
    CELL_TYPES,
    VARIED_DAYS,
    SimulatedRecording,
    SimulatorError,
    dataset_table,
    draw_cell_params,
    simulate_dataset,
    simulate_drn_recording,
    spike_waveform,
)

__all__ = [
    "ARTEFACT_KINDS",
    "simulate_artefact",
    "AbfWriteError",
    "abf_sampling_rate",
    "int16_scaling",
    "write_abf",
    "CELL_TYPES",
    "VARIED_DAYS",
    "SimulatedRecording",
    "SimulatorError",
    "dataset_table",
    "draw_cell_params",
    "simulate_dataset",
    "simulate_drn_recording",
    "spike_waveform",
]
