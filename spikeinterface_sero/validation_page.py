"""The page of a rig validation: the reliability diagram (PNG) and the HTML a person reads (``docs/validate.md``)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .conformal import guarantee
from .files import atomic_path

__all__ = ["write_reliability_png", "page_html"]


def write_reliability_png(figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    bins = [b for b in figures["calibration"]["bins"] if b["n"]]
    figure, axis = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    axis.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
    axis.scatter([b["mean_p_ser"] for b in bins], [b["frac_ser"] for b in bins], s=[20 + 8 * b["n"] for b in bins])
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="calibrated cell P(SER)", ylabel="observed share of SER cells")
    axis.set_title(f"Reliability (ECE {figures['calibration']['ece'] or 0:.3f})", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)


def _interval_text(interval) -> str:
    return f"{interval[0]:.2f}-{interval[1]:.2f}" if interval else "-"


def page_html(figures: dict, rig: dict, cells: pd.DataFrame, how: str, model_folder: Path) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{v['right']}/{v['n']}</td><td>{(v['recall'] or 0):.2f}</td>"
        f"<td>{_interval_text(v['interval'])}</td><td>{v['more_cells_for_5_points']}</td></tr>"
        for name, v in figures["per_class"].items()
    )
    precision = figures["reliable_precision"]
    lines = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Validation on a rig</title></head><body>",
        f"<h1>Validation of {html.escape(str(model_folder))} on rig {html.escape(rig['name'])}</h1>",
        f"<p>{figures['n_cells']} labelled cells ({figures['n_usable']} passing the checks with enough spikes), "
        f"days: {html.escape(', '.join(figures['days']) or 'not given')}; validated {rig['date']}.</p>",
        f"<h2>Guarantee</h2><p>{html.escape(guarantee(rig))}.</p>",
        "<h2>Recall per class</h2><table border=1 cellpadding=4><tr><th>class</th><th>right</th><th>recall</th>"
        "<th>95 % interval (Clopper-Pearson)</th><th>more cells for +-5 points</th></tr>" + rows + "</table>",
        f"<p>Balanced accuracy {figures['balanced_accuracy'] or 0:.3f} "
        f"({_interval_text(figures['balanced_accuracy_interval'])}).</p>",
        "<h2>Reliable calls (cross-fitted)</h2>",
        f"<p>The sets and rig matches below were cross-fitted ({html.escape(how)}): each cell was judged by a "
        "conformal fit and fingerprint made without it, so these figures are not the fit grading itself. "
        f"Reliable: {figures['reliable_n']} of {figures['n_cells']} cells ({(figures['reliable_share'] or 0):.0%}); "
        f"right: {'-' if precision is None else f'{precision:.0%}'} "
        f"({_interval_text(figures['reliable_precision_interval'])}). Set coverage: "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.0%}'}" for k, v in figures["set_coverage"].items())
        + f". Cells of this rig flagged unlike it when left out: {(figures['same_rig_flagged_unlike'] or 0):.0%}. "
        + _sessions_text(figures.get("same_rig_sessions_unlike"))
        + "</p>",
        "<h2>Calibration</h2><img src='reliability.png' alt='reliability diagram'>",
        f"<p>Member disagreement (SD of members' P(SER)): {figures['member_spread_right'] or 0:.3f} on right calls, "
        f"{figures['member_spread_wrong'] or 0:.3f} on wrong ones.</p>",
        "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in figures["warnings"]) + "</ul>",
        "<h2>Cells</h2>" + cells[_CELL_COLUMNS].to_html(index=False, float_format=lambda v: f"{v:.3f}"),
        "</body></html>",
    ]
    return "\n".join(lines)


_CELL_COLUMNS = [
    "file",
    "group",
    "label",
    "type",
    "sero_label",
    "sero_probability",
    "n_spikes",
    "sero_quality",
    "oof_set",
    "oof_rig",
    "oof_reliable",
]


def _sessions_text(sessions: dict | None) -> str:
    """The session check on the rig's own days, each held out as a session (docs/validate.md, "Sessions")."""
    if not sessions or not sessions["judged"]:
        return "No day could be judged as a session (it needs 3 other days and 5 cells of the day)."
    unlike = f" ({html.escape(', '.join(sessions['days']))})" if sessions["days"] else ""
    return (
        f"Days of this rig judged unlike it as a session when left out: {sessions['unlike']} of "
        f"{sessions['judged']}{unlike}; their cells are not reliable above."
    )
