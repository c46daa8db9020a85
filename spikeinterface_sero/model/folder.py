"""Model folders: ``save_model`` writes the members, ``model_info.json`` and the model card; ``load_model``
verifies the checksums, refuses links out of the folder and oversized archives, reads the published
members' weights with h5py (no TensorFlow; other members load in Keras safe mode), and caches the ensemble.
"""

from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import threading
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._version import __version__
from ..arguments import check_flag
from ..errors import ModelError
from ._backend import _keras, _tf
from .architecture import member_kernel
from .ensemble import ENGINES, Ensemble
from .info import (
    _AGGREGATION,
    CARD_FILE,
    INFO_FILE,
    LABEL_CONVERSION,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    _default_input_spec,
    _model_card,
    _read_info,
)
from .spec import check_weight_values
from .weights import MAX_WEIGHTS_FILE_BYTES, check_weights_storage

__all__ = ["demo_model_folder", "save_model", "load_model", "clear_model_cache"]

MAX_CONFIG_BYTES = 16 << 20  # config.json / metadata.json of a .keras archive (a member's is ~6 kB)
#: everything a .keras archive may unpack to: its configuration files and its weights file
#: (weights.MAX_WEIGHTS_FILE_BYTES, from the member specification; a member's are under 1 MiB)
MAX_ARCHIVE_BYTES = 2 * MAX_CONFIG_BYTES + MAX_WEIGHTS_FILE_BYTES
MAX_COMPRESSION_RATIO = 100.0  # for archive entries over 1 MB unpacked
MAX_ARCHIVE_ENTRIES = 64
_KERAS_MODULES = ("keras",)  # a config naming any other module needs code from outside Keras


def demo_model_folder() -> Path:
    """Where the bundled demonstration model lives (``spikeinterface_sero/models/demo/``).

    Returns
    -------
    pathlib.Path
        The folder (it may be absent in a build that ships no demo model).
    """
    return Path(__file__).resolve().parent.parent / "models" / "demo"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sha256_any(path: Path) -> str:
    """sha256 of a file, or of a directory tree (relative paths and contents, in sorted order)."""
    if path.is_file():
        return _sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
        h.update(_sha256(f).encode("ascii"))
    return h.hexdigest()


def _versions() -> dict:
    tf = _tf()
    keras = _keras()
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "spikeinterface_sero": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


# --------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------
def _prepare_target(folder: Path, overwrite: bool) -> None:
    if folder.exists():
        if not folder.is_dir():
            raise ModelError(f"{folder} exists and is not a folder; choose another output path")
        entries = list(folder.iterdir())
        if entries and not overwrite:
            raise ModelError(f"{folder} already exists and is not empty; pass overwrite=True to replace it")
        if entries and not (folder / INFO_FILE).is_file():
            raise ModelError(
                f"{folder} is not empty and is not a model folder (no {INFO_FILE}); refusing to replace it even "
                "with overwrite=True: choose a new or empty folder"
            )


def _member_filenames(kernels: Sequence[int]) -> list[str]:
    seen: dict[int, int] = collections.Counter()
    names = []
    for k in kernels:
        seen[k] += 1
        names.append(f"member_k{k}.keras" if seen[k] == 1 else f"member_k{k}_{seen[k]}.keras")
    return names


def save_model(
    ensemble: Ensemble,
    folder,
    *,
    description: str = "",
    training: Mapping | None = None,
    metrics: Mapping | None = None,
    name: str | None = None,
    demo: bool | None = None,
    input_spec: Mapping | None = None,
    source: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``ensemble`` as a model folder: ``member_k<k>.keras`` files, ``model_info.json``, ``README.md``.

    Parameters
    ----------
    ensemble : Ensemble
        The members to save.
    folder : str or pathlib.Path
        The model folder to write. It is written next to its final place and moved in when complete.
    description : str, default: ""
        One paragraph on what the model is (default: the ensemble's own).
    training : dict or None, default: None
        What it was trained on (data, cells, spikes, split, epochs ...).
    metrics : dict or None, default: None
        Its measured accuracy (say on what).
    name : str or None, default: None
        A title (default: from the kernels).
    demo : bool or None, default: None
        Mark it as the demonstration model (default: the ensemble's own flag).
    input_spec : dict or None, default: None
        Entries overriding the default input description (e.g. ``{"threshold_pa": -30.0}``).
    source : dict or None, default: None
        Where it was imported from (written by :func:`import_models`).
    overwrite : bool, default: False
        Replace an existing model folder (never a non-empty folder of something else).

    Returns
    -------
    pathlib.Path
        The folder.

    Raises
    ------
    ModelError
        A member's weights are not finite or exceed :data:`~spikeinterface_sero.model.spec.MAX_ABS_WEIGHT`
        (a diverged training): :func:`load_model` would refuse the folder, so it is not written.
    """
    if not isinstance(ensemble, Ensemble):
        raise ModelError(f"save_model needs an Ensemble, got {type(ensemble).__name__}")
    overwrite = check_flag(overwrite, "overwrite")
    folder = Path(folder).expanduser().resolve()
    _prepare_target(folder, overwrite)
    files = _member_filenames(ensemble.kernels)
    for member, fname in zip(ensemble.members, files):  # a folder load_model would refuse is not written
        check_weight_values(fname, member.get_weights(), [v.path for v in member.weights])
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        members_info = []
        for member, k, fname in zip(ensemble.members, ensemble.kernels, files):
            member.save(tmp / fname)
            members_info.append({"kernel": int(k), "file": fname, "sha256": _sha256(tmp / fname)})
        spec = _default_input_spec()
        spec.update(ensemble.info.get("input") or {})
        spec.update(input_spec or {})
        info = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "name": name
            or ensemble.info.get("name")
            or f"Serotonergic-CNN ensemble, kernels {min(ensemble.kernels)}-{max(ensemble.kernels)}",
            "description": description or ensemble.info.get("description", ""),
            "demo": bool(ensemble.is_demo if demo is None else demo),
            "label_conversion": dict(LABEL_CONVERSION),
            "input": spec,
            "kernels": [int(k) for k in ensemble.kernels],
            "members": members_info,
            "aggregation": dict(_AGGREGATION),
            "training": dict(training if training is not None else ensemble.info.get("training") or {}),
            "metrics": dict(metrics if metrics is not None else ensemble.info.get("metrics") or {}),
            "versions": _versions(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        src = source if source is not None else ensemble.info.get("source")
        if src:
            info["source"] = dict(src)
        if ensemble.info.get("calibration"):  # of the cell probability, fitted on validation cells
            info["calibration"] = dict(ensemble.info["calibration"])
        if ensemble.info.get("training_data"):  # the shapes of its training cells (decision.training_distance)
            info["training_data"] = dict(ensemble.info["training_data"])
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        (tmp / CARD_FILE).write_text(_model_card(info), encoding="utf-8")
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# --------------------------------------------------------------------------------------------------------
# Reading member files safely
# --------------------------------------------------------------------------------------------------------
def _inside(folder: Path, name: str) -> Path:
    """``folder / name``, refused when it is a link resolving outside ``folder`` (already resolved)."""
    path = folder / name
    real = path.resolve()
    if not real.is_relative_to(folder):
        raise ModelError(
            f"{name} in {folder} is a link to {real}, outside the model folder; links out of a model folder are "
            "not followed: copy the file itself into the folder (after checking where it comes from)"
        )
    return path


def _config_problems(config) -> list[str]:
    """Lambda layers and classes from outside Keras named in a Keras model config (walked iteratively)."""
    found = set()
    stack = [config]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            if o.get("class_name") == "Lambda":
                found.add("a Lambda layer (arbitrary Python code)")
            module = o.get("module")
            if isinstance(module, str) and module.split(".")[0] not in _KERAS_MODULES:
                found.add(f"{module}.{o.get('class_name')}")
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return sorted(found)


def _read_config_json(text, path: Path):
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ModelError(f"{path.name}: its model configuration is not valid JSON; the file is damaged") from None


def _archive_config(path: Path):
    """The ``config.json`` of a ``.keras`` archive, after checking what every entry unpacks to."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path.name} is not a .keras archive ({exc}); the file is damaged or not a model") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARCHIVE_ENTRIES:
            raise ModelError(
                f"{path.name} holds {len(infos)} entries (a Keras archive holds 3); refused before loading"
            )
        total = 0
        for i in infos:
            limit = MAX_CONFIG_BYTES if i.filename in ("config.json", "metadata.json") else MAX_WEIGHTS_FILE_BYTES
            if i.file_size > limit:
                raise ModelError(
                    f"{path.name}: {i.filename} unpacks to {i.file_size / 2**20:.1f} MiB, over the "
                    f"{limit / 2**20:.4g} MiB limit (a member's is a few kB to 1 MiB); refused before loading: "
                    "the file is not a member"
                )
            if i.file_size > (1 << 20) and i.file_size > MAX_COMPRESSION_RATIO * max(i.compress_size, 1):
                raise ModelError(
                    f"{path.name}: {i.filename} unpacks {i.file_size / max(i.compress_size, 1):.0f}-fold "
                    f"(over {MAX_COMPRESSION_RATIO:.0f}-fold, a zip bomb); refused before loading"
                )
            total += i.file_size
        if total > MAX_ARCHIVE_BYTES:
            raise ModelError(
                f"{path.name} unpacks to {total / 2**20:.0f} MiB in all, over the {MAX_ARCHIVE_BYTES >> 20} MiB "
                "limit; refused before loading"
            )
        if "config.json" not in zf.namelist():
            raise ModelError(f"{path.name} has no config.json; it is not a Keras model archive")
        try:
            text = zf.read("config.json")
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ModelError(f"{path.name}: config.json cannot be unpacked ({exc}); the file is damaged") from None
    return _read_config_json(text, path)


def _hdf5_config(path: Path):
    """The ``model_config`` of a legacy HDF5 model file (None when it has none)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                return None
            if len(raw) > MAX_CONFIG_BYTES:
                raise ModelError(f"{path.name}: its model configuration is over {MAX_CONFIG_BYTES >> 20} MiB; refused")
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read as an HDF5 model file ({exc}); the file is damaged") from None
    return _read_config_json(raw.decode("utf-8") if isinstance(raw, bytes) else raw, path)


def _checked_config(path: Path, *, trust: bool):
    """The model configuration of a .keras / .h5 file (parsed JSON; None for an HDF5 file without one),
    after the size checks of a ``.keras`` archive and of the arrays its weights file declares and, without
    ``trust``, refused when it names a Lambda layer or a class from outside Keras."""
    is_h5 = path.suffix.lower() in (".h5", ".hdf5")
    if is_h5:
        check_weights_storage(path)  # the file's size and its arrays' declared sizes, before anything reads it
    config = _hdf5_config(path) if is_h5 else _archive_config(path)
    if not is_h5:
        check_weights_storage(path)
    if not trust and config is not None:
        problems = _config_problems(config)
        if problems:
            raise ModelError(
                f"{path.name} needs code from outside Keras ({', '.join(problems)}); refused by default, pass "
                "trust=True only if you trust where this model comes from"
            )
    return config


def _load_keras_file(path: Path, *, trust: bool):
    """Load a .keras / .h5 file with Keras safe mode, mapping failures to ModelError.

    Before Keras sees the file: the sizes of a ``.keras`` archive's entries are checked and, without
    ``trust``, a configuration naming a Lambda layer or a class from outside Keras is refused.
    """
    _checked_config(path, trust=trust)
    keras = _keras()
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=trust is not True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types
        msg = str(exc)
        if not trust and ("safe_mode" in msg or "Lambda" in msg or "lambda" in msg):
            raise ModelError(
                f"{path.name} contains a Lambda layer (arbitrary Python code), which is refused by default; "
                "pass trust=True only if you trust where this model comes from"
            ) from None
        if "Could not locate" in msg or "Unknown" in msg or "custom" in msg.lower():
            raise ModelError(
                f"{path.name} needs custom Keras objects that are not available ({msg.splitlines()[0]}); import "
                "and register them (keras.saving.register_keras_serializable) and pass trust=True if you trust "
                "its source"
            ) from None
        first = msg.splitlines()[0] if msg else type(exc).__name__
        raise ModelError(f"{path.name} cannot be loaded by Keras {keras.__version__}: {first}") from None
    if not trust:
        custom = sorted(
            {
                type(layer).__module__ + "." + type(layer).__name__
                for layer in _all_layers(model)
                if not type(layer).__module__.startswith("keras.")
            }
        )
        if custom or not type(model).__module__.startswith("keras."):
            raise ModelError(
                f"{path.name} uses custom code ({', '.join(custom) or type(model).__name__}); refused by default, "
                "pass trust=True only if you trust where this model comes from"
            )
    return model


def _all_layers(model) -> list:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


# --------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget the ensembles :func:`load_model` keeps in memory."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _resolve_engine(engine) -> str:
    if engine is None:
        engine = os.environ.get("SERO_MODEL_ENGINE", "").strip().lower() or "numpy"
        if engine not in ENGINES:
            raise ModelError(f"SERO_MODEL_ENGINE is {engine!r}; set it to 'numpy' or 'tensorflow' (or unset it)")
    if engine not in ENGINES:
        raise ModelError(f"engine must be 'numpy' or 'tensorflow', got {engine!r}")
    return engine


def _read_weights(folder: Path, info: Mapping, *, trust: bool):
    """Every member's weights read with h5py (no TensorFlow), or None when one member is not exactly the
    published architecture (the folder is then loaded with Keras)."""
    from .weights import read_member_weights

    weights = []
    for m in info["members"]:
        path = folder / m["file"]
        config = _checked_config(path, trust=trust)
        w = read_member_weights(path, config) if config is not None else None
        if w is None:
            return None
        if w.kernel != m["kernel"]:
            raise ModelError(
                f"{m['file']}: first convolution has kernel {w.kernel}, but {INFO_FILE} says {m['kernel']}"
            )
        weights.append(w)
    return weights


def load_model(folder=None, *, trust: bool = False, engine: str | None = None) -> Ensemble:
    """Load a model folder after verifying it.

    Parameters
    ----------
    folder : str or pathlib.Path or None, default: None
        A model folder written by :func:`save_model`, ``sero train`` or ``sero import-models``; None: the
        bundled demonstration model.
    trust : bool, default: False
        Allow members that need arbitrary code (a Lambda layer, custom layer classes). Without it they
        raise :class:`~spikeinterface_sero.errors.ModelError`. Only a real bool: anything else (the string
        ``"false"`` included) raises :class:`~spikeinterface_sero.errors.ParameterError`.
    engine : {"numpy", "tensorflow"} or None, default: None
        What predicts. ``"numpy"`` (the default; None reads the ``SERO_MODEL_ENGINE`` environment variable):
        the members' weights are read from the files with h5py and the fused forward pass runs in numpy;
        TensorFlow is not imported (the Keras models are built when something needs them: training,
        Grad-CAM, :func:`~spikeinterface_sero.model.predict_members_naive`, saving). ``"tensorflow"``: the
        members are loaded by Keras (safe mode) and predict in one compiled TensorFlow call. Members that
        are not exactly the published architecture always load with Keras and predict with TensorFlow.

    Returns
    -------
    Ensemble
        The members, with ``info`` the validated ``model_info.json`` (plus ``folder``).

    Notes
    -----
    Every field of ``model_info.json`` is validated, each member file's sha256 is verified, a member that
    is a link resolving outside the folder is refused, ``.keras`` archives are checked for what they unpack
    to before they are opened, a configuration naming code from outside Keras is refused without ``trust``,
    Keras loads members in safe mode, and every weight must be finite and within
    :data:`~spikeinterface_sero.model.spec.MAX_ABS_WEIGHT` (a :class:`ModelError` names the member and the
    layer). Loaded ensembles are cached per process, keyed on the folder, the
    checksums of its files and the engine, so repeated calls return the same object (treat it as read-only;
    :func:`clear_model_cache` forgets them).
    """
    trust = check_flag(trust, "trust")
    engine = _resolve_engine(engine)
    if folder is None:
        folder = demo_model_folder()
        if not (folder / INFO_FILE).is_file():
            raise ModelError(
                f"the bundled demo model is not installed (expected at {folder}); it has not been trained yet "
                "in this version. Pass a model folder, e.g. one made by `sero import-models` from the authors' "
                "published ModelsDNN folder"
            )
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ModelError(
            f"model folder {folder} does not exist; pass a folder written by sero train or "
            "sero import-models, or leave the model out for the bundled demonstration model"
        )
    _inside(folder, INFO_FILE)
    info = _read_info(folder)
    checks = []
    for m in info["members"]:
        path = _inside(folder, m["file"])
        if not path.is_file():
            raise ModelError(
                f"model folder {folder} is incomplete: member file {m['file']} is missing; copy the whole folder again"
            )
        digest = _sha256(path)
        if digest != m["sha256"]:
            raise ModelError(
                f"checksum mismatch for {m['file']} in {folder}: the file is not the one the model was saved with "
                f"(sha256 {digest[:12]}... != {m['sha256'][:12]}... in {INFO_FILE}). It was modified or damaged: "
                "get a fresh copy of the model folder; do not edit the checksum unless you know why it changed"
            )
        checks.append((m["file"], digest))
    key = (str(folder), _sha256(folder / INFO_FILE), tuple(checks), bool(trust), engine)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    info = dict(info)
    info["folder"] = str(folder)
    weights = _read_weights(folder, info, trust=trust) if engine == "numpy" else None
    if weights is not None:
        ens = Ensemble.from_weights(weights, info=info, engine="numpy")
    else:
        for m in info["members"]:  # every file checked before Keras (and TensorFlow) is imported for any
            _checked_config(folder / m["file"], trust=trust)
        members = []
        for m in info["members"]:
            model = _load_keras_file(folder / m["file"], trust=trust)
            k = member_kernel(model)
            if k != m["kernel"]:
                raise ModelError(f"{m['file']}: first convolution has kernel {k}, but {INFO_FILE} says {m['kernel']}")
            check_weight_values(m["file"], model.get_weights(), [v.path for v in model.weights])
            members.append(model)
        ens = Ensemble(members, info=info, engine=engine)
    with _CACHE_LOCK:
        _CACHE[key] = ens
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return ens
