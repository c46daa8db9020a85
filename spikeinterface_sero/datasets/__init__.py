"""Fixture factories: a writer of real .abf files and two simulators of dorsal-raphe loose-seal recordings.

Imports only the package's stage-0 modules (``constants``, ``errors``) so that tests and examples of every
stage can use it.
"""

from .abf_writer import AbfInPieces, AbfWriteError, abf_sampling_rate, int16_scaling, write_abf, write_abf_in_pieces
from .artefacts import ARTEFACT_KINDS, simulate_artefact
from .membrane import (
    MEMBRANE_DAYS,
    draw_membrane_params,
    membrane_spike_waveform,
    simulate_membrane_dataset,
    simulate_membrane_recording,
)
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
from .stimulus import simulate_stimulus_train

__all__ = [
    "ARTEFACT_KINDS",
    "simulate_artefact",
    "MEMBRANE_DAYS",
    "draw_membrane_params",
    "membrane_spike_waveform",
    "simulate_membrane_dataset",
    "simulate_membrane_recording",
    "simulate_stimulus_train",
    "AbfInPieces",
    "AbfWriteError",
    "write_abf_in_pieces",
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
