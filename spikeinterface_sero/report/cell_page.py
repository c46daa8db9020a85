"""The page of one cell: the action currents the model saw, the raw per-spike outputs, the firing rate and the
intervals, a box with the call, its reasons and the rule, and the guarantee below (``docs/report.md``)."""

from __future__ import annotations

import numpy as np

from ..decision import running_cell_probability, uncalibrate
from ..features import trough_and_peak_indices
from .figures import THUMBNAIL_INCHES, fit_text, literal, new_figure, no_data, stamp, wrap
from .reader import CellView, RunView
from .words import (
    BACKGROUNDS,
    CELL_SCALE,
    COLOURS,
    DEMO_BANNER,
    SPIKE_SCALE,
    call_headline,
    call_of,
    number,
    plain,
    reasons_text,
    short_call,
    type_text,
)

__all__ = ["plot_cell", "cell_thumbnail"]

MAX_DRAWN = 200
_NICE_BINS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_SAFE_COLOUR = "#1b7f3b"
_INFO_WIDTH = 58  # characters per line of the info box (monospace): longer lines wrap, nothing is cut


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _time_ms(n_samples: int) -> np.ndarray:
    return (np.arange(n_samples) - 40) / 40.0  # the model's snippets: 40 kHz, trigger at sample 40


def _panel_waveforms(ax, waveforms, colour, udi_ms=float("nan"), seed=0):
    ax.set_title("Action currents the model saw (pA, trigger at 0 ms)", fontsize=10, loc="left")
    if waveforms.shape[0] == 0:
        no_data(ax, "no spikes detected\n(nothing crossed the threshold)")
        return
    t_ms = _time_ms(waveforms.shape[1])
    index = np.arange(waveforms.shape[0])
    if index.size > MAX_DRAWN:
        index = np.sort(np.random.default_rng(seed).choice(index, MAX_DRAWN, replace=False))
    ax.plot(t_ms, waveforms[index].T, color="#9A9A9A", lw=0.4, alpha=0.5)
    mean = waveforms.mean(axis=0)
    ax.plot(t_ms, mean, color=colour, lw=2.4, label=f"mean of {waveforms.shape[0]}")
    _mark_udi(ax, t_ms, mean, udi_ms)
    ax.axvline(0.0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("time from trigger (ms)")
    ax.set_ylabel("current (pA)")
    ax.set_xlim(t_ms[0], t_ms[-1])
    n = waveforms.shape[0]
    drawn = f"{index.size} of {n} drawn" if index.size < n else f"{n} drawn"
    ax.legend(loc="lower right", fontsize=8, frameon=False, title=drawn, title_fontsize=8)


def _mark_udi(ax, t_ms, mean, udi_ms):
    """Mark the UDI on the mean action current: its trough (upstroke) and the following peak (downstroke)."""
    if not np.isfinite(udi_ms):
        return
    troughs, peaks = trough_and_peak_indices(np.asarray(mean, dtype=float)[None, :])
    i_min, i_max = int(troughs[0]), int(peaks[0])
    if i_max <= i_min:
        return
    y = float(mean[i_max]) + 0.08 * float(np.ptp(mean))
    ax.plot([t_ms[i_min], t_ms[i_max]], [mean[i_min], mean[i_max]], "o", ms=5, color="k", zorder=5)
    ax.annotate("", xy=(t_ms[i_min], y), xytext=(t_ms[i_max], y), arrowprops=dict(arrowstyle="<->", color="k", lw=1.0))
    ax.vlines([t_ms[i_min], t_ms[i_max]], [mean[i_min], mean[i_max]], y, colors="k", lw=0.5, linestyles=":")
    ax.text(0.5 * (t_ms[i_min] + t_ms[i_max]), y, f"UDI {udi_ms:.2f} ms", ha="center", va="bottom", fontsize=9)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, max(hi, y + 0.12 * float(np.ptp(mean))))


def _panel_spike_outputs(ax, cell: CellView, run: RunView, colour):
    """The raw per-spike outputs on their own scale, the cell's mean on that scale, and the calibrated cell
    value said in words (a different scale)."""
    ax.set_title("Per spike: raw ensemble output P(SER)", fontsize=10, loc="left")
    if run.method != "cnn":
        no_data(ax, "classical-criteria method:\nno CNN output")
        return
    p = cell.p_ser[np.isfinite(cell.p_ser)]
    if p.size == 0:
        no_data(ax, "no spikes classified")
        return
    ax.hist(p, bins=np.linspace(0, 1, 26), color=colour, alpha=0.75, edgecolor="white", label="spikes")
    ax.axvline(0.5, color="k", lw=1.0, ls="--", label="0.5")
    cell_p = _float(cell.row.get("sero_probability"))
    if np.isfinite(cell_p):
        raw = float(uncalibrate([cell_p], run.calibration)[0])
        ax.axvline(raw, color=colour, lw=2.2, label=f"cell, raw scale {raw:.2f}")
        ax.text(
            0.99,
            0.97,
            f"{CELL_SCALE}: {cell_p:.2f}\n(cell scale, after calibration)",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7.5,
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel(SPIKE_SCALE, fontsize=8)
    ax.set_ylabel("spikes")
    ax.legend(fontsize=7, frameon=False, loc="upper left")


def _rate_bin(total_s: float, mean_rate: float) -> float:
    want = max(total_s / 60.0, 3.0 / mean_rate if mean_rate > 0 else 0.0)
    for width in _NICE_BINS_S:
        if width >= want:
            return min(width, total_s) if total_s > 0 else width
    return _NICE_BINS_S[-1]


def _shade_left_out(ax, row, total: float) -> None:
    """The stretches the seal watch left out, shaded, with what happened (``sero_seal``)."""
    start, end = _float(row.get("sero_stable_start_s")), _float(row.get("sero_stable_end_s"))
    seal = str(row.get("sero_seal", ""))
    if seal not in ("", "stable", "not_watched") and end == end:
        label = f"left out: {seal.replace('+', ', ')}"
        ax.axvspan(end, max(total, end), color="#B00020", alpha=0.12, lw=0, label=label, gid="left_out")
        if start == start and start > 0:
            ax.axvspan(0, start, color="#B00020", alpha=0.12, lw=0, gid="left_out")


def _safe_words(row) -> str | None:
    safe_s, safe_n = _float(row.get("sero_safe_after_s")), _float(row.get("sero_safe_after_spikes"))
    return f"call safe after {safe_n:.0f} spikes ({safe_s:.1f} s)" if safe_s == safe_s else None


def _mark_seal_and_safe_moment(ax, row, total: float) -> None:
    """The stretches the seal watch left out (shaded, with what happened) and the moment the call was safe."""
    _shade_left_out(ax, row, total)
    if _safe_words(row):
        ax.axvline(_float(row.get("sero_safe_after_s")), color=_SAFE_COLOUR, lw=1.4, label=_safe_words(row))


def _classified_spikes(cell: CellView) -> np.ndarray:
    """Indices of the spikes the call was made on (the stable stretch), in the order they were recorded."""
    t = cell.spike_times_s
    start, end = _float(cell.row.get("sero_stable_start_s")), _float(cell.row.get("sero_stable_end_s"))
    keep = np.isfinite(t) & (t >= (start if start == start else -np.inf)) & (t <= (end if end == end else np.inf))
    index = np.flatnonzero(keep)
    return index[np.argsort(t[index], kind="stable")]


def _panel_running(ax, cell: CellView, run: RunView, total: float) -> None:
    """The cell rule's running value spike by spike (``decision.running_cell_probability``) over the stretch
    classified, on the ensemble's scale and the calibrated cell scale, with the moment the call was safe."""
    ax.set_title(
        "Running P(SER) of the cell, spike by spike, and the moment the call was safe", fontsize=10, loc="left"
    )
    index = _classified_spikes(cell)
    if run.method != "cnn" or index.size == 0 or cell.consensus.shape[0] != cell.spike_times_s.size:
        no_data(ax, "no CNN output to follow" if run.method != "cnn" else "no spikes classified")
        return
    t = cell.spike_times_s[index]
    raw, calibrated = running_cell_probability(cell.consensus[index], run.calibration)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    if run.calibration:  # the ensemble's own scale beside the calibrated one (the same without a calibration)
        style = dict(color="#555555", lw=1.0, label="raw cell mean (ensemble scale)", gid="running_raw")
        ax.step(t, raw, where="post", **style)
    label = CELL_SCALE if run.calibration else "cell P(SER) (no calibration: the ensemble's scale)"
    ax.step(t, calibrated, where="post", color=COLOURS[call_of(cell.row)], lw=1.8, label=label, gid="running")
    _shade_left_out(ax, cell.row, total)
    words = _safe_words(cell.row)
    n_safe = int(_float(cell.row.get("sero_safe_after_spikes"))) if words else 0
    if words and 1 <= n_safe <= index.size:
        when, value = float(t[n_safe - 1]), float(calibrated[n_safe - 1])
        ax.axvline(when, color=_SAFE_COLOUR, lw=1.4)
        ax.plot([when], [value], "o", ms=7, color=_SAFE_COLOUR, label=words, gid="safe_moment", zorder=5)
        below = value > 0.75  # the words go where the curve is not
        offset = (6, -16 if below else 10)
        ax.annotate(words, (when, value), xytext=offset, textcoords="offset points", fontsize=8, color=_SAFE_COLOUR)
    else:
        ax.text(
            0.01,
            0.04,
            "the call never became safe in this stretch",
            transform=ax.transAxes,
            fontsize=8,
            color="#555555",
            gid="never_safe",
        )
    ax.set_xlim(0, max(total, float(t[-1])))
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"time from the start of the recording (s); {index.size} spikes classified")
    ax.set_ylabel("P(SER) so far")
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def _panel_rate(ax, times, durations, offsets, row=None):
    ax.set_title("Firing rate over time, the stretch classified, the safe moment", fontsize=10, loc="left")
    total = float(sum(durations))
    if times.size == 0 or total <= 0:
        no_data(ax, "no spikes: rate 0 Hz")
        return
    mean_rate = times.size / total
    width = _rate_bin(total, mean_rate)
    edges = np.arange(0.0, total, width)
    edges = np.append(edges, total) if edges[-1] < total else edges
    if edges.size < 2:
        edges = np.array([0.0, total])
    counts, _ = np.histogram(times, bins=edges)
    rates = counts / np.diff(edges)
    ax.stairs(rates, edges, color="#333333", lw=1.2, fill=True, alpha=0.25)
    ax.stairs(rates, edges, color="#333333", lw=1.2)
    ax.axhline(mean_rate, color="#B8860B", lw=1.0, ls="--", label=f"mean {mean_rate:.2f} Hz")
    for offset in offsets[1:]:
        ax.axvline(offset, color="#999999", lw=0.6, ls=":")
    if len(offsets) == 1 and row is not None:  # one sweep: the recording's time is the panel's time
        _mark_seal_and_safe_moment(ax, row, total)
    ax.set_xlim(0, total)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time (s; {width:g} s bins" + (", sweeps end to end)" if len(offsets) > 1 else ")"))
    ax.set_ylabel("rate (Hz)")
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def _panel_isi(ax, isi_s, cv):
    ax.set_title("Inter-spike intervals", fontsize=10, loc="left")
    if isi_s.size == 0:
        no_data(ax, "fewer than 2 spikes in a sweep:\nno intervals")
        return
    ms = isi_s * 1000.0
    lo, hi = np.floor(np.log10(ms.min())), np.ceil(np.log10(ms.max()))
    hi = max(hi, lo + 1)
    ax.hist(ms, bins=np.logspace(lo, hi, int(12 * (hi - lo)) + 1), color="#555555", alpha=0.8, edgecolor="white")
    ax.set_xscale("log")
    median = float(np.median(ms))
    label = f"median {median:.0f} ms" + (f", CV {cv:.2f}" if np.isfinite(cv) else "")
    ax.axvline(median, color="#B8860B", lw=1.0, ls="--", label=label)
    ax.set_xlabel("ISI (ms, log scale)")
    ax.set_ylabel("intervals")
    ax.legend(fontsize=7, frameon=False, loc="upper left")


def _model_words(run: RunView) -> str:
    model = run.model
    if run.kernels:
        ks = run.kernels
        model += f", {len(ks)} x k{min(ks)}-{max(ks)}" if len(ks) > 1 else f", k{ks[0]}"
    return model


def info_text(cell: CellView, run: RunView) -> str:
    """The text of a cell's box, wrapped (nothing cut): the call, its reasons, the numbers and the rule."""
    row = cell.row
    p, low, high = (_float(row.get(k)) for k in ("sero_probability", "sero_probability_low", "sero_probability_high"))
    n_classified = int(_float(row.get("n_spikes"))) if np.isfinite(_float(row.get("n_spikes"))) else 0
    lines = [f"File: {plain(cell.file)}, channel {cell.channel}"] if cell.file else []
    lines += [f"Call: {call_headline(row)}"]
    reasons = reasons_text(row)
    if reasons:
        lines.append(f"Why unsure: {reasons}")
    manual = plain(row.get("sero_manual_label"))
    if manual:
        lines.append(f"Curated by a person: {manual.replace('_', ' ')}")
    if np.isfinite(p):
        lines.append(f"{CELL_SCALE}: {p:.2f}  [{number(low)}-{number(high)}]")
    spikes = f"Spikes: {n_classified} classified / {cell.times.size} detected"
    lines.append(spikes + (f" ({cell.n_dropped} dropped at sweep edges)" if cell.n_dropped else ""))
    fraction = _float(row.get("fraction_spikes_ser"))
    if np.isfinite(fraction):
        lines.append(f"{100 * fraction:.0f} % of spikes have a raw output favouring SER")
    lines += [
        f"Type: {type_text(row)}",
        f"Criteria: {plain(row.get('criteria_label')) or '-'}",
        f"UDI {number(row.get('udi_ms'))} ms, rate {number(row.get('firing_rate_hz'))} Hz, "
        f"CV {number(row.get('cv_isi'))}, LV {number(row.get('lv'))}",
        f"Model: {_model_words(run)}",
        "",
        f"Rule: {run.rule}.",
        "Atypical: the CNN and the classical criteria disagree (UDI >= "
        f"{run.criteria['min_udi_ms']:g} ms, rate <= {run.criteria['max_rate_hz']:g} Hz, "
        f"CV <= {run.criteria['max_cv']:g}).",
    ]
    return literal(wrap("\n".join(lines), _INFO_WIDTH))


def _info_box(ax, cell: CellView, run: RunView, key: str):
    from matplotlib.patches import FancyBboxPatch

    ax.axis("off")
    box = FancyBboxPatch((0.0, 0.0), 1.0, 1.0, boxstyle="round,pad=0.01", transform=ax.transAxes)
    box.set(facecolor=BACKGROUNDS[key], edgecolor=COLOURS[key], lw=1.5)
    ax.add_patch(box)
    artist = ax.text(0.03, 0.97, info_text(cell, run), transform=ax.transAxes, family="monospace", va="top")
    artist.set(fontsize=8.0, gid="info")
    fit_text(ax, artist)


def plot_cell(cell: CellView, run: RunView, *, dpi: int = 100):
    """The matplotlib Figure of one cell (a :class:`~spikeinterface_sero.report.reader.CellView` of
    :func:`~spikeinterface_sero.report.reader.read_run`). Its title is the call as a person reads it: a label
    only when the call is reliable, else e.g. "UNSURE (leans SER, P(SER) 0.70)"."""
    row = cell.row
    key = call_of(row)
    colour = COLOURS[key]
    fig = new_figure((14, 11.6), dpi=dpi)
    gs = fig.add_gridspec(
        3, 3, left=0.06, right=0.985, bottom=0.06, top=0.89, hspace=0.45, wspace=0.28, width_ratios=[1, 1, 1.25]
    )
    title = f"{literal(cell.cell_id)}:  {call_headline(row)}" + (" (no spikes)" if cell.times.size == 0 else "")
    fig.suptitle(title, x=0.06, y=0.95, ha="left", fontsize=15, fontweight="bold", color=colour)
    _panel_waveforms(fig.add_subplot(gs[0, :2]), cell.waveforms, colour, _float(row.get("udi_ms")))
    _info_box(fig.add_subplot(gs[0, 2]), cell, run, key)
    _panel_spike_outputs(fig.add_subplot(gs[1, 0]), cell, run, colour)
    _panel_rate(fig.add_subplot(gs[1, 1:]), cell.times, cell.durations, cell.offsets, row)
    _panel_isi(fig.add_subplot(gs[2, 0]), cell.isi, _float(row.get("cv_isi")))
    _panel_running(fig.add_subplot(gs[2, 1:]), cell, run, float(sum(cell.durations)))
    if run.demo:  # also at the top, where the eye starts
        fig.text(0.5, 0.995, DEMO_BANNER, ha="center", va="top", fontsize=13, fontweight="bold", color="white")
        fig.texts[-1].set(bbox=dict(boxstyle="round,pad=0.35", fc=COLOURS["error"], ec="none"), gid="demo")
    stamp(fig, run)
    return fig


def cell_thumbnail(cell: CellView, run: RunView):
    """The small figure of a cell for the summary table: the action currents and their mean, the call as the
    title (never a label for an unsure call)."""
    row = cell.row
    key = call_of(row)
    fig = new_figure(THUMBNAIL_INCHES, layout="constrained")
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7, length=2, pad=1)
    p = _float(row.get("sero_probability"))
    title = short_call(row) if key != "unsure" else call_headline(row)
    if key != "unsure" and np.isfinite(p):
        title += f"  P(SER) {p:.2f}"
    ax.set_title(title, fontsize=7, fontweight="bold", color=COLOURS[key], loc="left")
    stamp(fig, run, small=True)
    waveforms = cell.waveforms
    if waveforms.shape[0] == 0:
        no_data(ax, "no spikes")
        return fig
    t_ms = _time_ms(waveforms.shape[1])
    n = waveforms.shape[0]
    drawn = waveforms if n <= 50 else waveforms[np.random.default_rng(0).choice(n, 50, replace=False)]
    ax.plot(t_ms, drawn.T, color="#9A9A9A", lw=0.3, alpha=0.5)
    ax.plot(t_ms, waveforms.mean(axis=0), color=COLOURS[key], lw=1.8)
    ax.axvline(0.0, color="k", lw=0.5, ls=":")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_xlabel("ms from the trigger", fontsize=7, labelpad=1)
    ax.set_ylabel("pA", fontsize=7, labelpad=1)
    udi = _float(row.get("udi_ms"))
    text = f"{n} spikes" + (f", UDI {udi:.2f} ms" if np.isfinite(udi) else "")
    ax.text(0.98, 0.04, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
    return fig
