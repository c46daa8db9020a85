"""Training and evaluation of the serotonergic-CNN ensemble.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training").
"""

from .data import (
    NSER,
    SER,
    SpikeDataset,
    balance_classes,
    cap_per_cell,
    concat_datasets,
    dataset_from_arrays,
    dataset_from_csv_folders,
    dataset_from_table,
    noise_masks_from_traces,
    parse_label,
    read_label_table,
    spike_free_starts,
)
from .evaluate import calibration, confusion, evaluate, evaluate_predictions, evaluate_table, write_report
from .splits import (
    LeakageWarning,
    Split,
    cell_kfold,
    check_no_leakage,
    leak_free_split,
    spike_level_split,
    split_by_cell,
    split_by_group,
)
from .synthetic import SyntheticGenerator, choose_masks, make_training_stream, residual_masks, smooth3
from .train import (
    TrainingResult,
    build_fused_model,
    parse_kernels,
    train_ensemble,
    train_from_table,
)

__all__ = [
    "SER",
    "NSER",
    "SpikeDataset",
    "parse_label",
    "read_label_table",
    "dataset_from_table",
    "dataset_from_csv_folders",
    "dataset_from_arrays",
    "concat_datasets",
    "cap_per_cell",
    "balance_classes",
    "spike_free_starts",
    "noise_masks_from_traces",
    "Split",
    "LeakageWarning",
    "leak_free_split",
    "split_by_cell",
    "split_by_group",
    "cell_kfold",
    "spike_level_split",
    "check_no_leakage",
    "smooth3",
    "residual_masks",
    "choose_masks",
    "SyntheticGenerator",
    "make_training_stream",
    "build_fused_model",
    "parse_kernels",
    "train_ensemble",
    "train_from_table",
    "TrainingResult",
    "evaluate",
    "evaluate_predictions",
    "evaluate_table",
    "confusion",
    "calibration",
    "write_report",
]
