"""Report charts drawn with matplotlib and written as files for the PDF.

Each function takes plain numbers and already-translated labels, draws one chart
and writes it to the given path; nothing here reads the warehouse or the
vocabulary files. Figures are built with the object-oriented API on the Agg
canvas (no pyplot, no global backend state), under one shared style.

Line and bar charts are SVG (sharp at any zoom, small). Scatter plots are PNG at a
fixed dpi: an SVG with thousands of points takes WeasyPrint minutes to lay out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# Okabe–Ito: distinguishable with the common colour-vision deficiencies. Ordered so
# that the first (largest) segments get the strongest, most separable hues; yellow,
# weak on white, comes late. Beyond eight segments: grey and Tol's wine.
SEGMENT_PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
    "#999999",  # grey
    "#882255",  # wine
)
INK = "#1F2933"
MUTED = "#6B7785"
GRID = "#DDE2E8"
ACCENT = "#D55E00"  # marks the chosen k; vermillion stays readable for all palettes
NEUTRAL = "#0072B2"

SCATTER_DPI = 200
MM = 1 / 25.4  # inches per millimetre: figure sizes follow the page layout

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.grid": False,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 7,
    "text.color": INK,
    "text.parse_math": False,  # data labels are text, never mathtext ("$" in a name)
    "text.hinting": "no_hinting",  # so text measured on Agg is as wide as in the SVG
    "svg.fonttype": "path",  # glyphs as outlines: renders identically everywhere
    "svg.hashsalt": "segment-report",  # stable ids, so unchanged charts give identical files
}


def segment_colours(segment_ids: Sequence[int]) -> dict[int, str]:
    """One colour per segment, the same on every chart and page (segment 1 = first colour)."""
    return {int(s): SEGMENT_PALETTE[(int(s) - 1) % len(SEGMENT_PALETTE)] for s in segment_ids}


def _figure(width_mm: float, height_mm: float, layout: str | None = None) -> Figure:
    fig = Figure(figsize=(width_mm * MM, height_mm * MM), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, dpi: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {}
    fig.savefig(path, dpi=dpi, metadata=metadata, transparent=False, facecolor="white")
    logger.debug("wrote chart %s", path)
    return path


def _default_number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _percent_axis(axis, percent: Callable[[float], str]) -> None:
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: percent(value)))
    axis.set_major_locator(mpl.ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))


def segment_shares(
    path: Path,
    rows: Sequence[Mapping],
    colours: Mapping[int, str],
    labels: Mapping[str, str],
    percent: Callable[[float], str],
) -> Path:
    """Two aligned panels: each segment's share of customers and of high spenders.

    rows: dicts with segment_id, label, share_of_customers, share_of_high_spenders.
    labels: 'share_of_customers', 'share_of_high_spenders' (panel titles).
    percent: formats a 0–1 share for the bar-end labels, in the report's language.
    """
    n = len(rows)
    with mpl.rc_context(_STYLE):
        fig = _figure(170, 11 + 8.5 * n)
        axes = fig.subplots(1, 2, sharey=True, gridspec_kw={"wspace": 0.08})
        y = np.arange(n)
        top = max(max(r["share_of_customers"] or 0, r["share_of_high_spenders"] or 0) for r in rows)
        for ax, key in zip(axes, ("share_of_customers", "share_of_high_spenders"), strict=True):
            values = [r[key] or 0.0 for r in rows]
            ax.barh(y, values, height=0.62, color=[colours[r["segment_id"]] for r in rows])
            for yi, value in zip(y, values, strict=True):
                ax.text(value + top * 0.015, yi, percent(value), va="center", ha="left", fontsize=7, color=INK)
            ax.set_title(labels[key], loc="left", fontweight="bold", color=INK, pad=6)
            ax.xaxis.set_visible(False)
            ax.spines["bottom"].set_visible(False)
            ax.set_xlim(0, top * 1.18)
            ax.tick_params(axis="y", length=0)
        axes[0].set_yticks(y, [r["label"] for r in rows])
        axes[0].invert_yaxis()
        axes[1].spines["left"].set_visible(False)
        fig.subplots_adjust(left=0.05, right=0.99, top=1 - 7 / (11 + 8.5 * n), bottom=0.02)
        _fit_left_margin(fig, axes[0])
        return _save(fig, path)


def _fit_left_margin(fig: Figure, ax) -> None:
    """Widen the left margin just enough for the y tick labels (long persona names)."""
    fig.canvas.draw()  # tick labels get their text at draw time
    renderer = fig.canvas.get_renderer()
    widest = max((t.get_window_extent(renderer).width for t in ax.get_yticklabels()), default=0)
    left = min(0.55, (widest + 10) / (fig.get_figwidth() * fig.dpi))
    fig.subplots_adjust(left=left)


def profession_mix(
    path: Path,
    rows: Sequence[Mapping],
    colour: str,
    labels: Mapping[str, str],
    percent: Callable[[float], str],
) -> Path:
    """Horizontal bars: share of the segment per profession, with the base share marked.

    rows: dicts with label, share, base_share, most common first.
    labels: 'this_segment', 'all_customers' (legend).
    """
    n = len(rows)
    with mpl.rc_context(_STYLE):
        fig = _figure(80, 14 + 6.2 * n)
        ax = fig.add_subplot()
        y = np.arange(n)
        shares = [r["share"] or 0.0 for r in rows]
        bases = [r["base_share"] or 0.0 for r in rows]
        bars = ax.barh(y, shares, height=0.66, color=colour)
        marks = ax.scatter(bases, y, marker="|", s=90, linewidths=1.6, color=INK, zorder=3)
        top = max(max(shares), max(bases), 0.05)
        for yi, value in zip(y, shares, strict=True):
            ax.text(value + top * 0.03, yi, percent(value), va="center", ha="left", fontsize=6.5, color=MUTED)
        ax.set_yticks(y, [r["label"] for r in rows])
        ax.invert_yaxis()
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(0, top * 1.22)
        _percent_axis(ax.xaxis, percent)
        ax.grid(axis="x")
        ax.spines["left"].set_visible(False)
        ax.legend(
            [bars, marks],
            [labels["this_segment"], labels["all_customers"]],
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncols=2,
            handlelength=1.2,
            borderaxespad=0.2,
        )
        fig.subplots_adjust(left=0.3, right=0.97, top=1 - 9 / (14 + 6.2 * n), bottom=6 / (14 + 6.2 * n))
        _fit_left_margin(fig, ax)
        return _save(fig, path)


def elbow(
    path: Path,
    ks: Sequence[int],
    inertia: Sequence[float],
    chosen_k: int | None,
    labels: Mapping[str, str],
    number: Callable[[float, int], str] = _default_number,
    knee_k: int | None = None,
) -> Path:
    """Inertia by k with the chosen k marked. labels: 'k', 'inertia', 'chosen', 'knee'.

    When the analyst set k, the elbow's own pick (knee_k) is marked too, in grey.
    number(value, digits) formats tick labels in the report's language.
    """
    with mpl.rc_context(_STYLE):
        fig = _figure(82, 62, layout="constrained")  # room for long tick labels (35,000)
        ax = fig.add_subplot()
        ax.plot(ks, inertia, color=NEUTRAL, marker="o", markersize=3.5, linewidth=1.4)
        if knee_k is not None and knee_k != chosen_k and knee_k in ks:
            value = inertia[list(ks).index(knee_k)]
            ax.plot([knee_k], [value], marker="o", markersize=7, markerfacecolor="white", color=MUTED, zorder=3)
            ax.annotate(
                labels["knee"], (knee_k, value), xytext=(8, 10), textcoords="offset points", color=MUTED, fontsize=7
            )
        if chosen_k is not None and chosen_k in ks:
            value = inertia[list(ks).index(chosen_k)]
            ax.axvline(chosen_k, color=ACCENT, linewidth=0.9, linestyle=(0, (3, 2)))
            ax.plot([chosen_k], [value], marker="o", markersize=7, color=ACCENT, zorder=3)
            ax.annotate(
                labels["chosen"],
                (chosen_k, value),
                xytext=(8, 10),
                textcoords="offset points",
                color=ACCENT,
                fontweight="bold",
                fontsize=7,
            )
        ax.set_xlabel(labels["k"])
        ax.set_ylabel(labels["inertia"])
        ax.set_xticks(list(ks))
        ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], integer=True))
        ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: number(value, 0)))
        ax.grid(axis="y")
        return _save(fig, path)


def silhouette(
    path: Path,
    ks: Sequence[int],
    scores: Sequence[float | None],
    chosen_k: int | None,
    labels: Mapping[str, str],
    number: Callable[[float, int], str] = _default_number,
) -> Path:
    """Silhouette score by k, the chosen k's bar highlighted. labels: 'k', 'silhouette'."""
    with mpl.rc_context(_STYLE):
        fig = _figure(82, 62, layout="constrained")  # room for long tick labels (35,000)
        ax = fig.add_subplot()
        values = [np.nan if s is None else s for s in scores]
        colours = [ACCENT if k == chosen_k else "#9DB9D3" for k in ks]
        ax.bar(list(ks), values, width=0.66, color=colours)
        ax.axhline(0, color=MUTED, linewidth=0.6)
        ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))  # ticks that 2 digits show
        ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: number(value, 2)))
        ax.set_xlabel(labels["k"])
        ax.set_ylabel(labels["silhouette"])
        ax.set_xticks(list(ks))
        ax.grid(axis="y")
        return _save(fig, path)


def scatter(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    segment_ids: np.ndarray,
    colours: Mapping[int, str],
    labels: Mapping[str, str],
    legend: Mapping[int, str],
) -> Path:
    """Customers on a 2-D map coloured by segment, as a PNG at SCATTER_DPI.

    Points are drawn in the given order (callers pass a shuffled order, so no
    segment hides another). labels: 'x', 'y' (axis titles); legend: segment id → label.
    """
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, segment_ids = x[keep], y[keep], segment_ids[keep]
    with mpl.rc_context(_STYLE):
        fig = _figure(82, 80)
        ax = fig.add_subplot()
        point_colours = [colours.get(int(s), MUTED) for s in segment_ids]
        size = 4.0 if len(x) <= 2_000 else 2.0
        ax.scatter(x, y, c=point_colours, s=size, linewidths=0, alpha=0.75)
        handles = [
            mpl.lines.Line2D([], [], linestyle="", marker="o", markersize=4.5, color=colours[s])
            for s in sorted(colours)
        ]
        names = [legend[s] for s in sorted(colours)]
        rows = -(-len(names) // 4)  # at most four entries a row, rows as even as possible
        columns = -(-len(names) // rows)
        # matplotlib fills legends column by column; reorder so they read row by row.
        order = [i for c in range(columns) for r in range(rows) if (i := r * columns + c) < len(names)]
        fig.legend(
            [handles[i] for i in order],
            [names[i] for i in order],
            loc="lower center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=columns,
            handletextpad=0.1,
            columnspacing=0.8,
            fontsize=6.5,
        )
        ax.set_xlabel(labels["x"], labelpad=2)
        ax.set_ylabel(labels["y"], labelpad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        for spine in ax.spines.values():
            spine.set_color(GRID)
        fig.subplots_adjust(left=0.06, right=0.98, top=0.98, bottom=0.09 + 0.05 * rows)
        return _save(fig, path, dpi=SCATTER_DPI)
