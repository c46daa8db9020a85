"""A person's labels beside the model's call, in SpikeInterface's curation format.

:func:`write_curation` writes a curation dict (the format of ``spikeinterface.curation.apply_curation``) whose
``label_definitions`` hold one exclusive label, ``sero_manual_label``; applying it writes the sorting property
of that name, which the ``serotonergic`` extension shows as its ``sero_manual_label`` column (the model's
``sero_label`` is never overwritten). :func:`read_curation` gives the labelled cells of such a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .constants import LABELS
from .errors import ParameterError, SeroError
from .extension import MANUAL_LABEL, get_serotonergic_extension
from .files import atomic_path, check_output_path

__all__ = ["MANUAL_LABEL_OPTIONS", "CURATION_FORMAT_VERSION", "write_curation", "read_curation"]

#: the labels a person can give, in SpikeInterface's ``label_definitions``
MANUAL_LABEL_OPTIONS = ("serotonergic_typical", "serotonergic_atypical", "non_serotonergic", "unsure")
#: SpikeInterface's current curation format (``spikeinterface.curation.curation_model.Curation``)
CURATION_FORMAT_VERSION = "2"
SER, NSER = LABELS
#: what each manual label says, as (label, type) for :func:`read_curation`; "unsure" labels no cell
_MEANING = {
    "serotonergic_typical": (SER, "typical"),
    "serotonergic_atypical": (SER, "atypical"),
    "non_serotonergic": (NSER, ""),
}


def _prefill(row) -> str:
    """The model's reliable call as a manual label ("" for an unsure or undetermined call)."""
    if not bool(row.sero_reliable):
        return ""
    if row.sero_label == NSER:
        return "non_serotonergic"
    if row.sero_label == SER:
        return "serotonergic_atypical" if str(row.sero_type).startswith("atypical") else "serotonergic_typical"
    return ""


def write_curation(analyzer, path=None, *, overwrite: bool = False) -> dict:
    """A SpikeInterface curation dict for a person to confirm or correct the model's calls, written to ``path``.

    Each unit's ``sero_manual_label`` is pre-filled: the person's label when the analyzer already holds one
    (the ``sero_manual_label`` sorting property), else the model's call when it is reliable
    (``serotonergic_typical``, ``serotonergic_atypical`` from ``sero_type``, or ``non_serotonergic``); units
    whose call is unsure or undetermined are left without a label, for the person to decide. Apply the edited
    file with ``spikeinterface.curation.apply_curation(analyzer, curation)``.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    path : str, Path or None, default: None
        A ``.json`` file to write (atomically); None: only return the dict.
    overwrite : bool, default: False
        Replace an existing file.

    Returns
    -------
    dict
        ``format_version``, ``unit_ids``, ``label_definitions``, ``manual_labels``, ``merges``, ``splits``,
        ``removed``.
    """
    units = get_serotonergic_extension(analyzer).get_data("units")
    manual_labels = []
    for unit_id, row in zip(units.index, units.itertuples()):
        label = str(row.sero_manual_label) or _prefill(row)
        if label:
            manual_labels.append({"unit_id": _json_id(unit_id), "labels": {MANUAL_LABEL: [label]}})
    curation = {
        "format_version": CURATION_FORMAT_VERSION,
        "unit_ids": [_json_id(u) for u in analyzer.unit_ids],
        "label_definitions": {
            MANUAL_LABEL: {"name": MANUAL_LABEL, "label_options": list(MANUAL_LABEL_OPTIONS), "exclusive": True}
        },
        "manual_labels": manual_labels,
        "merges": [],
        "splits": [],
        "removed": [],
    }
    _validated(curation, "the curation written")
    if path is not None:
        path = check_output_path(path, overwrite=overwrite, suffixes=(".json",), what="curation file")
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(curation, indent=2), encoding="utf-8")
    return curation


def read_curation(path) -> pd.DataFrame:
    """The cells a person labelled in a SpikeInterface curation file (``sero_manual_label``).

    Parameters
    ----------
    path : str or Path
        A curation ``.json`` file (:func:`write_curation`'s, edited, or any with a ``sero_manual_label``
        label definition).

    Returns
    -------
    pandas.DataFrame
        One row per labelled unit: ``unit_id`` (as in the file), ``label`` ("serotonergic" or
        "non_serotonergic") and ``type`` ("typical", "atypical" or "" for non-serotonergic cells). Units
        labelled ``unsure`` or not at all are left out.
    """
    path = Path(path)
    try:
        curation = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SeroError(f"cannot read the curation file {str(path)!r} ({error}); give a curation .json file.") from None
    model = _validated(curation, f"the curation file {str(path)!r}")
    rows = []
    for manual in model.manual_labels or []:
        for label in manual.labels.get(MANUAL_LABEL, []):
            if label in _MEANING:
                rows.append((manual.unit_id, *_MEANING[label]))
    return pd.DataFrame(rows, columns=["unit_id", "label", "type"])


def _validated(curation: dict, what: str):
    """SpikeInterface's own check of the curation format; its ``Curation`` model."""
    from spikeinterface.curation.curation_model import Curation

    if not isinstance(curation, dict):
        raise ParameterError(f"{what} is not a curation (a JSON object), but {type(curation).__name__}.")
    definitions = curation.get("label_definitions") or {}
    if MANUAL_LABEL not in definitions:
        raise SeroError(f"{what} defines no {MANUAL_LABEL!r} label: write one with spikeinterface_sero.write_curation.")
    options = set(definitions[MANUAL_LABEL].get("label_options", []))
    if not options <= set(MANUAL_LABEL_OPTIONS):
        unknown = ", ".join(sorted(options - set(MANUAL_LABEL_OPTIONS)))
        raise SeroError(f"{what} has {MANUAL_LABEL} options this package does not know: {unknown}.")
    try:
        return Curation(**curation)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise SeroError(f"{what} is not a valid SpikeInterface curation: {error}".splitlines()[0]) from None


def _json_id(unit_id):
    """A unit id as JSON keeps it (numpy integers and strings become Python ones)."""
    return unit_id.item() if hasattr(unit_id, "item") else unit_id
