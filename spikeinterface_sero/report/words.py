"""What the report says: a cell's call as a person reads it, its reasons, the scales of the probabilities, and
text from files or messages in neutral words (``docs/report.md``)."""

from __future__ import annotations

import re

import numpy as np

from ..constants import LABELS

__all__ = [
    "COLOURS",
    "BACKGROUNDS",
    "DEMO_BANNER",
    "NO_GUARANTEE",
    "CELL_SCALE",
    "SPIKE_SCALE",
    "call_of",
    "call_headline",
    "short_call",
    "reasons_text",
    "type_text",
    "plain",
    "number",
]

SER, NSER = LABELS
UNSURE, UNDETERMINED, ERROR = "unsure", "undetermined", "error"
#: colours of the calls (Okabe-Ito blue / orange: distinguishable with colour-vision deficiency); an unsure
#: call is grey: it carries no label's colour
COLOURS = {SER: "#0072B2", NSER: "#D55E00", UNSURE: "#6E6E6E", UNDETERMINED: "#777777", ERROR: "#B00020"}
BACKGROUNDS = {SER: "#DCEBF7", NSER: "#FBE3D6", UNSURE: "#F1F1F1", UNDETERMINED: "#EEEEEE", ERROR: "#F8D7DA"}
_HEADLINES = {SER: "SEROTONERGIC (SER)", NSER: "NON-SEROTONERGIC (NSER)", UNDETERMINED: "UNDETERMINED (no spikes)"}
_SHORT = {SER: "SER", NSER: "NSER", UNSURE: "UNSURE", UNDETERMINED: "undetermined", ERROR: "ERROR"}
#: the banner on every page and figure of calls made by the bundled demonstration model
DEMO_BANNER = "DEMO MODEL (simulated data) - not for scientific conclusions"
#: the guarantee's words when the model carries none for this rig
NO_GUARANTEE = "not validated on this rig: no call is reliable"
#: the scale of ``sero_probability``: the model's calibration applied to the mean output over the cell's spikes
CELL_SCALE = "calibrated cell P(SER)"
#: the scale of ``p_ser`` of ``ext.get_data("spikes")``: each spike's raw ensemble output
SPIKE_SCALE = "raw per-spike ensemble output P(SER), not calibrated"
_REASONS = {
    "no_call": "no call",
    "criteria_only": "classical criteria only (no CNN)",
    "few_spikes": "too few spikes",
    "quality": "not an action current like the training data",
    "domain": "input unlike the training data",
    "interval_includes_0.5": "interval includes 0.5",
    "not_validated_on_rig": "model not validated on this rig",
    "unlike_validated_rigs": "recording unlike the rigs the model was validated on",
    "session_unlike_validated_rigs": "its recording session is unlike the rigs the model was validated on",
    "set_both": "prediction set holds both labels",
    "set_empty": "prediction set is empty",
    "set_disagrees": "prediction set disagrees with the label",
    "not_reliable": "not reliable",
}
_TYPES = {
    "typical_serotonergic": "typical SER (criteria agree)",
    "atypical_serotonergic": "atypical SER (criteria say NSER)",
    "typical_non_serotonergic": "typical NSER (criteria agree)",
    "atypical_non_serotonergic": "atypical NSER (criteria say SER)",
}


def plain(value) -> str:
    """A value from a table or a file as neutral text: "" for None/NaN, bytes decoded, never a Python repr."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    text = str(value)
    if text.strip().lower() in ("none", "nan", "<na>"):
        return ""
    text = re.sub(r"\bb'([^']*)'", r"\1", text)  # a bytes repr inside a message: its text
    # "pass x=True (CLI: --x)": the command-line form (the report is the CLI's)
    text = re.sub(r"\b\w+=(?:<[^>]*>|\{[^}]*\}|'[^']*'|\S+?) \(CLI: ([^)]*)\)", r"\1", text)
    text = re.sub(r"\b([a-z_]+)=True\b", lambda match: match.group(1).replace("_", " "), text)  # no flag: words
    text = re.sub(r"\b([a-z_]+)=\{[^}]*\}", r"\1", text)  # a Python dict argument: its name
    text = re.sub(r"\b([a-z_]+)='([^']*)'", r"\1 \2", text)  # choose='v199': choose v199
    text = re.sub(r"\bNone\b", "none", text)
    return "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)


def number(value, spec: str = ".2f", missing: str = "-") -> str:
    """A number as text, ``missing`` when it is not one."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return missing
    return missing if not np.isfinite(f) else format(f, spec)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def call_of(row) -> str:
    """The call a person reads (``sero_call``): serotonergic / non_serotonergic when reliable, unsure when not,
    undetermined without spikes. A table written before ``sero_call`` existed: unsure unless ``sero_reliable``."""
    call = plain(row.get("sero_call")).strip().lower()
    if call in (SER, NSER, UNSURE, UNDETERMINED):
        return call
    label = plain(row.get("sero_label")).strip().lower()
    if label not in LABELS:
        return UNDETERMINED
    return label if plain(row.get("sero_reliable")).strip() in ("True", "1", "1.0") else UNSURE


def _lean(row) -> str:
    label = plain(row.get("sero_label")).strip().lower()
    return _SHORT.get(label, "") if label in LABELS else ""


def call_headline(row) -> str:
    """The headline of a cell: its label only when the call is reliable, else e.g.
    ``UNSURE (leans SER, P(SER) 0.70)`` with the calibrated cell P(SER)."""
    call = call_of(row)
    if call != UNSURE:
        return _HEADLINES[call]
    p = _float(row.get("sero_probability"))
    parts = [f"leans {_lean(row)}"] if _lean(row) else []
    if np.isfinite(p):
        parts.append(f"P(SER) {p:.2f}")
    return "UNSURE" + (f" ({', '.join(parts)})" if parts else "")


def short_call(row) -> str:
    """SER, NSER, UNSURE or undetermined."""
    return _SHORT[call_of(row)]


def reasons_text(row) -> str:
    """Why a call is not reliable, in words, the failed checks named ("" for a reliable call)."""
    if call_of(row) in (SER, NSER, UNDETERMINED):  # an undetermined cell's headline says why: no spikes
        return ""
    reasons = [r for r in plain(row.get("sero_unsure_reasons")).split("+") if r]
    words = []
    for reason in reasons:
        if reason == "quality":
            checks = plain(row.get("sero_quality")).replace("+", ", ")
            words.append(f"{_REASONS[reason]} ({checks})" if checks and checks != "ok" else _REASONS[reason])
        elif reason == "domain":
            domain = plain(row.get("sero_domain")).replace("+", ", ")
            words.append(f"{_REASONS[reason]} ({domain})" if domain else _REASONS[reason])
        else:
            words.append(_REASONS.get(reason, reason.replace("_", " ")))
    if not words and call_of(row) == UNSURE:
        quality = plain(row.get("sero_quality"))
        words.append(quality.replace("+", ", ") if quality and quality != "ok" else "not reliable")
    return "; ".join(words)


def type_text(row) -> str:
    """Typical/atypical, only for a reliable call (an unsure cell is not typed)."""
    if call_of(row) not in (SER, NSER):
        return "-"
    sero_type = plain(row.get("sero_type"))
    return _TYPES.get(sero_type, sero_type.replace("_", " ") or "-")
