"""Training recipes (every setting that is not the data, the kernels or the seed) and the kernel sizes.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.train").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace

from ..constants import DEFAULT_KERNELS
from ..errors import TrainingError
from .synthetic import Augmentation

PUBLISHED_DEFAULTS = {
    "kernels": list(DEFAULT_KERNELS),
    "optimizer": "Adam (learning rate 1e-3, Keras defaults)",
    "loss": "binary cross-entropy on the 2 sigmoid units (one-hot targets)",
    "epochs": 25,
    "batch_size": 64,
    "early_stopping": "validation loss, patience 10, best weights restored",
}


@dataclass(frozen=True)
class Recipe:
    """A named way of training: every setting that is not the data, the kernels or the seed.

    Parameters
    ----------
    name : str
        Its name (``"paper"``, ``"default"``, ``"real_only"``, or your own).
    epochs : int, default: 25
        Most epochs (early stopping may end sooner).
    batch_size : int, default: 64
        Samples per batch.
    patience : int, default: 10
        Epochs without a better validation loss before a member stops.
    learning_rate : float, default: 1e-3
        Adam's learning rate.
    early_stopping : str, default: "per_member"
        ``"per_member"``, ``"joint"`` or ``"none"``.
    balance : bool, default: True
        Subsample the majority class of the training and validation cells (the published setting).
    synthetic_ratio : float, default: 1.0
        Synthetic samples streamed per epoch for each real training spike (0: real spikes only).
    n_masks : int, default: 600
        Noise masks (the published 600).
    noise : str, default: "auto"
        Mask source: ``"auto"``, ``"recording"`` or ``"residual"``.
    augmentation : Augmentation, default: Augmentation()
        Changes of recording conditions applied to the synthetic samples (none by default).
    description : str, default: ""
        One sentence on what it is.
    """

    name: str
    epochs: int = 25
    batch_size: int = 64
    patience: int = 10
    learning_rate: float = 1e-3
    early_stopping: str = "per_member"
    balance: bool = True
    synthetic_ratio: float = 1.0
    n_masks: int = 600
    noise: str = "auto"
    augmentation: Augmentation = field(default_factory=Augmentation)
    description: str = ""

    def parameters(self) -> dict:
        """The settings as a JSON-able dict (what ``model_info.json`` records under ``training.recipe``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "description")}
        out["augmentation"] = self.augmentation.to_dict()
        out["smoothing"] = "3-point centred moving mean"
        out["optimizer"] = "Adam"
        out["loss"] = "binary cross-entropy on the 2 sigmoid units"
        return out

    def describe(self) -> dict:
        """``{"name", "description", "parameters"}``, JSON-able."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters()}


#: The recipes by name. ``"paper"`` is the published one (Corradetti et al. 2024 and its sequel, arXiv
#: 2407.05701): smoothed training spikes plus noise masks from the training recordings, balanced classes,
#: 25 epochs of batch 64, Adam 1e-3, early stopping on the validation loss with patience 10. ``"default"``
#: adds what the day-shift benchmark (benchmarks/bench_day_shift.py) showed to hold on other recording days.
RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        description="the published recipe: smoothed training spikes + noise masks of the training recordings, "
        "balanced classes, 25 epochs, batch 64",
    ),
    "default": Recipe(
        name="default",
        augmentation=Augmentation(noise_gain=(0.8, 1.6), time_jitter=1),
        description="the paper's recipe plus a noise level drawn per synthetic sample (mask gain 0.8-1.6) and a "
        "trigger jitter of one sample; chosen on the day-shift benchmark, where stronger augmentation (wider "
        "SNR, electrode filtering, drift and hum, amplitude) called broad non-serotonergic cells serotonergic",
    ),
    "real_only": Recipe(
        name="real_only",
        synthetic_ratio=0.0,
        description="the paper's settings on the real training spikes only (no synthetic samples)",
    ),
}


DEFAULT_RECIPE = "default"


def get_recipe(recipe="default", **overrides) -> Recipe:
    """The :class:`Recipe` named ``recipe`` (or ``recipe`` itself), with ``overrides`` replacing settings
    (None values are ignored)."""
    if isinstance(recipe, Recipe):
        chosen = recipe
    elif isinstance(recipe, str) and recipe in RECIPES:
        chosen = RECIPES[recipe]
    else:
        raise TrainingError(f"unknown training recipe {recipe!r}: use one of {', '.join(RECIPES)} or a Recipe")
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - {f.name for f in fields(Recipe)})
    if unknown:
        raise TrainingError(f"unknown recipe setting(s) {unknown}")
    return replace(chosen, **given) if given else chosen


def parse_kernels(kernel_sizes) -> list[int]:
    """Kernel sizes from ``"20-31"``, ``"20,22,25"``, ``"20-25,28"``, an int or an iterable of ints."""
    if kernel_sizes is None:
        return list(DEFAULT_KERNELS)
    if isinstance(kernel_sizes, int):
        return [kernel_sizes]
    if isinstance(kernel_sizes, str):
        out: list[int] = []
        for part in kernel_sizes.replace(" ", "").split(","):
            if not part:
                continue
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise TrainingError(f"cannot read kernel sizes {kernel_sizes!r}: use e.g. '20-31' or '20,22,25'")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first:
                raise TrainingError(f"kernel range {part!r} runs backwards")
            out.extend(range(first, last + 1))
    else:
        out = [int(k) for k in kernel_sizes]
    if not out:
        raise TrainingError("no kernel sizes given")
    if len(set(out)) != len(out):
        raise TrainingError(f"kernel sizes repeat: {out}")
    bad = [k for k in out if not 1 <= k <= 31]
    if bad:
        raise TrainingError(f"kernel sizes must be 1-31 (the published sweep), got {bad}")
    return out
