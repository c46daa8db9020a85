"""The population view: every cell's UDI against its firing rate and CV, reliable calls filled, unsure ones
hollow in the colour of the side they lean to, the classical criteria's thresholds drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..constants import LABELS
from ..features import DEFAULT_MAX_CV, DEFAULT_MAX_RATE_HZ, DEFAULT_MIN_UDI_MS
from .figures import new_figure, stamp
from .reader import RunView
from .words import COLOURS, DEMO_BANNER, call_of, plain

__all__ = ["plot_population"]

_SHORT = {LABELS[0]: "SER", LABELS[1]: "NSER"}


def _groups(table: pd.DataFrame):
    """(name, mask, colour, filled) of each group of cells drawn."""
    calls = np.asarray([call_of(row) for _, row in table.iterrows()], dtype=object)
    leans = table["sero_label"].map(lambda v: plain(v).strip().lower()).to_numpy()
    for label in LABELS:
        yield f"{_SHORT[label]} (reliable)", calls == label, COLOURS[label], True
        yield f"unsure, leans {_SHORT[label]}", (calls == "unsure") & (leans == label), COLOURS[label], False
    yield "undetermined", ~np.isin(calls, LABELS) & ~np.isin(leans, LABELS), COLOURS["undetermined"], False


def _thresholds(ax, limit, rule):
    ax.axhline(DEFAULT_MIN_UDI_MS, color="0.4", lw=0.8, ls="--")
    ax.axvline(limit, color="0.4", lw=0.8, ls="--")
    ax.text(limit, ax.get_ylim()[1], f" {rule} ≤ {limit:g}", va="top", ha="left", fontsize=8, color="0.3")
    wide = f"wide ≥ {DEFAULT_MIN_UDI_MS:g} ms "
    ax.text(ax.get_xlim()[1], DEFAULT_MIN_UDI_MS, wide, va="bottom", ha="right", fontsize=8, color="0.3")


def _panel_safe_moments(ax, table: pd.DataFrame) -> None:
    """How long the session's recordings needed to be: the time each cell's call became safe (docs/live.md)."""
    ax.set_title("time to a safe call (s), per cell", fontsize=10, loc="left")
    column = table["sero_safe_after_s"] if "sero_safe_after_s" in table else pd.Series(dtype=float)
    seconds = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    seconds = seconds[np.isfinite(seconds)]
    if not seconds.size:
        ax.text(0.5, 0.5, "no call became safe", ha="center", va="center", transform=ax.transAxes, color="#777777")
        return
    ax.hist(seconds, bins=min(20, max(5, seconds.size)), color="#1b7f3b", alpha=0.7, gid="safe_moments")
    never = int(len(column) - seconds.size)
    ax.set_xlabel(f"median {np.median(seconds):.1f} s; {seconds.size} cells safe, {never} never")
    ax.set_ylabel("cells")
    from matplotlib.ticker import MaxNLocator  # matplotlib only where a figure is drawn

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def plot_population(table: pd.DataFrame, *, dpi: int = 100, demo: bool = False, guarantee: str | None = None):
    """The population view CellExplorer users rely on.

    Parameters
    ----------
    table : pandas.DataFrame
        Results rows (``udi_ms``, ``firing_rate_hz``, ``cv_isi``, ``sero_label``, ``sero_call``).
    dpi : int, default: 100
        Resolution of the figure.
    demo : bool, default: False
        The calls come from the demonstration model (a banner says so).
    guarantee : str or None, default: None
        The guarantee's words, written below the panels (None: none written).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure((15, 4.8), dpi=dpi)
    gaps = dict(left=0.05, right=0.985, bottom=0.11, top=0.87, wspace=0.22, width_ratios=[1, 1, 0.8])
    *axes, moments = fig.subplots(1, 3, gridspec_kw=gaps)
    y = pd.to_numeric(table["udi_ms"], errors="coerce").to_numpy(dtype=float)
    panels = [
        ("firing_rate_hz", "firing rate (Hz)", DEFAULT_MAX_RATE_HZ, "slow"),
        ("cv_isi", "CV of the inter-spike intervals", DEFAULT_MAX_CV, "regular"),
    ]
    for ax, (column, name, limit, rule) in zip(axes, panels):
        x = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        for label, mask, colour, filled in _groups(table):
            mask = mask & np.isfinite(x) & np.isfinite(y)
            if mask.any():
                face = colour if filled else "none"
                ax.scatter(x[mask], y[mask], s=46, facecolors=face, edgecolors=colour, linewidths=1.4, label=label)
        _thresholds(ax, limit, rule)
        ax.set_xlabel(name)
        ax.set_ylabel("UDI (ms)")
    axes[0].legend(loc="best", fontsize=8, frameon=False)
    _panel_safe_moments(moments, table)
    title = f"{len(table)} cell{'' if len(table) == 1 else 's'}: the classical criteria's thresholds dashed; hollow: unsure calls"
    fig.suptitle(f"{DEMO_BANNER}\n{title}" if demo else title, fontsize=10, color="#B00020" if demo else "black")
    fig._suptitle.set_gid("demo" if demo else None)
    if guarantee is not None:
        stamp(fig, RunView(demo=demo, guarantee=guarantee))
    return fig
