"""What every figure of the report shares: file names, atomic PNG writes, the demo and guarantee stamp."""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path

from ..files import atomic_path
from .words import COLOURS, DEMO_BANNER, plain

__all__ = [
    "fit_text",
    "literal",
    "wrap",
    "THUMBNAILS",
    "cell_plot_name",
    "detection_plot_name",
    "new_figure",
    "save_png",
    "stamp",
    "no_data",
    "WHY",
]

#: the subfolder of a report with the small figures the HTML table shows (each links to its full figure)
THUMBNAILS = "thumbnails"
THUMBNAIL_INCHES = (2.3, 1.5)  # 230 x 150 pixels at 100 dpi, shown at their own size: 7-point text stays readable
WHY = "why"  # the gid of the "why no spikes" line of a detection view, saved as the PNG's Description


def cell_plot_name(cell_id, file=None, channel=None) -> str:
    """The PNG file name of a cell: its id with every character outside ``[A-Za-z0-9._-]`` replaced by
    ``_`` (so ``A140313#073`` is safe in a URL and on every file system), plus a short hash of
    (file, channel, cell id) so that cells with the same name in different files do not collide."""
    text = plain(cell_id)
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80] or "cell"
    key = f"{plain(file)}|{plain(channel)}|{text}"
    return f"{base}_{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}.png"


def detection_plot_name(cell_id, file=None, channel=None) -> str:
    """The PNG file name of a cell's detection view: its :func:`cell_plot_name` with ``_detection`` before
    ``.png``."""
    return cell_plot_name(cell_id, file, channel)[: -len(".png")] + "_detection.png"


def new_figure(size, dpi: int = 100, **kwargs):
    """A matplotlib Figure on the Agg canvas (no pyplot state: safe in worker threads and processes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path) -> Path:
    """Write atomically: a browser refreshing the report never sees half a PNG. The "why no spikes" line of a
    detection view goes into the PNG's Description, for the summary table."""
    path = Path(path)
    why = [text.get_text() for text in fig.texts if text.get_gid() == WHY]
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", metadata={"Description": why[0]} if why else None)
    return path


def literal(text) -> str:
    """Text from a file or a table as matplotlib draws it literally (a ``$`` does not start mathematics)."""
    return plain(text).replace("$", r"\$")


def wrap(text: str, width: int) -> str:
    """``text`` wrapped at ``width`` characters, each line of it (nothing is cut)."""
    return "\n".join(textwrap.fill(line, width) if line else "" for line in text.split("\n"))


def _band_below(fig, inches: float) -> None:
    """Make the figure ``inches`` taller at the bottom, everything drawn keeping its size and place."""
    height = fig.get_figheight()
    total = height + inches
    for ax in fig.axes:
        box = ax.get_position()
        ax.set_position([box.x0, (box.y0 * height + inches) / total, box.width, box.height * height / total])
    for text in fig.texts:
        x, y = text.get_position()
        text.set_position((x, (y * height + inches) / total))
    fig.set_figheight(total)


def stamp(fig, run, *, small: bool = False) -> None:
    """Every figure says what stands behind its calls: the demo-model banner and the guarantee's words, wrapped,
    in a band added below the figure (a thumbnail: a small "DEMO MODEL" tag in its corner). Call it last."""
    if run is None:
        return
    if small:
        if run.demo:
            ax, box = fig.axes[0], dict(boxstyle="round,pad=0.2", fc=COLOURS["error"], ec="none")
            words = dict(ha="right", va="top", fontsize=6, color="white", fontweight="bold", bbox=box, gid="demo")
            ax.text(0.99, 0.97, "DEMO MODEL", transform=ax.transAxes, **words)
        return
    words = wrap(f"Guarantee: {literal(run.guarantee)}", int(13.5 * fig.get_figwidth()))
    lines = words.count("\n") + 1
    banner = run.demo and not any(text.get_gid() == "demo" for text in fig.texts)
    _band_below(fig, 0.16 * lines + (0.34 if banner else 0.08))
    fig.text(0.01, 0.004, words, fontsize=8.5, color="#842029", va="bottom", gid="guarantee")
    if banner:
        box = dict(boxstyle="round,pad=0.3", fc=COLOURS["error"], ec="none")
        words = dict(ha="left", va="top", fontsize=11, color="white", fontweight="bold", bbox=box, gid="demo")
        y = (0.16 * lines + 0.3) / fig.get_figheight()
        fig.text(0.01, y, DEMO_BANNER, **words)


def fit_text(ax, artist, smallest: float = 4.0) -> None:
    """Shrink ``artist`` (a text) until it lies inside ``ax``: a long reason list is never cut at the edge."""
    renderer = ax.figure.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    while artist.get_fontsize() > smallest:
        extent = artist.get_window_extent(renderer)
        if extent.x1 <= box.x1 and extent.y0 >= box.y0 and extent.x0 >= box.x0 and extent.y1 <= box.y1:
            return
        artist.set_fontsize(artist.get_fontsize() * 0.92)


def no_data(ax, text) -> None:
    """Say in the middle of an empty panel why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#555555", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
