"""Build the bundled demonstration model from simulated recordings with the package's own pipeline.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.make_demo").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from ..constants import DEFAULT_KERNELS, DEFAULT_PRECISION
from ..datasets.simulator import VARIED_DAYS, simulate_dataset
from ..model import demo_model_folder
from ..validation import record_rig, validate
from .cross_validation import calibration_from_cross_validation, cross_validate, headline_figures
from .data import dataset_from_table
from .fused import PRECISIONS
from .train import RECIPES, get_recipe, train_from_table

DEMO_CELLS = {"serotonergic": 12, "atypical_serotonergic": 10, "non_serotonergic": 18}
#: the demo's rig validation: fresh cells of its own simulator (new seeds, new days), none seen in training; the
#: varied days the demo was trained on and the simulator's classic (default) days, so that a new day of either
#: is judged against days like it (docs/validate.md, "Measured")
DEMO_RIG_CELLS = {"serotonergic": 18, "atypical_serotonergic": 12, "non_serotonergic": 30}
DEMO_RIG_CLASSIC_CELLS = {"serotonergic": 8, "atypical_serotonergic": 4, "non_serotonergic": 12}
DEMO_RIG_NAME = "the demo's simulator (datasets.simulate_dataset: VARIED_DAYS and classic days)"

DEMO_DESCRIPTION = (
    "DEMONSTRATION MODEL, trained on SIMULATED recordings only (the spikeinterface_sero.datasets simulator: "
    "typical serotonergic, atypical serotonergic and non-serotonergic loose-seal action currents over several "
    "simulated recording days). It has never seen a real neuron and is NOT for scientific conclusions: its "
    "labels for real cells mean nothing. It exists to show the pipeline working and to give examples and "
    "tests a model to load. For real data, import the authors' published models (`sero import-models`) or "
    "train on your own labelled recordings (`sero train`)."
)


def default_demo_folder() -> Path:
    return demo_model_folder()


def make_demo(
    out=None,
    *,
    seed: int = 0,
    n_cells: dict | None = None,
    duration_s: float = 120.0,
    n_groups: int = 8,
    kernels=DEFAULT_KERNELS,
    recipe="default",
    day_ranges: dict | None = VARIED_DAYS,
    epochs: int | None = 10,
    patience: int | None = None,
    synthetic: int | None = None,
    cross_validation: bool = False,
    cv_folds: int | None = None,
    max_per_cell: int = 300,
    val_fraction: float = 0.125,
    test_fraction: float = 0.25,
    precision: str = DEFAULT_PRECISION,
    work_dir=None,
    progress_bar: bool = True,
    overwrite: bool = True,
):
    """Simulate, train, evaluate and write the demo model folder (default
    ``spikeinterface_sero/models/demo/``). Returns the :class:`~spikeinterface_sero.training.train.TrainingResult`.

    The cells are simulated over ``n_groups`` days whose recording conditions vary as ``day_ranges`` says
    (``VARIED_DAYS``: noise level and spectrum, hum, drift, electrode filter, amplitude, overlaps; None for
    the classic days) and trained with ``recipe`` (``"default"``; ``"paper"`` for the published one);
    ``epochs``, ``patience`` and ``synthetic`` left at None take the recipe's values. With
    ``cross_validation=True`` the same recipe is first cross-validated by day
    (:func:`~spikeinterface_sero.training.cross_validation.cross_validate`, one model per day, or per
    ``cv_folds`` groups of whole days): its pooled cell-level figures head the card and the calibration is
    fitted on its held-out cells.
    """
    out = Path(out) if out is not None else default_demo_folder()
    counts = dict(DEMO_CELLS if n_cells is None else n_cells)
    start_time = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sero-demo-", dir=work_dir) as temporary_folder:
        recordings = simulate_dataset(
            counts,
            duration_s=duration_s,
            seed=seed,
            out_dir=temporary_folder,
            n_groups=n_groups,
            day_ranges=day_ranges,
        )
        simulation_seconds = time.perf_counter() - start_time
        cell_types = {recording.file.stem: recording.cell_type for recording in recordings}
        chosen_recipe = get_recipe(recipe)
        calibration, headline = None, None
        if cross_validation:
            dataset = dataset_from_table(Path(temporary_folder) / "labels.csv", max_per_cell=max_per_cell, seed=seed)
            folds = cross_validate(
                dataset,
                recipe=chosen_recipe,
                kernels=kernels,
                seed=seed,
                epochs=epochs,
                synthetic=synthetic,
                cell_types=cell_types,
                precision=precision,
                n_folds=cv_folds,
            )
            calibration = calibration_from_cross_validation(folds)
            headline = {"cross-validation by day": headline_figures(folds)}
        result = train_from_table(
            Path(temporary_folder) / "labels.csv",
            out,
            kernels=kernels,
            recipe=chosen_recipe,
            epochs=epochs,
            patience=patience,
            synthetic=synthetic,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            split="group",
            max_per_cell=max_per_cell,
            balance=True,
            description=DEMO_DESCRIPTION,
            name="Demonstration ensemble (simulated data, not for scientific use)",
            precision=precision,
            progress_bar=progress_bar,
            overwrite=overwrite,
            report=True,
            demo=True,
            source_name="labels.csv of the simulated dataset (temporary folder; see simulated_data)",
            extra_training_info={
                "simulated_data": (
                    f"spikeinterface_sero.datasets.simulate_dataset(seed={seed}): "
                    + ", ".join(f"{v} {k}" for k, v in counts.items())
                    + f" cells, {duration_s:g} s each at 40 kHz, over {n_groups} simulated days"
                    + (", day conditions drawn from " + ", ".join(sorted(day_ranges)) if day_ranges else "")
                ),
                "NOT_FOR_SCIENTIFIC_USE": "trained on simulated recordings only",
            },
            calibration=calibration,
            headline_metrics=headline,
        )
    # per cell type accuracy on the held-out cells (atypical SER is the hard case)
    if result.evaluation is not None and result.report_dir is not None:
        cells = result.evaluation["cells"]
        by_type = {}
        for cell_id, row in cells.iterrows():
            cell_type = cell_types.get(str(cell_id), "?")
            type_counts = by_type.setdefault(cell_type, {"cells": 0, "correct": 0})
            type_counts["cells"] += 1
            type_counts["correct"] += int(bool(row["correct"]))
        result.extra["held_out_by_cell_type"] = by_type
        (result.report_dir / "by_cell_type.json").write_text(json.dumps(by_type, indent=1) + "\n")
    result.extra["seconds_total"] = time.perf_counter() - start_time
    result.extra["seconds_simulation"] = simulation_seconds
    return result


def _labels(recordings, subfolder: str):
    """The ``sero validate`` table rows of simulated cells written in ``subfolder``."""
    import pandas as pd

    return pd.DataFrame(
        {
            "file": [f"{subfolder}/{r.file.name}" for r in recordings],
            "label": [r.label for r in recordings],
            "group": [r.group for r in recordings],
            "type": [
                {"serotonergic": "typical", "atypical_serotonergic": "atypical"}.get(r.cell_type, "")
                for r in recordings
            ],
        }
    )


def _forget_rigs(folder: Path) -> None:
    """Remove the folder's stored rig validation (the demo's is refitted whole, never added to)."""
    from ..files import atomic_path

    info_path = folder / "model_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.pop("rig_validation", None) is not None:
        with atomic_path(info_path) as temporary:
            temporary.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def validate_demo(
    folder=None,
    *,
    seed: int = 1000,
    n_groups: int = 10,
    n_classic_groups: int = 4,
    duration_s: float = 120.0,
    work_dir=None,
):
    """Fit and store the demo's rig validation (``docs/validate.md``), replacing the one stored; the members are
    not retrained. The cells: :data:`DEMO_RIG_CELLS` fresh simulated cells over ``n_groups`` new varied days
    (``heldout01`` ..., seed ``seed``) and :data:`DEMO_RIG_CLASSIC_CELLS` over ``n_classic_groups`` classic days
    (``classic01`` ..., seed ``seed + 1``). The page goes to ``evaluation/rig_validation/`` of the folder.
    Returns the :class:`~spikeinterface_sero.validation.ValidationResult`."""
    import pandas as pd

    folder = Path(folder) if folder is not None else default_demo_folder()
    with tempfile.TemporaryDirectory(prefix="sero-demo-rig-", dir=work_dir) as temporary_folder:
        data = Path(temporary_folder) / "cells"
        varied = simulate_dataset(
            DEMO_RIG_CELLS,
            duration_s,
            seed=seed,
            out_dir=data / "varied",
            n_groups=n_groups,
            day_ranges=VARIED_DAYS,
            day_prefix="heldout",
        )
        classic = simulate_dataset(
            DEMO_RIG_CLASSIC_CELLS,
            duration_s,
            seed=seed + 1,
            out_dir=data / "classic",
            n_groups=n_classic_groups,
            day_prefix="classic",
        )
        labels = pd.concat([_labels(varied, "varied"), _labels(classic, "classic")], ignore_index=True)
        labels.to_csv(data / "validation_labels.csv", index=False)
        result = validate(
            folder,
            data / "validation_labels.csv",
            report_dir=folder / "evaluation" / "rig_validation",
            out=Path(temporary_folder) / "copy",
            rig_name=DEMO_RIG_NAME,
            overwrite=True,
        )
    result.rig["simulated_data"] = (
        f"simulate_dataset(seed={seed}, day_prefix='heldout', day_ranges=VARIED_DAYS): "
        + ", ".join(f"{v} {k}" for k, v in DEMO_RIG_CELLS.items())
        + f" cells, {n_groups} days; simulate_dataset(seed={seed + 1}, day_prefix='classic'): "
        + ", ".join(f"{v} {k}" for k, v in DEMO_RIG_CLASSIC_CELLS.items())
        + f" cells, {n_classic_groups} days; {duration_s:g} s each"
    )
    _forget_rigs(folder)
    record_rig(folder, result.rig)
    result.model_folder = folder
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the bundled demo model (simulated data, not for science).")
    parser.add_argument("--out", default=None, help="model folder (default: spikeinterface_sero/models/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--recipe", default="default", choices=sorted(RECIPES), help="training recipe")
    parser.add_argument(
        "--synthetic", type=int, default=None, help="streamed synthetic samples per epoch (default: the recipe's)"
    )
    parser.add_argument("--classic-days", action="store_true", help="simulate the classic days (noise, hum only)")
    parser.add_argument("--cv", action="store_true", help="also cross-validate leaving one day out (slow)")
    parser.add_argument(
        "--cv-folds", type=int, default=None, help="folds of whole days for --cv (default: one per day)"
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per simulated cell")
    parser.add_argument("--precision", default=DEFAULT_PRECISION, choices=["auto", *PRECISIONS])
    parser.add_argument("--quick", action="store_true", help="a small fast run (2 kernels, 2 epochs) to try it")
    parser.add_argument(
        "--rig-validation-only", action="store_true", help="only refit the demo's rig validation (no training)"
    )
    args = parser.parse_args(argv)
    if args.rig_validation_only:
        result = validate_demo(args.out)
        json.dump({"rig": result.rig["name"], "figures": result.rig["figures"]}, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return 0
    quick_kwargs = {}
    if args.quick:
        quick_kwargs = dict(
            kernels=[20, 25],
            n_cells={"serotonergic": 5, "atypical_serotonergic": 2, "non_serotonergic": 6},
            n_groups=4,
            val_fraction=0.25,
            test_fraction=0.25,
        )
    result = make_demo(
        args.out,
        seed=args.seed,
        epochs=2 if args.quick else args.epochs,
        recipe=args.recipe,
        synthetic=args.synthetic,
        day_ranges=None if args.classic_days else VARIED_DAYS,
        cross_validation=args.cv,
        cv_folds=args.cv_folds,
        duration_s=30.0 if args.quick else args.duration,
        precision=args.precision,
        **quick_kwargs,
    )
    summary = result.summary()
    summary["held_out_by_cell_type"] = result.extra.get("held_out_by_cell_type")
    summary["seconds_total"] = result.extra.get("seconds_total")
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
