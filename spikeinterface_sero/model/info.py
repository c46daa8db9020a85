"""``model_info.json``, the description of a model folder: its default content, its validation (every field,
each problem one :class:`~spikeinterface_sero.errors.ModelError`), and the model card written from it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from .._version import __version__
from ..conformal import check_rig_validation, rig_guarantee
from ..constants import DEFAULT_THRESHOLD_PA, LABELS, NAFTER, NBEFORE, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from ..decision import check_training_description, describe_training_data
from ..errors import DataError, ModelError
from .spec import MAX_KERNEL, MEMBER_INPUT_SHAPE, MIN_KERNEL
from .spec import describe as describe_member

__all__ = ["MODEL_FORMAT_VERSION"]

MODEL_FORMAT = "spikeinterface-sero-model"
#: The version of the model folder format that this package writes and reads (``model_info.json``).
MODEL_FORMAT_VERSION = 1
LABEL_CONVERSION = {"0": LABELS[0], "1": LABELS[1]}
INFO_FILE = "model_info.json"
CARD_FILE = "README.md"
MAX_INFO_BYTES = 1 << 20  # a model description is a few kB
MAX_INFO_DEPTH = 32  # nesting of objects and lists in model_info.json
MAX_MEMBERS = 256
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIX = "the folder is damaged or was edited by hand: get a fresh copy (or write it again with save_model)"

#: the first limit of a model imported from the authors' published files
PUBLISHED_LIMIT = (
    "Validated by its authors only for mouse dorsal-raphe neurons in brain slices, recorded in loose-seal "
    "cell-attached mode at 40 kHz, negative-going action currents triggered at -50 pA. Other species, "
    "regions, recording modes, filters or rates are outside what it was shown to do."
)
#: the first limit of a model trained with this package (a lab's own, or the demonstration model)
TRAINED_LIMIT = (
    "Trained with spikeinterface-sero on the data described above; it has not been validated by the "
    "method's authors. What it can do is only what 'Measured accuracy' shows, on the cells named there: "
    "check it on your own labelled cells of other recording days before relying on it."
)
LIMITS = [
    "The per-sample LayerNormalization removes the amplitude: the model judges the shape of the 4 ms "
    "window only (1 ms before the trigger, 3 ms after).",
    "Spike-level accuracies from random spike-level splits (spikes of one cell in training and test) "
    "overstate what to expect on new cells; the cell-level result on held-out recording days is the "
    "relevant figure.",
    "A cell decision rests on the mean over its spikes: check n_spikes and the interval "
    "sero_probability_low..high before trusting a cell with few spikes or a probability near 0.5.",
]

_AGGREGATION = {
    "spike_consensus": "mean over members of the 2-unit sigmoid outputs",
    "spike_p_ser": "consensus[0] / (consensus[0] + consensus[1])",
    "cell": "mean of the spike consensus vectors over all spikes of the cell; serotonergic when mean[0] > mean[1]",
}


def _default_input_spec() -> dict:
    """The ``input`` entry of a model this package writes: 160 samples at 40 kHz in pA, trigger at 40."""
    return {
        "sampling_frequency_hz": SAMPLING_FREQUENCY,
        "n_samples": SNIPPET_LENGTH,
        "samples_before": NBEFORE,
        "samples_after": NAFTER,
        "alignment": "threshold crossing (trigger) at index 40",
        "threshold_pa": DEFAULT_THRESHOLD_PA,
        "polarity": "negative",
        "unit": "pA",
        "shape": list(MEMBER_INPUT_SHAPE),
        "columns": ["time_s", "current_pA"],
        "time_column": "arange(160) / 40000: sample time in seconds from the window start",
    }


# --------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, (int, float)) else type(v).__name__
    )


def _too_deep(obj, limit: int) -> bool:
    """True when ``obj`` nests objects/lists deeper than ``limit`` (iterative: no recursion limit)."""
    stack = [(obj, 1)]
    while stack:
        o, depth = stack.pop()
        if isinstance(o, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (o.values() if isinstance(o, dict) else o))
    return False


def _parse_info(path: Path) -> dict:
    """Read ``model_info.json`` (bounded in size and nesting) into a dict."""
    size = path.stat().st_size
    if size > MAX_INFO_BYTES:
        raise ModelError(
            f"{path} is {size / 1e6:.1f} MB; a model description is a few kB (limit {MAX_INFO_BYTES // 1024} kB): "
            "this is not a model_info.json written by this package"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} cannot be read as JSON ({exc}); {_FIX}") from None
    except RecursionError:
        raise ModelError(f"{path} nests objects too deeply to be read; {_FIX}") from None
    if not isinstance(info, dict):
        raise ModelError(f"{path} holds {_kind(info)}, not a model description (a JSON object); {_FIX}")
    if _too_deep(info, MAX_INFO_DEPTH):
        raise ModelError(f"{path} nests objects or lists more than {MAX_INFO_DEPTH} levels deep; {_FIX}")
    return info


def _check_input(spec, path: Path) -> None:
    if not isinstance(spec, dict):
        raise ModelError(f"{path}: 'input' is {_kind(spec)}, expected an object (sampling_frequency_hz, ...); {_FIX}")
    sf, n = spec.get("sampling_frequency_hz"), spec.get("n_samples")
    if not _is_number(sf) or not _is_int(n):
        raise ModelError(
            f"{path}: input.sampling_frequency_hz is {_short(sf)} and input.n_samples is {_short(n)}; expected "
            f"numbers ({SAMPLING_FREQUENCY:g} and {SNIPPET_LENGTH}); {_FIX}"
        )
    if float(sf) != SAMPLING_FREQUENCY or n != SNIPPET_LENGTH:
        raise ModelError(
            f"{path}: the model expects {n} samples at {sf} Hz; this package feeds 160 samples at 40 kHz, "
            "so it cannot run this model"
        )
    expected = {
        "samples_before": (_is_int, "an integer"),
        "samples_after": (_is_int, "an integer"),
        "threshold_pa": (_is_number, "a number"),
        "alignment": (lambda v: isinstance(v, str), "a string"),
        "polarity": (lambda v: isinstance(v, str), "a string"),
        "unit": (lambda v: isinstance(v, str), "a string"),
        "time_column": (lambda v: isinstance(v, str), "a string"),
        "shape": (lambda v: isinstance(v, list) and all(_is_int(x) for x in v), "a list of integers"),
        "columns": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    }
    for key, (ok, what) in expected.items():
        if key in spec and not ok(spec[key]):
            raise ModelError(f"{path}: input.{key} is {_short(spec[key])}, expected {what}; {_FIX}")


def _check_members(members, kernels, path: Path) -> None:
    if not isinstance(members, list) or not members:
        raise ModelError(f"{path} lists no members ('members' is {_short(members)}, expected a non-empty list); {_FIX}")
    if len(members) > MAX_MEMBERS:
        raise ModelError(f"{path} lists {len(members)} members (at most {MAX_MEMBERS}); {_FIX}")
    seen = set()
    for i, m in enumerate(members):
        if not isinstance(m, dict):
            raise ModelError(
                f"{path}: members[{i}] is {_kind(m)}, expected an object with kernel, file, sha256; {_FIX}"
            )
        f = m.get("file")
        if not isinstance(f, str) or not f or Path(f).name != f or f in (".", "..") or "\\" in f or "\0" in f:
            raise ModelError(f"{path}: members[{i}].file {_short(f)} is not a plain file name in the folder; {_FIX}")
        if f in seen:
            raise ModelError(f"{path}: member file {f!r} is listed twice; {_FIX}")
        seen.add(f)
        k = m.get("kernel")
        if not _is_int(k) or not MIN_KERNEL <= k <= MAX_KERNEL:
            raise ModelError(f"{path}: members[{i}].kernel is {_short(k)}, expected an integer 1-31; {_FIX}")
        sha = m.get("sha256")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise ModelError(f"{path}: members[{i}].sha256 is {_short(sha)}, expected 64 lower-case hex digits; {_FIX}")
    if kernels is not None:
        listed = [m["kernel"] for m in members]
        if not isinstance(kernels, list) or kernels != listed:
            raise ModelError(f"{path}: 'kernels' is {_short(kernels)} but the members have kernels {listed}; {_FIX}")


def _read_info(folder: Path) -> dict:
    """Read and validate ``folder/model_info.json``.

    Parameters
    ----------
    folder : pathlib.Path
        A resolved model folder.

    Returns
    -------
    dict
        The description; :class:`~spikeinterface_sero.errors.ModelError` (one line: what is wrong, what to
        do) for a missing, oversized, too deeply nested or malformed file and for any field of the wrong
        type or value.
    """
    path = folder / INFO_FILE
    if not path.is_file():
        raise ModelError(f"{folder} is not a model folder: {INFO_FILE} is missing")
    info = _parse_info(path)
    if info.get("format") != MODEL_FORMAT:
        raise ModelError(
            f"{path} is not a spikeinterface-sero model description (format field missing or not {MODEL_FORMAT!r}); "
            "point to a folder written by sero train, sero import-models or save_model"
        )
    version = info.get("format_version")
    if not _is_int(version) or version < 1:
        raise ModelError(
            f"{path}: format_version is {_short(version)}; it must be a whole number >= 1 "
            f"(this package writes and reads {MODEL_FORMAT_VERSION}); {_FIX}"
        )
    if version > MODEL_FORMAT_VERSION:
        raise ModelError(
            f"{folder} uses model-folder format {version}, newer than this spikeinterface-sero ({__version__}) "
            f"reads ({MODEL_FORMAT_VERSION}); upgrade the package"
        )
    if info.get("label_conversion") != LABEL_CONVERSION:
        raise ModelError(
            f"{path}: label_conversion is {_short(info.get('label_conversion'))}, but this package needs "
            f"{LABEL_CONVERSION} (unit 0 serotonergic)"
        )
    _check_input(info.get("input"), path)
    _check_members(info.get("members"), info.get("kernels"), path)
    optional = {
        "name": (str, "a string"),
        "description": (str, "a string"),
        "created": (str, "a string"),
        "demo": (bool, "true or false"),
        "aggregation": (dict, "an object"),
        "training": (dict, "an object"),
        "calibration": (dict, "an object"),
        "training_data": (dict, "an object"),
        "rig_validation": (dict, "an object"),
        "metrics": (dict, "an object"),
        "versions": (dict, "an object"),
        "source": (dict, "an object"),
    }
    for key, (typ, what) in optional.items():
        if key in info and not isinstance(info[key], typ):
            raise ModelError(f"{path}: {key!r} is {_kind(info[key])} {_short(info[key])}, expected {what}; {_FIX}")
    calibration = info.get("calibration")
    if calibration:
        temperature = calibration.get("temperature")
        if (
            calibration.get("method") != "temperature"
            or isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not 0 < float(temperature) < float("inf")
        ):
            raise ModelError(
                f"{path}: 'calibration' is {_short(calibration)}, expected "
                '{"method": "temperature", "temperature": <a positive number>}; ' + _FIX
            )
    recipe = (info.get("training") or {}).get("recipe")
    if recipe is not None and (
        not isinstance(recipe, dict)
        or not isinstance(recipe.get("name"), str)
        or not recipe["name"]
        or not isinstance(recipe.get("parameters"), dict)
    ):
        raise ModelError(
            f"{path}: training.recipe is {_short(recipe)}, expected "
            '{"name": <the recipe name>, "parameters": {...}} (the training recipe); ' + _FIX
        )
    if "training_data" in info:
        try:
            check_training_description(info["training_data"])
        except DataError as error:
            raise ModelError(f"{path}: 'training_data': {error} Remove the field or {_FIX}") from None
    if "rig_validation" in info:
        try:
            check_rig_validation(info["rig_validation"])
        except DataError as error:
            raise ModelError(
                f"{path}: 'rig_validation': {error} Remove the field and run sero validate again"
            ) from None
    return info


# --------------------------------------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------------------------------------
def _fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k}: {_fmt_value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt_value(x) for x in v)
    return str(v)


def _metric_lines(name: str, value) -> list[str]:
    """Card lines of one measured side: a bullet per figure, intervals as low-high, warnings in bold."""
    if not isinstance(value, Mapping):
        return [f"- **{name}**: {_fmt_value(value)}"]
    lines = [f"- **{name}**:"]
    for key, figure in value.items():
        if key == "warnings":
            lines += [f"  - **Warning: {warning}.**" for warning in figure or []]
        elif key.endswith("_interval") and isinstance(figure, (list, tuple)) and len(figure) == 2:
            lines.append(f"  - {key}: {float(figure[0]):.3f}-{float(figure[1]):.3f}")
        else:
            lines.append(f"  - {key}: {_fmt_value(figure)}")
    return lines


def _is_published(info: Mapping) -> bool:
    """True for a folder made by ``import_models`` from the authors' files (its ``source`` says so)."""
    return bool((info.get("source") or {}).get("imported_from")) and not info.get("demo")


def _model_card(info: Mapping) -> str:
    """The ``README.md`` of a model folder, written from its ``model_info.json`` content."""
    lines = [f"# {info.get('name') or 'Serotonergic-CNN ensemble'}", ""]
    if info.get("demo"):
        lines += [
            "> **Demonstration model.** Trained on synthetic or toy data to show the pipeline working; "
            "do not use its labels for real cells.",
            "",
        ]
    lines += [info.get("description") or "(no description given)", ""]
    lines += [
        "## Model",
        "",
        f"Ensemble of {len(info['members'])} CNN members (Corradetti et al., J Neurosci Methods 2024, "
        f"doi 10.1016/j.jneumeth.2024.110158), kernel sizes {', '.join(str(k) for k in info['kernels'])}. "
        f"Each member: {describe_member()}. "
        "Output unit 0 = serotonergic, unit 1 = non-serotonergic.",
        "",
        "Decision: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in info["aggregation"].items()) + ".",
        "",
    ]
    spec = info["input"]
    lines += [
        "## Input",
        "",
        f"{spec['n_samples']} samples at {spec['sampling_frequency_hz']:g} Hz in {spec['unit']}, "
        f"{spec['samples_before']} before and {spec['samples_after']} after the trigger "
        f"({spec['polarity']} crossing of {spec['threshold_pa']:g} pA). Member input (160, 2, 1): column 0 "
        "time in seconds (arange(160)/40000), column 1 the current.",
        "",
    ]
    lines += ["## Training data", ""]
    training = info.get("training") or {}
    lines += [f"- **{k}**: {_fmt_value(v)}" for k, v in training.items()] or ["Not described."]
    lines += ["", "## Measured accuracy", ""]
    metrics = info.get("metrics") or {}
    lines += [line for k, v in metrics.items() for line in _metric_lines(k, v)] or [
        "No accuracy was measured for this model: evaluate it on labelled cells before relying on it."
    ]
    calibration = info.get("calibration")
    lines += ["", "## Calibration", ""]
    lines += (
        [
            f"Cell probabilities are temperature-scaled (T = {float(calibration['temperature']):.3g}), fitted on "
            + str(calibration.get("fitted_on") or f"{calibration.get('n_cells', 'the')} validation cells")
            + f" ({calibration.get('targets') or 'maximum likelihood'}); labels do not change."
        ]
        if calibration
        else ["None: the probabilities are the ensemble's own (not calibrated)."]
    )
    lines += ["", "## Like the training data?", "", describe_training_data(info.get("training_data")) + "."]
    lines += ["", "## Validated on", "", rig_guarantee(info.get("rig_validation"))]
    first = PUBLISHED_LIMIT if _is_published(info) else TRAINED_LIMIT
    lines += ["", "## Limits", ""] + [f"- {x}" for x in [first, *LIMITS]] + [""]
    src = info.get("source")
    if src:
        lines += ["## Source", ""] + [f"- **{k}**: {_fmt_value(v)}" for k, v in src.items()]
        lines += [""]
    lines += ["## Files", "", "| kernel | file | sha256 |", "|---|---|---|"]
    lines += [f"| {m['kernel']} | `{m['file']}` | `{m['sha256']}` |" for m in info["members"]]
    v = info.get("versions", {})
    lines += [
        "",
        f"Saved {info.get('created', '')} with spikeinterface-sero {v.get('spikeinterface_sero')}, "
        f"TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}.",
        "",
        'Load with `spikeinterface_sero.model.load_model("<this folder>")`; the checksums above are verified on load.',
        "",
    ]
    return "\n".join(lines)
