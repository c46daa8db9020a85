"""What a user looks at: one PNG per cell and its detection view (the raw trace with the detector's baseline,
threshold and triggers, or why a channel gave no spikes), the population view and an ``index.html`` summary
of a run (``docs/tutorial.md``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import html
import os
import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from ._version import __version__
from .analyzers import snippets_from_analyzer
from .detection import DetectionParams, detection_trace
from .errors import SeroError
from .export import RESULT_COLUMNS
from .extension import get_serotonergic_extension
from .features import DEFAULT_MAX_CV, DEFAULT_MAX_RATE_HZ, DEFAULT_MIN_UDI_MS, trough_and_peak_indices

__all__ = [
    "REPORT_TABLE",
    "write_cell_reports",
    "write_summary_html",
    "cell_plot_name",
    "detection_plot_name",
    "plot_cell",
    "plot_detection",
    "plot_population",
]

#: the results table a report folder holds next to its ``index.html``
REPORT_TABLE = "results.csv"

#: colours of the labels (Okabe-Ito blue / orange: distinguishable with colour-vision deficiency)
COLOURS = {"serotonergic": "#0072B2", "non_serotonergic": "#D55E00", "undetermined": "#777777", "error": "#B00020"}
_BACKGROUNDS = {"serotonergic": "#DCEBF7", "non_serotonergic": "#FBE3D6", "undetermined": "#EEEEEE", "error": "#F8D7DA"}
_DISPLAY = {
    "serotonergic": "SEROTONERGIC (SER)",
    "non_serotonergic": "NON-SEROTONERGIC (NSER)",
    "undetermined": "UNDETERMINED",
    "error": "ERROR",
}
_SHORT = {"serotonergic": "SER", "non_serotonergic": "NSER", "undetermined": "undetermined", "error": "ERROR"}
DEMO_BANNER = "DEMO MODEL (simulated data) - not for scientific conclusions"
MAX_DRAWN = 200
_NICE_BINS_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


# ------------------------------------------------------------------------------------------------- names
def cell_plot_name(cell_id, file=None, channel=None) -> str:
    """The PNG file name of a cell: its id with every character outside ``[A-Za-z0-9._-]`` replaced by
    ``_`` (so ``A140313#073`` is safe in a URL and on every file system), plus a short hash of
    (file, channel, cell id) so that cells with the same name in different files do not collide."""
    text = "" if cell_id is None or (isinstance(cell_id, float) and np.isnan(cell_id)) else str(cell_id)
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80] or "cell"
    key = f"{_clean(file)}|{_clean(channel)}|{text}"
    return f"{base}_{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}.png"


def _clean(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def _label_key(label) -> str:
    s = _clean(label).strip().lower()
    return s if s in COLOURS else "undetermined"


def _fmt(v, spec: str = ".2f", missing: str = "-") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return missing
    return missing if not np.isfinite(f) else format(f, spec)


# ------------------------------------------------------------------------------------------------- data
def _segment_layout(analyzer):
    fs = float(analyzer.sampling_frequency)
    durations = [analyzer.get_num_samples(s) / fs for s in range(analyzer.get_num_segments())]
    offsets = np.concatenate([[0.0], np.cumsum(durations)[:-1]]) if durations else np.zeros(0)
    return fs, durations, offsets


def _spike_times(analyzer, unit_id, fs, offsets):
    """(times on the concatenated time axis in s, ISIs within sweeps in s) of every detected spike."""
    times, isis = [], []
    for s, off in enumerate(offsets):
        st = np.sort(
            analyzer.sorting.get_unit_spike_train(unit_id, segment_index=s, return_times=True, use_cache=False)
        )
        st = st - analyzer.sorting.sample_index_to_time(0, segment_index=s)
        times.append(st + off)
        if st.size > 1:
            isis.append(np.diff(st))
    t = np.concatenate(times) if times else np.zeros(0)
    isi = np.concatenate(isis) if isis else np.zeros(0)
    return t, isi[isi > 0]


def _cell_data(analyzer, file=None):
    """Per unit: everything a cell plot shows."""
    ext = get_serotonergic_extension(analyzer)
    units = ext.get_data()
    spikes = ext.get_data(outputs="spikes")
    sn = snippets_from_analyzer(analyzer)
    spike_units = spikes["unit_id"].astype(str).to_numpy()
    cell_prop = analyzer.sorting.get_property("cell_id")
    dropped = analyzer.sorting.get_property("n_dropped_edge")
    fs, durations, offsets = _segment_layout(analyzer)
    out = []
    for i, u in enumerate(analyzer.unit_ids):
        row = units.loc[u] if u in units.index else pd.Series(dtype=object)
        times, isi = _spike_times(analyzer, u, fs, offsets)
        out.append(
            dict(
                unit_id=u,
                channel=str(u),
                file=file,
                cell_id=str(cell_prop[i]) if cell_prop is not None else str(u),
                row=row,
                waveforms=sn.waveforms[sn.unit_ids == str(u)],
                p_ser=spikes["p_ser"].to_numpy(dtype=float)[spike_units == str(u)],
                times=times,
                isi=isi,
                durations=durations,
                offsets=offsets,
                n_dropped=int(dropped[i]) if dropped is not None else None,
            )
        )
    return ext, out


# ------------------------------------------------------------------------------------------------- plots
def _no_data(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _panel_waveforms(ax, wf, colour, udi_ms=float("nan"), seed=0):
    ax.set_title("Action currents (trigger at 0 ms)", fontsize=10, loc="left")
    if wf.shape[0] == 0:
        _no_data(ax, "no spikes detected\n(nothing crossed the threshold)")
        return
    t_ms = (np.arange(wf.shape[1]) - 40) / 40.0  # 40 kHz, trigger at sample 40
    idx = np.arange(wf.shape[0])
    if idx.size > MAX_DRAWN:
        idx = np.sort(np.random.default_rng(seed).choice(idx, MAX_DRAWN, replace=False))
    ax.plot(t_ms, wf[idx].T, color="#9A9A9A", lw=0.4, alpha=0.5)
    mean = wf.mean(axis=0)
    ax.plot(t_ms, mean, color=colour, lw=2.4, label=f"mean of {wf.shape[0]}")
    _mark_udi(ax, t_ms, mean, udi_ms)
    ax.axvline(0.0, color="k", lw=0.6, ls=":")
    ax.set_xlabel("time from trigger (ms)")
    ax.set_ylabel("current (pA)")
    ax.set_xlim(t_ms[0], t_ms[-1])
    drawn = f"{idx.size} of {wf.shape[0]} drawn" if idx.size < wf.shape[0] else f"{wf.shape[0]} drawn"
    ax.legend(loc="lower right", fontsize=8, frameon=False, title=drawn, title_fontsize=8)


def _mark_udi(ax, t_ms, mean, udi_ms):
    """Mark the UDI on the mean action current: its trough (upstroke) and the following peak (downstroke),
    the points Elephant's waveform_width measures."""
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


def _panel_probability(ax, p, row, colour, method):
    ax.set_title("Per-spike P(SER)", fontsize=10, loc="left")
    p = p[np.isfinite(p)]
    if method == "criteria":
        _no_data(ax, "classical-criteria method:\nno CNN probability")
        return
    if p.size == 0:
        _no_data(ax, "no spikes classified")
        return
    ax.hist(p, bins=np.linspace(0, 1, 26), color=colour, alpha=0.75, edgecolor="white")
    ax.axvline(0.5, color="k", lw=1.0, ls="--", label="0.5 (decision)")
    cp, lo, hi = (_float(row.get(k)) for k in ("sero_probability", "sero_probability_low", "sero_probability_high"))
    if np.isfinite(lo) and np.isfinite(hi):
        ax.axvspan(lo, hi, color=colour, alpha=0.2, lw=0, label="95 % CI")
    if np.isfinite(cp):
        ax.axvline(cp, color=colour, lw=2.2, label=f"cell P = {cp:.2f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(serotonergic)   NSER <- 0.5 -> SER")
    ax.set_ylabel("spikes")
    ax.legend(fontsize=7, frameon=False, loc="upper left")


def _rate_bin(total_s: float, mean_rate: float) -> float:
    want = max(total_s / 60.0, 3.0 / mean_rate if mean_rate > 0 else 0.0)
    for b in _NICE_BINS_S:
        if b >= want:
            return min(b, total_s) if total_s > 0 else b
    return _NICE_BINS_S[-1]


def _panel_rate(ax, times, durations, offsets):
    ax.set_title("Firing rate over time", fontsize=10, loc="left")
    total = float(sum(durations))
    if times.size == 0 or total <= 0:
        _no_data(ax, "no spikes: rate 0 Hz")
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
    for off in offsets[1:]:
        ax.axvline(off, color="#999999", lw=0.6, ls=":")
    ax.set_xlim(0, total)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time (s; {width:g} s bins" + (", sweeps end to end)" if len(offsets) > 1 else ")"))
    ax.set_ylabel("rate (Hz)")
    ax.legend(fontsize=7, frameon=False, loc="lower right")


def _panel_isi(ax, isi_s, cv):
    ax.set_title("Inter-spike intervals", fontsize=10, loc="left")
    if isi_s.size == 0:
        _no_data(ax, "fewer than 2 spikes in a sweep:\nno intervals")
        return
    ms = isi_s * 1000.0
    lo, hi = np.floor(np.log10(ms.min())), np.ceil(np.log10(ms.max()))
    if hi <= lo:
        hi = lo + 1
    bins = np.logspace(lo, hi, int(12 * (hi - lo)) + 1)
    ax.hist(ms, bins=bins, color="#555555", alpha=0.8, edgecolor="white")
    ax.set_xscale("log")
    med = float(np.median(ms))
    ax.axvline(
        med,
        color="#B8860B",
        lw=1.0,
        ls="--",
        label=f"median {med:.0f} ms" + (f", CV {cv:.2f}" if np.isfinite(cv) else ""),
    )
    ax.set_xlabel("ISI (ms, log scale)")
    ax.set_ylabel("intervals")
    ax.legend(fontsize=7, frameon=False, loc="upper left")


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _is_reliable(value) -> bool:
    """A ``sero_reliable`` value as a table holds it (bool, nullable boolean, or text read back from CSV)."""
    return str(value).strip() in ("True", "1", "1.0")


def _why_unreliable(row) -> str:
    quality = _clean(row.get("sero_quality"))
    if quality and quality != "ok":
        return quality.replace("+", ", ")
    domain = _clean(row.get("sero_domain"))
    if domain and domain not in ("in_domain", "resampled"):
        return domain.replace("+", ", ")
    return "few spikes or CI spans 0.5"


def _info_text(cell: dict, params: dict) -> str:
    row = cell["row"]
    label = _label_key(row.get("sero_label"))
    cp, lo, hi = (_float(row.get(k)) for k in ("sero_probability", "sero_probability_low", "sero_probability_high"))
    n_cls = _float(row.get("n_spikes"))
    n_cls = int(n_cls) if np.isfinite(n_cls) else int(cell["waveforms"].shape[0])
    n_det = int(cell["times"].size)
    frac = _float(row.get("fraction_spikes_ser"))
    sero_type = _clean(row.get("sero_type")) or "-"
    type_txt = {
        "typical_serotonergic": "typical SER (criteria agree)",
        "atypical_serotonergic": "ATYPICAL SER (criteria say NSER)",
        "typical_non_serotonergic": "typical NSER (criteria agree)",
        "atypical_non_serotonergic": "ATYPICAL NSER (criteria say SER)",
    }.get(sero_type, sero_type)
    method = params.get("method", "cnn")
    if method == "cnn":
        ks = [int(k) for k in params.get("model_kernels") or []]
        if params.get("model_is_demo"):
            model = "DEMO (simulated data)"
        else:
            model = (params.get("model_description") or "") or "model"
            model = (model[:22] + "...") if len(model) > 25 else model
        if ks:
            model += f", {len(ks)} x k{min(ks)}-{max(ks)}" if len(ks) > 1 else f", k{ks[0]}"
    else:
        model = "classical criteria (no CNN)"
    lines = [
        f"Label     {_SHORT[label]}",
        f"P(SER)    {_fmt(cp)}  [{_fmt(lo)}-{_fmt(hi)}] 95% CI" if np.isfinite(cp) else "P(SER)    -",
        (
            f"Reliable  {'yes' if _is_reliable(row.get('sero_reliable')) else 'NO: ' + _why_unreliable(row)}"
            if np.isfinite(cp) and "sero_reliable" in row
            else None
        ),
        f"Spikes    {n_cls} classified / {n_det} detected"
        + (f"\n          ({cell['n_dropped']} dropped at sweep edges)" if cell.get("n_dropped") else ""),
        f"          {_fmt(frac * 100, '.0f')} % of spikes have P > 0.5" if np.isfinite(frac) else None,
        f"Type      {type_txt}",
        f"Criteria  {_clean(row.get('criteria_label')) or '-'}",
        f"UDI       {_fmt(row.get('udi_ms'))} ms",
        f"Rate      {_fmt(row.get('firing_rate_hz'))} Hz",
        f"CV ISI    {_fmt(row.get('cv_isi'))}   LV {_fmt(row.get('lv'))}",
        f"Model     {model}",
    ]
    if cell.get("file"):
        name = Path(str(cell["file"])).name
        name = name if len(name) <= 32 else name[:14] + "..." + name[-15:]
        lines.insert(0, f"File      {name}  ch {str(cell['channel'])[:8]}")
    udi, rate, cv = (
        params.get(k) if params.get(k) is not None else d
        for k, d in (
            ("min_udi_ms", DEFAULT_MIN_UDI_MS),
            ("max_rate_hz", DEFAULT_MAX_RATE_HZ),
            ("max_cv", DEFAULT_MAX_CV),
        )
    )
    crit = f"(UDI >= {udi:g} ms, rate <= {rate:g} Hz, CV <= {cv:g})"
    if method == "cnn":
        lines += [
            "",
            "SER when P(SER) >= 0.5; a CI containing",
            "0.5 means an uncertain call. Atypical:",
            "CNN and classical criteria disagree",
            crit,
        ]
    else:
        lines += ["", "Classical criteria: SER when the spike", "is wide, the firing slow and regular", crit]
    return "\n".join(line for line in lines if line is not None)


def plot_cell(cell: dict, params: dict, *, dpi: int = 100):
    """The matplotlib Figure of one cell (``cell`` as built by :func:`write_cell_reports`). Uses the Agg
    canvas directly (no pyplot state: safe in worker threads and processes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    row = cell["row"]
    label = _label_key(row.get("sero_label"))
    colour = COLOURS[label]
    demo = bool(params.get("method", "cnn") == "cnn" and params.get("model_is_demo"))
    fig = Figure(figsize=(14, 8), dpi=dpi)
    FigureCanvasAgg(fig)
    top = 0.88 if demo else 0.91
    gs = fig.add_gridspec(
        2, 3, left=0.06, right=0.985, bottom=0.08, top=top, hspace=0.42, wspace=0.28, width_ratios=[1, 1, 1.1]
    )
    ax_wf = fig.add_subplot(gs[0, :2])
    ax_info = fig.add_subplot(gs[0, 2])
    ax_p = fig.add_subplot(gs[1, 0])
    ax_rate = fig.add_subplot(gs[1, 1])
    ax_isi = fig.add_subplot(gs[1, 2])

    cp, lo, hi = (_float(row.get(k)) for k in ("sero_probability", "sero_probability_low", "sero_probability_high"))
    title = f"{cell['cell_id']}:  {_DISPLAY[label]}" + (" (no spikes)" if cell["times"].size == 0 else "")
    if np.isfinite(cp):
        title += f"   P(SER) = {cp:.2f} [{_fmt(lo)}-{_fmt(hi)}]"
    fig.text(0.06, top + 0.035, title, fontsize=15, fontweight="bold", color=colour, ha="left", va="bottom")
    if demo:
        fig.text(
            0.5,
            0.975,
            DEMO_BANNER,
            ha="center",
            va="top",
            fontsize=13,
            fontweight="bold",
            color="white",
            bbox=dict(boxstyle="round,pad=0.35", fc="#B00020", ec="none"),
        )

    _panel_waveforms(ax_wf, cell["waveforms"], colour, _float(row.get("udi_ms")))
    _panel_probability(ax_p, cell["p_ser"], row, colour, params.get("method", "cnn"))
    _panel_rate(ax_rate, cell["times"], cell["durations"], cell["offsets"])
    _panel_isi(ax_isi, cell["isi"], _float(row.get("cv_isi")))

    ax_info.axis("off")
    ax_info.add_patch(
        FancyBboxPatch(
            (0.0, 0.0),
            1.0,
            1.0,
            boxstyle="round,pad=0.01",
            transform=ax_info.transAxes,
            fc=_BACKGROUNDS[label],
            ec=colour,
            lw=1.5,
        )
    )
    ax_info.text(
        0.04,
        0.96,
        _info_text(cell, params),
        transform=ax_info.transAxes,
        family="monospace",
        fontsize=8.0,
        va="top",
        ha="left",
    )
    if cell["waveforms"].shape[0] == 0 and cell["times"].size == 0:
        ax_info.text(
            0.04,
            0.04,
            "This cell has no spikes: no label can be given.",
            transform=ax_info.transAxes,
            fontsize=9,
            color=COLOURS["error"],
            va="bottom",
        )
    return fig


def _save_png(fig, path: Path) -> None:
    """Write atomically: a browser refreshing the report never sees half a PNG. The "why no spikes" line of a
    detection view goes into the PNG's Description, for the summary table."""
    why = [text.get_text() for text in fig.texts if text.get_gid() == _WHY]
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", metadata={"Description": why[0]} if why else None)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ------------------------------------------------------------------------------------------------- detection view
_TRACE_COLOUR, _BASELINE_COLOUR, _THRESHOLD_COLOUR, _TRIGGER_COLOUR = "#333333", "#009E73", "#C00000", "#0072B2"
_ZOOM_MS = (-2.0, 4.0)  # around a trigger: the snippet (-1 to +3 ms) and a little of its surroundings
_SMALLEST_ACTION_CURRENT_PA = 10.0  # loose-seal action currents are tens to hundreds of pA
_WHY = "why"  # the gid of the "why no spikes" line of a detection view, saved as the PNG's Description


def detection_plot_name(cell_id, file=None, channel=None) -> str:
    """The PNG file name of a cell's detection view: its :func:`cell_plot_name` with ``_detection`` before
    ``.png``."""
    return cell_plot_name(cell_id, file, channel)[: -len(".png")] + "_detection.png"


def _detection_params(params) -> DetectionParams:
    if params is None or isinstance(params, DetectionParams):
        return DetectionParams() if params is None else params
    names = {f.name for f in dataclasses.fields(DetectionParams)}
    return DetectionParams(**{key: value for key, value in dict(params).items() if key in names})


def _threshold_text(params: DetectionParams, level_pa: float) -> str:
    if params.mad_multiplier is not None:
        text = f"threshold {params.mad_multiplier:g} x noise (MAD) = {level_pa:.1f} pA"
    else:
        text = f"threshold {level_pa:g} pA"
    if params.baseline_window_ms is None:
        return text + " from 0 pA (fixed baseline)"
    return (
        text + f" from the local baseline (running median over {params.baseline_window_ms:g} ms); "
        f"dead time {params.dead_time_ms:g} ms"
    )


def _noise_pa(trace, baseline) -> float:
    """The robust noise SD of a stretch: 1.4826 x the median absolute deviation from the baseline, in pA."""
    deviation = np.abs(np.asarray(trace, dtype=np.float64) - baseline)
    return float(1.4826 * np.median(deviation)) if deviation.size else float("nan")


def _why_no_spikes(excursion_pa, level_pa, noise_pa, polarity, where, n_dropped=None) -> str:
    """One line saying why a channel gave no spikes, in the numbers of the detector."""
    direction = "inward" if polarity == "negative" else "outward"
    if abs(excursion_pa) < abs(level_pa):
        return (
            f"no crossing of {level_pa:.3g} pA: largest {direction} excursion {excursion_pa:.3g} pA, "
            f"noise {noise_pa:.2g} pA ({where})"
        )
    if n_dropped:
        return f"{n_dropped} crossing(s) of {level_pa:.3g} pA, all too close to a sweep edge for a full 4 ms snippet"
    return f"the current reaches {excursion_pa:.3g} pA ({where}) but no trigger was kept"


def _densest_stretch(spike_samples, num_samples, width):
    """(segment, start, end) of the window of ``width`` samples holding the most triggers (the first seconds of
    the first segment when there are none)."""
    best = (0, 0, -1)
    for segment, samples in enumerate(spike_samples):
        samples = np.sort(np.asarray(samples, dtype=np.int64))
        if samples.size == 0:
            continue
        counts = np.searchsorted(samples, samples + width) - np.arange(samples.size)
        i = int(np.argmax(counts))
        if counts[i] > best[2]:  # centre the group of triggers in the window
            span = int(samples[i + counts[i] - 1] - samples[i])
            start = int(np.clip(samples[i] - (width - 1 - span) // 2, 0, max(num_samples[segment] - width, 0)))
            best = (segment, start, int(counts[i]))
    segment, start, _ = best
    return segment, start, min(num_samples[segment], start + width)


def _draw_lines(ax, t, trace, baseline, threshold, labels=True):
    ax.plot(t, trace, color=_TRACE_COLOUR, lw=0.6, label="current" if labels else None)
    ax.plot(t, baseline, color=_BASELINE_COLOUR, lw=1.4, label="baseline" if labels else None)
    ax.plot(t, threshold, color=_THRESHOLD_COLOUR, lw=1.4, ls="--", label="threshold" if labels else None)


def _zoom(ax, t_ms, trace, baseline, threshold, title, snippet=True):
    if snippet:  # the 160-sample snippet the model sees: 1 ms before to 3 ms after the trigger
        ax.axvspan(-1.0, 3.0, color=_TRIGGER_COLOUR, alpha=0.08, lw=0)
    _draw_lines(ax, t_ms, trace, baseline, threshold, labels=False)
    ax.axvline(0.0, color=_TRIGGER_COLOUR, lw=0.8, ls=":")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel("ms from the trigger")
    ax.tick_params(labelsize=8)


def plot_detection(
    recording,
    spike_samples,
    params=None,
    *,
    channel_id=None,
    seconds: float = 3.0,
    title: str | None = None,
    n_dropped_edge: int | None = None,
    n_zoom: int = 4,
    dpi: int = 100,
):
    """The detection view of one cell: a stretch of the raw trace with the detector's baseline and threshold
    and every trigger marked, and a zoom on a few triggers (weakest to strongest). For a cell without triggers:
    the first seconds (sweeps end to end), the distribution of the deviations from the baseline against the
    threshold, the closest approach to it and one line saying why nothing was detected.

    The baseline and threshold are the detector's own (:func:`spikeinterface_sero.snippets.detection_trace`).

    Parameters
    ----------
    recording : BaseRecording
        The recording the triggers were detected on (pA).
    spike_samples : list of array_like
        The cell's trigger samples, one array per segment (as ``sorting.get_unit_spike_train(unit,
        segment_index=s)``); one array for a one-segment recording.
    params : DetectionParams, dict or None, default: None
        The detection settings the triggers were found with (a dict as stored in the sorting's
        ``sero_detection`` annotation); None: the defaults.
    channel_id : str, int or None, default: None
        The cell's channel; None: the recording's only (first) channel.
    seconds : float, default: 3.0
        Length of the stretch shown: the densest stretch of triggers, or the first seconds without any.
    title : str or None, default: None
        The cell's name for the title.
    n_dropped_edge : int or None, default: None
        Triggers dropped at sweep edges (said in the "why" of a cell without spikes).
    n_zoom : int, default: 4
        How many triggers are zoomed on.
    dpi : int, default: 100
        Resolution of the figure.

    Returns
    -------
    matplotlib.figure.Figure
        Its lines are labelled ``current``, ``baseline``, ``threshold`` and ``triggers`` (the data drawn).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    params = _detection_params(params)
    channels = [str(c) for c in recording.channel_ids]
    channel = channels[0] if channel_id is None else str(channel_id)
    if channel not in channels:
        raise SeroError(f"channel_id {channel_id!r} is not a channel of the recording ({', '.join(channels)}).")
    column = channels.index(channel)
    if not isinstance(spike_samples, (list, tuple)):
        spike_samples = [spike_samples]
    if len(spike_samples) != recording.get_num_segments():
        raise SeroError(
            f"spike_samples must hold one array per segment ({recording.get_num_segments()}), not {len(spike_samples)}."
        )
    if not seconds > 0:
        raise SeroError(f"seconds must be > 0, not {seconds!r}.")
    fs = float(recording.sampling_frequency)
    num_samples = [recording.get_num_samples(segment_index=s) for s in range(recording.get_num_segments())]
    n_triggers = int(sum(np.asarray(s).size for s in spike_samples))
    fig = Figure(figsize=(14, 7), dpi=dpi)
    FigureCanvasAgg(fig)
    name = f"{title}: " if title else ""
    if n_triggers:
        _detection_with_triggers(fig, recording, spike_samples, params, column, seconds, fs, num_samples, n_zoom, name)
    else:
        _detection_without_triggers(fig, recording, params, column, seconds, fs, num_samples, n_dropped_edge, name)
    return fig


def _detection_with_triggers(fig, recording, spike_samples, params, column, seconds, fs, num_samples, n_zoom, name):
    width = max(2, int(round(seconds * fs)))
    segment, start, end = _densest_stretch(spike_samples, num_samples, width)
    trace, baseline, threshold = (a[:, column] for a in detection_trace(recording, segment, start, end, params))
    samples = np.sort(np.asarray(spike_samples[segment], dtype=np.int64))
    shown = samples[(samples >= start) & (samples < end)]
    t = (start + np.arange(trace.size)) / fs
    sign = -1.0 if params.polarity == "negative" else 1.0
    level = float(threshold[0] - baseline[0])

    gs = fig.add_gridspec(2, max(1, n_zoom), left=0.06, right=0.985, bottom=0.08, top=0.86, hspace=0.42, wspace=0.25)
    ax = fig.add_subplot(gs[0, :])
    _draw_lines(ax, t, trace, baseline, threshold)
    local = shown - start
    ax.plot(
        t[local],
        trace[local],
        "v" if sign < 0 else "^",
        ls="none",
        ms=6,
        color=_TRIGGER_COLOUR,
        label=f"triggers ({shown.size})",
    )
    ax.set_xlim(t[0], t[-1])
    sweep = f" of sweep {segment + 1}" if len(num_samples) > 1 else ""
    ax.set_xlabel(f"time{sweep} (s)")
    ax.set_ylabel("current (pA)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=4, frameon=False, borderaxespad=0.2)
    total = sum(np.asarray(s).size for s in spike_samples)
    fig.text(
        0.06,
        0.955,
        f"{name}detection: {total} trigger(s) in the recording, {shown.size} in the densest "
        f"{trace.size / fs:.3g} s shown",
        fontsize=14,
        fontweight="bold",
        ha="left",
        va="bottom",
    )
    fig.text(0.06, 0.925, _threshold_text(params, level), fontsize=10, color="#444444", ha="left", va="bottom")

    # zooms: the weakest to the strongest trigger of the stretch, by their deepest excursion in the snippet
    before, after = int(round(-_ZOOM_MS[0] * fs / 1000.0)), int(round(_ZOOM_MS[1] * fs / 1000.0))
    peaks = np.array([np.max(sign * (trace[i : i + after] - baseline[i : i + after])) for i in local])
    order = np.argsort(peaks)
    picks = order[np.unique(np.round(np.linspace(0, order.size - 1, min(n_zoom, order.size))).astype(int))]
    for k, pick in enumerate(picks):
        i = int(local[pick])
        lo, hi = max(0, i - before), min(trace.size, i + after)
        zoom_ax = fig.add_subplot(gs[1, k])
        rank = "weakest" if k == 0 and picks.size > 1 else ("strongest" if k == picks.size - 1 and k else "")
        _zoom(
            zoom_ax,
            (np.arange(lo, hi) - i) / fs * 1000.0,
            trace[lo:hi],
            baseline[lo:hi],
            threshold[lo:hi],
            f"{rank + ': ' if rank else ''}{t[i]:.3f} s, peak {sign * peaks[pick]:.0f} pA",
        )
        if k == 0:
            zoom_ax.set_ylabel("current (pA)")
    fig.text(
        0.06,
        0.455,
        f"{picks.size} of the triggers shown, weakest to strongest (peak from the baseline); shaded: the "
        "snippet the model sees (1 ms before to 3 ms after the trigger)",
        fontsize=10,
        color="#444444",
        ha="left",
        va="bottom",
    )


def _detection_without_triggers(fig, recording, params, column, seconds, fs, num_samples, n_dropped, name):
    parts, edges, remaining = [], [], int(round(seconds * fs))
    for segment, n in enumerate(num_samples):
        if remaining <= 0:
            break
        if n == 0:
            continue
        end = min(n, remaining)
        parts.append([a[:, column] for a in detection_trace(recording, segment, 0, end, params)])
        edges.append(sum(p[0].size for p in parts))
        remaining -= end
    trace, baseline, threshold = (np.concatenate([p[i] for p in parts]) for i in range(3))
    t = np.arange(trace.size) / fs
    sign = -1.0 if params.polarity == "negative" else 1.0
    level = float(threshold[0] - baseline[0])
    deviation = trace - baseline
    deepest = int(np.argmax(sign * deviation))
    excursion = float(deviation[deepest])
    noise = _noise_pa(trace, baseline)
    where = "over the whole recording" if trace.size >= sum(num_samples) else f"in the first {trace.size / fs:.3g} s"
    why = _why_no_spikes(excursion, level, noise, params.polarity, where, n_dropped)

    gs = fig.add_gridspec(
        2, 3, left=0.06, right=0.985, bottom=0.08, top=0.84, hspace=0.45, wspace=0.28, width_ratios=[1, 1, 1.1]
    )
    ax = fig.add_subplot(gs[0, :])
    _draw_lines(ax, t, trace, baseline, threshold)
    ax.plot([], [], "v" if sign < 0 else "^", ls="none", color=_TRIGGER_COLOUR, label="triggers (0)")
    for edge in edges[:-1]:
        ax.axvline(edge / fs, color="#999999", lw=0.6, ls=":")
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("time (s" + ("; sweeps end to end, dotted lines between them)" if len(edges) > 1 else ")"))
    ax.set_ylabel("current (pA)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=4, frameon=False, borderaxespad=0.2)
    fig.text(
        0.06, 0.955, f"{name}no spikes detected", fontsize=14, fontweight="bold", color=COLOURS["error"], va="bottom"
    )
    fig.text(0.06, 0.92, why, fontsize=11, ha="left", va="bottom", gid=_WHY)  # also the PNG's Description
    fig.text(0.06, 0.89, _threshold_text(params, level), fontsize=10, color="#444444", ha="left", va="bottom")

    # the deviations from the baseline against the threshold: how far the largest events are from it
    ax_hist = fig.add_subplot(gs[1, 0])
    reach = 1.1 * max(abs(level), float(np.max(np.abs(deviation))))
    width = max(reach / 400.0, min(reach / 60.0, noise / 2.0)) if noise > 0 else reach / 60.0
    ax_hist.hist(deviation, bins=np.arange(-reach, reach + width, width), color="#777777", log=True)
    ax_hist.axvline(level, color=_THRESHOLD_COLOUR, lw=1.4, ls="--", label=f"threshold {level:.3g} pA")
    ax_hist.axvline(excursion, color=_TRIGGER_COLOUR, lw=1.0, ls=":", label=f"largest {excursion:.3g} pA")
    ax_hist.set_title("Current from the baseline (every sample shown)", fontsize=10, loc="left")
    ax_hist.set_xlabel("pA from the baseline")
    ax_hist.set_ylabel("samples")
    ax_hist.legend(fontsize=8, frameon=False, loc="upper right" if sign < 0 else "upper left")

    # the closest approach to the threshold, on the trace's own scale
    ax_zoom = fig.add_subplot(gs[1, 1])
    half = int(round(5e-3 * fs))
    lo, hi = max(0, deepest - half), min(trace.size, deepest + half)
    _zoom(
        ax_zoom,
        (np.arange(lo, hi) - deepest) / fs * 1000.0,
        trace[lo:hi],
        baseline[lo:hi],
        threshold[lo:hi],
        f"Closest approach: {excursion:.3g} pA at {t[deepest]:.3f} s",
        snippet=False,
    )
    low, high = float(trace[lo:hi].min()), float(trace[lo:hi].max())
    pad = 0.15 * max(high - low, noise, 1e-3)
    ax_zoom.set_ylim(low - pad, high + pad)
    if not low - pad <= float(threshold[deepest]) <= high + pad:
        ax_zoom.text(
            0.02,
            0.04 if sign < 0 else 0.96,
            f"threshold at {float(threshold[deepest]):.3g} pA, off this scale",
            transform=ax_zoom.transAxes,
            color=_THRESHOLD_COLOUR,
            fontsize=8,
            va="bottom" if sign < 0 else "top",
        )
    ax_zoom.set_xlabel("ms from the largest excursion")
    ax_zoom.set_ylabel("current (pA)")

    ax_text = fig.add_subplot(gs[1, 2])
    ax_text.axis("off")
    ratio = abs(excursion) / noise if noise > 0 else float("inf")
    lines = [
        f"Threshold   {level:.3g} pA from the baseline",
        f"Noise       {noise:.2g} pA (1.4826 x MAD)",
        f"Largest     {excursion:.3g} pA = {ratio:.0f} x the noise",
        f"            ({where})",
        "",
        "What to check:",
        "- is the channel a cell-attached recording",
        "  of a firing cell (not a command, reference",
        "  or empty channel)?",
    ]
    if abs(excursion) < _SMALLEST_ACTION_CURRENT_PA:
        lines += [
            "- nothing as large as an action current",
            f"  (>= {_SMALLEST_ACTION_CURRENT_PA:g} pA in cell-attached recordings):",
            "  likely no firing cell on this channel",
        ]
    elif ratio > 6:
        lines += [
            "- events stand out of the noise but stay",
            f"  above {level:.3g} pA: a noise-relative",
            f"  threshold (5 x MAD = {sign * 5 * noise:.3g} pA) would",
            "  trigger on them; look at them first",
        ]
    else:
        lines += ["- nothing stands out of the noise: likely", "  no spikes on this channel"]
    ax_text.text(
        0.02, 0.98, "\n".join(lines), transform=ax_text.transAxes, family="monospace", fontsize=9, va="top", ha="left"
    )


def _detection_source(analyzer):
    """(recording, detection settings) when this package's detector found the analyzer's spikes (the sorting's
    ``sero_detection`` annotation) and the recording is at hand; None otherwise (no detection view)."""
    sorting = analyzer.sorting
    if not analyzer.has_recording() or "sero_detection" not in sorting.get_annotation_keys():
        return None
    settings = sorting.get_annotation("sero_detection")
    return (analyzer.recording, _detection_params(settings)) if settings else None


def write_cell_reports(analyzer, report_dir, *, file=None, dpi: int = 100, detection: bool = True) -> list[Path]:
    """One PNG per cell (unit) of a classified analyzer in ``report_dir``, and its detection view; returns
    the paths written.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    report_dir : str or Path
        The folder (made when missing).
    file : str or None, default: None
        The recording the analyzer comes from (shown on the plot and part of the PNG names; pass the same
        string as in the results table so that :func:`write_summary_html` links to the plots).
    dpi : int, default: 100
        Resolution of the PNGs.
    detection : bool, default: True
        Also draw each cell's detection view (:func:`plot_detection`, ``<cell>_detection.png``), a cell
        without spikes included, when the spikes come from this package's detector and the analyzer has its
        recording.

    Returns
    -------
    list of Path
        The cell PNGs, each followed by its detection view when one was drawn.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    ext, cells = _cell_data(analyzer, file=file)
    params = {**ext.params, **ext.get_data("provenance")}  # what was asked and what was used
    source = _detection_source(analyzer) if detection else None
    main_channels = analyzer.sorting.get_property("main_channel_id")
    paths = []
    (report_dir / THUMBNAILS).mkdir(exist_ok=True)
    for i, cell in enumerate(cells):
        fig = plot_cell(cell, params, dpi=dpi)
        path = report_dir / cell_plot_name(cell["cell_id"], file, cell["channel"])
        _save_png(fig, path)
        _save_png(_cell_thumbnail(cell, params), report_dir / THUMBNAILS / path.name)
        paths.append(path)
        if source is None:
            continue
        recording, detection_params = source
        # per segment of the recording: SpikeInterface's NumpySorting drops trailing segments without spikes
        spike_samples = [
            analyzer.sorting.get_unit_spike_train(cell["unit_id"], segment_index=segment)
            if segment < analyzer.sorting.get_num_segments()
            else np.zeros(0, np.int64)
            for segment in range(recording.get_num_segments())
        ]
        channel_id = main_channels[i] if main_channels is not None else cell["unit_id"]
        fig = plot_detection(
            recording,
            spike_samples,
            detection_params,
            channel_id=channel_id,
            title=cell["cell_id"],
            n_dropped_edge=cell["n_dropped"],
            dpi=dpi,
        )
        path = report_dir / detection_plot_name(cell["cell_id"], file, cell["channel"])
        _save_png(fig, path)
        thumbnail = _detection_thumbnail(recording, spike_samples, detection_params, channel_id)
        _save_png(thumbnail, report_dir / THUMBNAILS / path.name)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------- thumbnails
#: the subfolder of a report with the small figures the HTML table shows (each links to its full figure)
THUMBNAILS = "thumbnails"
_THUMBNAIL_INCHES = (3.2, 2.0)  # 320 x 200 pixels at 100 dpi, shown at their own size: 8-point text stays readable


def _thumbnail_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_THUMBNAIL_INCHES, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7, length=2, pad=1)
    return fig, ax


def _cell_thumbnail(cell: dict, params: dict):
    """The small figure of a cell for the summary table: its action currents and their mean, coloured by the
    label, with the label and P(SER) as the title."""
    row = cell["row"]
    label = _label_key(row.get("sero_label"))
    fig, ax = _thumbnail_figure()
    wf = cell["waveforms"]
    cp, lo, hi = (_float(row.get(k)) for k in ("sero_probability", "sero_probability_low", "sero_probability_high"))
    title = _SHORT[label] + (f"  P(SER) {cp:.2f} [{_fmt(lo)}-{_fmt(hi)}]" if np.isfinite(cp) else "")
    if params.get("method", "cnn") == "cnn" and params.get("model_is_demo"):
        title += "  DEMO"
    ax.set_title(title, fontsize=8, fontweight="bold", color=COLOURS[label], loc="left")
    if wf.shape[0] == 0:
        _no_data(ax, "no spikes")
        return fig
    t_ms = (np.arange(wf.shape[1]) - 40) / 40.0
    drawn = wf if wf.shape[0] <= 50 else wf[np.random.default_rng(0).choice(wf.shape[0], 50, replace=False)]
    ax.plot(t_ms, drawn.T, color="#9A9A9A", lw=0.3, alpha=0.5)
    ax.plot(t_ms, wf.mean(axis=0), color=COLOURS[label], lw=1.8)
    ax.axvline(0.0, color="k", lw=0.5, ls=":")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_xlabel("ms from the trigger", fontsize=7, labelpad=1)
    ax.set_ylabel("pA", fontsize=7, labelpad=1)
    udi = _float(row.get("udi_ms"))
    ax.text(
        0.98,
        0.04,
        f"{wf.shape[0]} spikes" + (f", UDI {udi:.2f} ms" if np.isfinite(udi) else ""),
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
    )
    return fig


def _detection_thumbnail(recording, spike_samples, params, channel_id, seconds: float = 3.0):
    """The small detection view for the summary table: the densest ``seconds`` of triggers (or the first
    seconds without any) with the baseline, the threshold and the triggers."""
    channels = [str(c) for c in recording.channel_ids]
    column = channels.index(str(channel_id))
    fs = float(recording.sampling_frequency)
    num_samples = [recording.get_num_samples(segment_index=s) for s in range(recording.get_num_segments())]
    width = max(2, int(round(seconds * fs)))
    n_triggers = int(sum(np.asarray(s).size for s in spike_samples))
    segment, start, end = _densest_stretch(spike_samples, num_samples, width)
    trace, baseline, threshold = (a[:, column] for a in detection_trace(recording, segment, start, end, params))
    t = (start + np.arange(trace.size)) / fs
    fig, ax = _thumbnail_figure()
    _draw_lines(ax, t, trace, baseline, threshold, labels=False)
    samples = np.sort(np.asarray(spike_samples[segment], dtype=np.int64))
    local = samples[(samples >= start) & (samples < end)] - start
    marker = "v" if params.polarity == "negative" else "^"
    ax.plot(t[local], trace[local], marker, ls="none", ms=4, color=_TRIGGER_COLOUR)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("s" + (f" of sweep {segment + 1}" if len(num_samples) > 1 else ""), fontsize=7, labelpad=1)
    ax.set_ylabel("pA", fontsize=7, labelpad=1)
    if n_triggers:
        ax.set_title(f"{n_triggers} triggers; threshold dashed", fontsize=8, loc="left")
    else:
        ax.set_title("no spikes: see why", fontsize=8, fontweight="bold", color=COLOURS["error"], loc="left")
    return fig


# ------------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{margin:0 0 4px 0;font-size:24px} .meta{color:#555;margin:2px 0 14px 0;font-size:14px}
.demo{background:#B00020;color:#fff;font-weight:bold;padding:10px 14px;border-radius:6px;font-size:17px;margin-bottom:14px}
.counts span{display:inline-block;padding:4px 10px;margin:0 6px 6px 0;border-radius:12px;font-size:14px}
table{border-collapse:collapse;font-size:13px;margin-top:10px}
th,td{border:1px solid #ccc;padding:4px 7px;text-align:left;vertical-align:middle}
th{background:#f3f3f3;position:sticky;top:0} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.serotonergic td.label{background:#DCEBF7;color:#0072B2;font-weight:bold}
tr.non_serotonergic td.label{background:#FBE3D6;color:#D55E00;font-weight:bold}
tr.undetermined td.label{background:#EEEEEE;color:#555}
tr.error td{background:#F8D7DA;color:#842029} tr.error td.label{font-weight:bold}
tr.unsure td{opacity:0.6;font-style:italic} tr.unsure td.reliable, td .why{color:#842029;font-style:normal;opacity:1}
.table-box{overflow:auto;max-width:100%;max-height:88vh;margin-top:10px;border:1px solid #ddd}
.table-box table{margin-top:0} td img{width:240px;display:block;border:1px solid #ddd}
td img.full{width:170px} td.file,td.cell{white-space:nowrap}
td .reason{display:block;max-width:260px;font-size:12px;color:#555}
img.population{max-width:100%;width:900px;border:1px solid #ddd}
details{margin:8px 0 4px 0;font-size:14px;max-width:980px} summary{cursor:pointer;font-weight:bold}
.foot{color:#777;font-size:12px;margin-top:18px}
"""

_HELP = """<details><summary>How to read this report</summary><ul>
<li><b>Label</b>: the CNN ensemble's call for the cell (Corradetti et al. 2024). <b>P(SER)</b> is the mean
over the cell's spikes of the ensemble's probability that the spike comes from a serotonergic neuron; the cell
is called SER when it is at least 0.5. The 95&nbsp;% interval is a bootstrap over the spikes: an interval that
contains 0.5 means the call is uncertain.</li>
<li><b>Type</b>: <i>typical</i> when the CNN agrees with the classical criteria (wide spike, UDI &ge; 1 ms; slow,
&le; 3 Hz; regular, CV of ISIs &le; 0.5), <i>atypical</i> when it does not. Atypical serotonergic cells are the
ones the classical criteria miss.</li>
<li><b>Plot</b>: click a thumbnail for the cell's page: its action currents and their mean, the per-spike P(SER),
the firing rate over time and the ISI histogram.</li>
<li><b>Detection</b>: click it for the raw trace as the detector saw it: the local baseline, the threshold
and every trigger, with a zoom on the weakest and strongest triggers (false triggers show there). For a cell
without spikes it shows the first seconds, the noise and one line saying why nothing crossed the
threshold.</li>
<li>Rows in <span style="background:#F8D7DA;color:#842029">red</span> are files that could not be processed;
the message says why and what to do.</li></ul></details>"""

_COLUMNS = [
    ("cell", "Cell"),
    ("file", "File"),
    ("channel", "Ch"),
    ("label", "Label"),
    ("p", "P(SER) [95% CI]"),
    ("reliable", "Reliable"),
    ("n_spikes", "Spikes"),
    ("sero_type", "Type"),
    ("firing_rate_hz", "Rate (Hz)"),
    ("cv_isi", "CV ISI"),
    ("udi_ms", "UDI (ms)"),
    ("criteria_label", "Criteria"),
    ("plot", "Plot"),
    ("detection", "Detection"),
]


def _is_error(v) -> bool:
    return bool(_clean(v).strip())


def _png_description(path: Path) -> str:
    """The Description a PNG of the report carries ("" when none)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return str(image.text.get("Description", ""))
    except OSError:
        return ""


def _find_plot(report_dir: Path, r, name_of=cell_plot_name) -> str | None:
    """The PNG of a row (``name_of``: :func:`cell_plot_name` or :func:`detection_plot_name`); when the table's
    file was written differently (a results.csv read back), the one PNG with the cell's name and any hash."""
    name = name_of(r.get("cell_id"), r.get("file"), r.get("channel"))
    if (report_dir / name).is_file():
        return name
    base, tail = re.fullmatch(r"(.*)_[0-9a-f]{8}(_detection)?\.png", name).group(1, 2)
    pattern = re.compile(re.escape(base) + r"_[0-9a-f]{8}" + re.escape(tail or "") + r"\.png")
    found = [p.name for p in report_dir.glob("*.png") if pattern.fullmatch(p.name)]
    return found[0] if len(found) == 1 else None


# click a column header to sort the table by it (numbers as numbers; again to reverse); no external script
_SORT_SCRIPT = """<script>
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.style.cursor = "pointer"; th.title = "sort";
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
    var up = th.dataset.order !== "up"; th.dataset.order = up ? "up" : "down";
    var key = function (row) { var t = row.cells[column] ? row.cells[column].innerText.trim() : "";
      var n = parseFloat(t); return isNaN(n) ? t.toLowerCase() : n; };
    rows.sort(function (a, b) { var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def plot_population(table: pd.DataFrame, *, dpi: int = 100):
    """The population view CellExplorer users rely on: every cell's UDI against its firing rate and CV,
    coloured by its label, unsure calls hollow, the classical criteria's thresholds drawn.

    Parameters
    ----------
    table : pandas.DataFrame
        Results rows (``udi_ms``, ``firing_rate_hz``, ``cv_isi``, ``sero_label``, ``sero_reliable``).
    dpi : int, default: 100
        Resolution of the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    reliable = table["sero_reliable"].map(_is_reliable).to_numpy()
    keys = table["sero_label"].map(_label_key).to_numpy()
    for ax, (column, name, limit, rule) in zip(
        axes,
        [
            ("firing_rate_hz", "firing rate (Hz)", DEFAULT_MAX_RATE_HZ, "slow"),
            ("cv_isi", "CV of the inter-spike intervals", DEFAULT_MAX_CV, "regular"),
        ],
    ):
        x = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(table["udi_ms"], errors="coerce").to_numpy(dtype=float)
        for key in dict.fromkeys(keys):
            for sure in (True, False):
                m = (keys == key) & (reliable == sure)
                if m.any():
                    ax.scatter(
                        x[m],
                        y[m],
                        s=46,
                        facecolors=COLOURS[key] if sure else "none",
                        edgecolors=COLOURS[key],
                        linewidths=1.4,
                        label=f"{_DISPLAY.get(key, key)}{'' if sure else ' (not reliable)'}",
                    )
        ax.axhline(DEFAULT_MIN_UDI_MS, color="0.4", lw=0.8, ls="--")
        ax.axvline(limit, color="0.4", lw=0.8, ls="--")
        ax.text(limit, ax.get_ylim()[1], f" {rule} ≤ {limit:g}", va="top", ha="left", fontsize=8, color="0.3")
        ax.text(
            ax.get_xlim()[1],
            DEFAULT_MIN_UDI_MS,
            f"wide ≥ {DEFAULT_MIN_UDI_MS:g} ms ",
            va="bottom",
            ha="right",
            fontsize=8,
            color="0.3",
        )
        ax.set_xlabel(name)
        ax.set_ylabel("UDI (ms)")
    axes[0].legend(loc="best", fontsize=8, frameon=False)
    fig.suptitle(f"{len(table)} cells: the classical criteria's thresholds dashed", fontsize=10)
    return fig


def write_summary_html(
    table: pd.DataFrame,
    report_dir,
    *,
    title: str = "Serotonergic classification",
    refresh_s: float | None = None,
    write_csv: bool = True,
) -> Path:
    """Write ``report_dir/index.html``: every cell of ``table`` (the results table of
    :func:`spikeinterface_sero.pipeline.classify_files`) with its label in colour and a link to its plot,
    every failed file in red with its message, the model(s), the date and the package version. Extra columns
    (e.g. ``true_label`` from ``sero demo``) are shown after the standard ones. With ``write_csv`` the table
    is also written as ``results.csv`` next to it. ``refresh_s`` makes the page reload itself (live use).
    Returns the path of ``index.html``."""

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(table).reset_index(drop=True)
    for c in RESULT_COLUMNS:
        if c not in table.columns:
            table[c] = np.nan
    extra = [c for c in table.columns if c not in RESULT_COLUMNS]
    errors = table["error"].map(_is_error)
    cells = table[~errors]
    labels = cells["sero_label"].map(_label_key)
    models = [m for m in dict.fromkeys(_clean(v) for v in cells["model"]) if m]
    demo = any(m.startswith("DEMO") for m in models)
    n_files = table["file"].map(_clean).nunique()
    esc = html.escape

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
    ]
    if refresh_s:
        out.append(f'<meta http-equiv="refresh" content="{float(refresh_s):g}">')
    out.append(f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>")
    if demo:
        out.append(
            f'<div class="demo">{esc(DEMO_BANNER)}. These labels come from the bundled demonstration '
            "model trained on simulated recordings; pass --model DIR with a real model.</div>"
        )
    out.append(f"<h1>{esc(title)}</h1>")
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    out.append(
        f'<p class="meta">Generated {esc(now)} by spikeinterface-sero {esc(__version__)} &middot; model: '
        f"{esc('; '.join(models)) if models else '-'}</p>"
    )
    counts = [
        (f"{len(cells)} cell(s) from {n_files} file(s)", "#f0f0f0", "#222"),
        (f"{int((labels == 'serotonergic').sum())} SER", _BACKGROUNDS["serotonergic"], COLOURS["serotonergic"]),
        (
            f"{int((labels == 'non_serotonergic').sum())} NSER",
            _BACKGROUNDS["non_serotonergic"],
            COLOURS["non_serotonergic"],
        ),
    ]
    if int((labels == "undetermined").sum()):
        counts.append((f"{int((labels == 'undetermined').sum())} undetermined", "#eeeeee", "#555"))
    if int(errors.sum()):
        counts.append((f"{int(errors.sum())} failed file(s)", _BACKGROUNDS["error"], "#842029"))
    out.append(
        '<div class="counts">'
        + "".join(f'<span style="background:{bg};color:{fg}">{esc(t)}</span>' for t, bg, fg in counts)
        + "</div>"
    )
    if write_csv:
        csv = report_dir / f".{REPORT_TABLE}.{uuid.uuid4().hex[:8]}.tmp"
        table.to_csv(csv, index=False)
        os.replace(csv, report_dir / REPORT_TABLE)
    if (report_dir / REPORT_TABLE).is_file():
        out.append(f'<p class="meta"><a href="{REPORT_TABLE}">{REPORT_TABLE}</a> (the full table)</p>')
    out.append(_HELP)
    plotted = pd.to_numeric(cells["udi_ms"], errors="coerce").notna() & (
        pd.to_numeric(cells["firing_rate_hz"], errors="coerce").notna()
        | pd.to_numeric(cells["cv_isi"], errors="coerce").notna()
    )
    if plotted.any():  # no population view of cells without a UDI (no spikes): it would be empty
        population = plot_population(cells)
        (report_dir / "views").mkdir(exist_ok=True)
        _save_png(population, report_dir / "views" / "population.png")
        out.append(
            '<p><a href="views/population.png"><img class="population" src="views/population.png" alt="population: '
            'UDI against firing rate, every cell coloured by its label"></a></p>'
        )

    head = "".join(f"<th>{esc(h)}</th>" for _, h in _COLUMNS) + "".join(f"<th>{esc(c)}</th>" for c in extra)
    out.append(f'<div class="table-box"><table class="sortable"><thead><tr><th>#</th>{head}</tr></thead><tbody>')
    ncol = len(_COLUMNS) + len(extra)
    for i, r in table.iterrows():
        r = r.to_dict()
        file = _clean(r.get("file"))
        fname = f'<span title="{esc(file)}">{esc(Path(file).name if file else "-")}</span>'
        if errors[i]:
            out.append(
                f'<tr class="error"><td>{i + 1}</td><td class="label">ERROR</td><td>{fname}</td>'
                f'<td colspan="{ncol - 2}">{esc(_clean(r.get("error")))}</td></tr>'
            )
            continue
        key = _label_key(r.get("sero_label"))
        p = _fmt(r.get("sero_probability"))
        if p != "-":
            p += f" [{_fmt(r.get('sero_probability_low'))}-{_fmt(r.get('sero_probability_high'))}]"
        plot = _find_plot(report_dir, r)
        plot_html = (
            f'<a href="{esc(plot)}">{_thumbnail_img(report_dir, plot, "plot of " + _clean(r.get("cell_id")))}</a>'
            if plot
            else "-"
        )
        detection = _find_plot(report_dir, r, detection_plot_name)
        ns = _float(r.get("n_spikes"))
        detection_html = (
            (
                f'<a href="{esc(detection)}">'
                f"{_thumbnail_img(report_dir, detection, 'detection view of ' + _clean(r.get('cell_id')))}</a>"
                + (
                    f'<a class="why" href="{esc(detection)}">why no spikes?</a>'
                    f'<span class="reason">{esc(_png_description(report_dir / detection))}</span>'
                    if ns == 0
                    else ""
                )
            )
            if detection
            else "-"
        )
        reliable = _is_reliable(r.get("sero_reliable"))
        cells_html = {
            "cell": esc(_clean(r.get("cell_id")) or "-"),
            "file": fname,
            "channel": esc(_clean(r.get("channel"))),
            "label": esc(_DISPLAY[key] if key != "undetermined" else (_clean(r.get("sero_label")) or "undetermined")),
            "p": p if reliable else f"{p} ?",
            "reliable": "yes" if reliable else f'<span class="why">no: {esc(_why_unreliable(r))}</span>',
            "n_spikes": str(int(ns)) if np.isfinite(ns) else "-",
            "sero_type": esc(_clean(r.get("sero_type")).replace("_", " ") or "-"),
            "firing_rate_hz": _fmt(r.get("firing_rate_hz")),
            "cv_isi": _fmt(r.get("cv_isi")),
            "udi_ms": _fmt(r.get("udi_ms")),
            "criteria_label": esc(_clean(r.get("criteria_label")) or "-"),
            "plot": plot_html,
            "detection": detection_html,
        }
        num = {"p", "n_spikes", "firing_rate_hz", "cv_isi", "udi_ms"}
        tds = "".join(f'<td class="{"num" if k in num else k}">{cells_html[k]}</td>' for k, _ in _COLUMNS)
        tds += "".join(f"<td>{esc(_cell_text(r.get(c)))}</td>" for c in extra)
        out.append(f'<tr class="{key}{"" if reliable else " unsure"}"><td>{i + 1}</td>{tds}</tr>')
    out.append("</tbody></table></div>")
    if table.empty:
        out.append("<p>No files processed yet.</p>")
    out.append(
        f'<p class="foot">spikeinterface-sero {esc(__version__)} &middot; CNN ensemble of Corradetti et al. '
        "(2024) on SpikeInterface &middot; labels are decisions of a model: check atypical and uncertain "
        f"cells.</p>{_SORT_SCRIPT}</body></html>"
    )
    path = report_dir / "index.html"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text("\n".join(out) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _thumbnail_img(report_dir: Path, name: str, alt: str) -> str:
    """The ``<img>`` of a figure in the table: its thumbnail when the report has one, else the full figure
    scaled down (reports written before thumbnails)."""
    if (report_dir / THUMBNAILS / name).is_file():
        return f'<img src="{THUMBNAILS}/{html.escape(name)}" loading="lazy" alt="{html.escape(alt)}">'
    return f'<img class="full" src="{html.escape(name)}" loading="lazy" alt="{html.escape(alt)}">'


def _cell_text(v) -> str:
    if isinstance(v, float):
        return _fmt(v, ".3g")
    return _clean(v)


# ------------------------------------------------------------------------------------------------- all in one
