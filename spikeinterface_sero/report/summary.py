"""The summary page of a report: ``index.html`` from the template ``templates/report.html`` (package data),
every cell's call as a person reads it, every failed file in red, the rule and the guarantee (``docs/report.md``)."""

from __future__ import annotations

import datetime as _dt
import html
import re
from importlib import resources
from pathlib import Path
from string import Template

import pandas as pd

from .._version import __version__
from ..export import safe_table
from ..files import atomic_path
from ..schema import RESULT_COLUMNS, RESULT_SCHEMA, TEXT, cast_table
from .figures import THUMBNAILS, cell_plot_name, detection_plot_name, save_png
from .pages import read_run_words
from .population import plot_population
from .reader import run_words
from .words import (
    BACKGROUNDS,
    COLOURS,
    DEMO_BANNER,
    NO_GUARANTEE,
    call_headline,
    call_of,
    number,
    plain,
    reasons_text,
    type_text,
)

__all__ = ["REPORT_TABLE", "write_summary_html"]

#: the results table a report folder holds next to its ``index.html``
REPORT_TABLE = "results.csv"
_TEMPLATE = "templates/report.html"  # package data: the page, its style and its sort script
esc = html.escape

_COLUMNS = [
    ("cell", "Cell (file, channel)"),
    ("call", "Call"),
    ("p", "Calibrated cell P(SER) [interval]"),
    ("n_spikes", "Spikes"),
    ("sero_type", "Type"),
    ("firing_rate_hz", "Rate (Hz)"),
    ("cv_isi", "CV ISI"),
    ("udi_ms", "UDI (ms)"),
    ("criteria_label", "Criteria"),
    ("plot", "Plot"),
    ("detection", "Detection"),
]
_NUMBERS = {"p", "n_spikes", "firing_rate_hz", "cv_isi", "udi_ms"}


def _prepare(table: pd.DataFrame) -> pd.DataFrame:
    """The table as the schema casts it, every text in neutral words (no Python reprs, None or bytes)."""
    table = cast_table(pd.DataFrame(table).reset_index(drop=True), RESULT_SCHEMA)
    for column in table.columns:
        kind = RESULT_SCHEMA[column].kind if column in RESULT_SCHEMA else None
        if kind == TEXT or (kind is None and table[column].dtype == object):
            table[column] = [plain(v) for v in table[column]]
    return table


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


def _thumbnail_img(report_dir: Path, name: str, alt: str) -> str:
    """The ``<img>`` of a figure in the table: its thumbnail when the report has one, else the full figure."""
    source = f"{THUMBNAILS}/{name}" if (report_dir / THUMBNAILS / name).is_file() else name
    return f'<img src="{esc(source)}" loading="lazy" alt="{esc(alt)}">'


def _figure_links(report_dir: Path, r: dict) -> tuple[str, str]:
    cell = plain(r.get("cell_id"))
    plot = _find_plot(report_dir, r)
    plot_html = f'<a href="{esc(plot)}">{_thumbnail_img(report_dir, plot, "plot of " + cell)}</a>' if plot else "-"
    detection = _find_plot(report_dir, r, detection_plot_name)
    if not detection:
        return plot_html, "-"
    detection_html = (
        f'<a href="{esc(detection)}">{_thumbnail_img(report_dir, detection, "detection view of " + cell)}</a>'
    )
    if int(r.get("n_spikes") or 0) == 0:
        why = esc(_png_description(report_dir / detection))
        detection_html += f'<a class="why" href="{esc(detection)}">why no spikes?</a><span class="reason">{why}</span>'
    return plot_html, detection_html


def _call_html(r: dict) -> str:
    text = esc(call_headline(r))
    reasons = reasons_text(r)
    if reasons:
        text += f'<span class="reasons">{esc(reasons)}</span>'
    if r.get("sero_manual_label"):  # a person's label, beside the model's call (never replacing it)
        text += f'<span class="manual">curated: {esc(r["sero_manual_label"].replace("_", " "))}</span>'
    if r.get("export_error"):
        text += f'<span class="export">export failed: {esc(r["export_error"])}</span>'
    return text


def _cell_row(i: int, r: dict, report_dir: Path, extra: list) -> str:
    p = number(r.get("sero_probability"))
    if p != "-":
        p += f" [{number(r.get('sero_probability_low'))}-{number(r.get('sero_probability_high'))}]"
    plot, detection = _figure_links(report_dir, r)
    file = r.get("file", "")
    where = f"{Path(file).name}, ch {r.get('channel', '')}" if file else f"ch {r.get('channel', '')}"
    cells = {
        "cell": f'{esc(r.get("cell_id") or "-")}<small title="{esc(file)}">{esc(where)}</small>',
        "call": _call_html(r),
        "p": p,
        "n_spikes": str(int(r.get("n_spikes") or 0)),
        "sero_type": esc(type_text(r)),
        "firing_rate_hz": number(r.get("firing_rate_hz")),
        "cv_isi": number(r.get("cv_isi")),
        "udi_ms": number(r.get("udi_ms")),
        "criteria_label": esc(r.get("criteria_label", "").replace("_", " ") or "-"),
        "plot": plot,
        "detection": detection,
    }
    tds = "".join(f'<td class="{"num" if k in _NUMBERS else k}">{cells[k]}</td>' for k, _ in _COLUMNS)
    tds += "".join(f'<td class="extra">{esc(_extra_text(r.get(c)))}</td>' for c in extra)
    return f'<tr class="{call_of(r)}"><td>{i + 1}</td>{tds}</tr>'


def _error_row(i: int, r: dict, ncol: int) -> str:
    file = r.get("file", "")
    name = f'<span title="{esc(file)}">{esc(Path(file).name if file else "-")}</span>'
    return (
        f'<tr class="error"><td>{i + 1}</td><td class="cell">{name}</td><td class="call">ERROR</td>'
        f'<td colspan="{ncol - 2}">{esc(r.get("error", ""))}</td></tr>'
    )


def _extra_text(value) -> str:
    return number(value, ".3g") if isinstance(value, float) else plain(value)


def _chips(cells: pd.DataFrame, n_errors: int, n_files: int) -> str:
    calls = [call_of(r) for _, r in cells.iterrows()]
    chips = [
        (f"{len(cells)} cell(s) from {n_files} file(s)", "#f0f0f0", "#222"),
        (f"{calls.count('serotonergic')} reliable SER", BACKGROUNDS["serotonergic"], COLOURS["serotonergic"]),
        (
            f"{calls.count('non_serotonergic')} reliable NSER",
            BACKGROUNDS["non_serotonergic"],
            COLOURS["non_serotonergic"],
        ),
        (f"{calls.count('unsure')} unsure", BACKGROUNDS["unsure"], "#444"),
    ]
    if calls.count("undetermined"):
        chips.append((f"{calls.count('undetermined')} undetermined (no spikes)", BACKGROUNDS["undetermined"], "#555"))
    if n_errors:
        chips.append((f"{n_errors} failed file(s)", BACKGROUNDS["error"], "#842029"))
    spans = "".join(f'<span style="background:{bg};color:{fg}">{esc(t)}</span>' for t, bg, fg in chips)
    return f'<div class="counts">{spans}</div>'


def _page_words(cells: pd.DataFrame, report_dir: Path) -> dict:
    """The demo flag, the guarantees, the rules and the models of the cells on the page: from the run words
    their recordings left (:func:`~spikeinterface_sero.report.pages.write_cell_reports`), else from the table."""
    files = set(cells["file"])
    runs = [words for words in read_run_words(report_dir) if words["file"] in files]
    models = [m for m in dict.fromkeys(cells["model"]) if m]
    methods = set(cells["sero_method"]) - {""}
    fallback = run_words({"method": "criteria" if methods == {"criteria"} else "cnn"}, {})
    return dict(
        demo=any(words["demo"] for words in runs) or any(m.upper().startswith("DEMO") for m in models),
        guarantees=list(dict.fromkeys(words["guarantee"] for words in runs)) or [NO_GUARANTEE],
        rules=list(dict.fromkeys(words["rule"] for words in runs)) or [fallback.rule],
        models=models,
    )


def _population_html(cells: pd.DataFrame, report_dir: Path, demo: bool, guarantee: str) -> str:
    udi = pd.to_numeric(cells["udi_ms"], errors="coerce").notna()
    other = (
        pd.to_numeric(cells["firing_rate_hz"], errors="coerce").notna()
        | pd.to_numeric(cells["cv_isi"], errors="coerce").notna()
    )
    if not (udi & other).any():  # no population view of cells without a UDI (no spikes): it would be empty
        return ""
    (report_dir / "views").mkdir(exist_ok=True)
    save_png(plot_population(cells, demo=demo, guarantee=guarantee), report_dir / "views" / "population.png")
    return (
        '<p><a href="views/population.png"><img class="population" src="views/population.png" alt="population: '
        'UDI against firing rate, every cell coloured by its call"></a></p>'
    )


def _write_table(table: pd.DataFrame, report_dir: Path) -> None:
    with atomic_path(report_dir / REPORT_TABLE) as temporary:
        safe_table(table).to_csv(temporary, index=False)  # text cells neutralised for spreadsheets


def write_summary_html(
    table: pd.DataFrame,
    report_dir,
    *,
    title: str = "Serotonergic classification",
    refresh_s: float | None = None,
    write_csv: bool = True,
) -> Path:
    """Write ``report_dir/index.html``: every cell of ``table`` (the results table of
    :func:`spikeinterface_sero.pipeline.classify_files`) with its call as a person reads it (a label only when
    reliable, else UNSURE with the side it leans to and why) and a link to its plots, every failed file in red
    with its message, the rule, the guarantee, the model(s), the date and the package version.

    Parameters
    ----------
    table : pandas.DataFrame
        The results table (extra columns, e.g. ``true_label`` of ``sero demo``, are shown after the others).
    report_dir : str or Path
        The folder (made when missing).
    title : str, default: "Serotonergic classification"
        The page's title.
    refresh_s : float or None, default: None
        Reload the page every this many seconds (live use).
    write_csv : bool, default: True
        Also write the table as ``results.csv`` next to it.

    Returns
    -------
    Path
        The path of ``index.html``.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    table = _prepare(table)
    extra = [c for c in table.columns if c not in RESULT_COLUMNS]
    errors = table["error"] != ""
    cells = table[~errors]
    words = _page_words(cells, report_dir)
    if write_csv:
        _write_table(table, report_dir)
    ncol = len(_COLUMNS) + len(extra)
    rows = [
        _error_row(i, r, ncol) if errors[i] else _cell_row(i, r, report_dir, extra)
        for i, r in enumerate(table.to_dict("records"))
    ]
    header = "<th>#</th>" + "".join(f"<th>{esc(h)}</th>" for _, h in _COLUMNS)
    header += "".join(f"<th>{esc(c)}</th>" for c in extra)
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    models = "; ".join(words["models"]) or "-"
    page = Template(resources.files("spikeinterface_sero").joinpath(_TEMPLATE).read_text(encoding="utf-8")).substitute(
        refresh=f'\n<meta http-equiv="refresh" content="{float(refresh_s):g}">' if refresh_s else "",
        title=esc(plain(title)),
        banner=f'<div class="demo">{esc(DEMO_BANNER)}: these calls come from the bundled demonstration model '
        "trained on simulated recordings; pass --model DIR with a real model.</div>\n"
        if words["demo"]
        else "",
        meta=f"Generated {esc(now)} by spikeinterface-sero {esc(__version__)} &middot; model: {esc(models)}",
        guarantee="".join(f'<div class="guarantee">Guarantee: {esc(g)}.</div>' for g in words["guarantees"]),
        counts=_chips(cells, int(errors.sum()), table["file"].nunique()),
        table_link=f'<p class="meta"><a href="{REPORT_TABLE}">{REPORT_TABLE}</a> (the full table)</p>'
        if (report_dir / REPORT_TABLE).is_file()
        else "",
        rule=esc("; ".join(words["rules"])),
        population=_population_html(cells, report_dir, words["demo"], "; ".join(words["guarantees"])),
        header=header,
        rows="\n".join(rows),
        empty="<p>No files processed yet.</p>" if table.empty else "",
        foot=f"spikeinterface-sero {esc(__version__)} &middot; CNN ensemble of Corradetti et al. (2024) on "
        "SpikeInterface &middot; calls are decisions of a model: check unsure and atypical cells.",
    )
    path = report_dir / "index.html"
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path
