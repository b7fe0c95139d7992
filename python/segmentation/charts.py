"""Report charts drawn with matplotlib and written as files for the PDF.

Each function takes plain numbers and already-translated labels, draws one chart
and writes it to the given path; nothing here reads the warehouse or the
vocabulary files. Figures are built with the object-oriented API on the Agg
canvas (no pyplot, no global backend state), under one shared style.

Line and bar charts are SVG (sharp at any zoom, small). Scatter plots are PNG at a
fixed dpi: an SVG with thousands of points takes WeasyPrint minutes to lay out.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
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
OTHERS = "#D3D8DE"  # the customers of other segments on a locator map

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
    "svg.fonttype": "none",  # text as text: WeasyPrint lays it out with the report font, 3× faster than outlines
    "svg.hashsalt": "segment-report",  # stable ids, so unchanged charts give identical files
}


def segment_colours(segment_ids: Sequence[int]) -> dict[int, str]:
    """One colour per segment, the same on every chart and page.

    Segment ids persist across runs and can exceed the palette, so each id takes its
    own palette slot ((id − 1) mod size) unless a smaller id of this run holds it,
    then the next free slot: ids 1…8 always keep their colour, and two segments of
    one report never share one while there are at most as many as colours.
    """
    colours: dict[int, str] = {}
    taken: set[int] = set()
    for segment in sorted({int(s) for s in segment_ids}):
        slot = (segment - 1) % len(SEGMENT_PALETTE)
        for step in range(len(SEGMENT_PALETTE)):
            candidate = (slot + step) % len(SEGMENT_PALETTE)
            if candidate not in taken:
                slot = candidate
                break
        taken.add(slot)
        colours[segment] = SEGMENT_PALETTE[slot]
    return colours


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a #RRGGBB colour."""
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@functools.lru_cache(maxsize=256)
def text_colour(background: str) -> str:
    """White or ink, whichever contrasts more with the background (numbers on segment badges)."""
    lum = _luminance(background)
    return "#FFFFFF" if (1.05 / (lum + 0.05)) >= ((lum + 0.05) / (_luminance(INK) + 0.05)) else INK


# Lifts on a diverging scale, ColorBrewer RdBu (safe for colour-vision deficiencies): blue
# below the base, red above, near-white at ×1; log2 scale, saturated at ×1/4 and ×4.
LIFT_LIMIT = 2.0  # log2: ×4
# matplotlib's "RdBu_r" without matplotlib (the report's pages need these colours even when no
# chart is drawn): its 11 ColorBrewer anchors, the 256-entry table interpolated linearly.
_RDBU_R = ("#053061", "#2166AC", "#4393C3", "#92C5DE", "#D1E5F0", "#F7F7F7",
           "#FDDBC7", "#F4A582", "#D6604D", "#B2182B", "#67001F")  # fmt: skip
_LUT_SIZE = 256
_LIFT_TABLE = np.column_stack(
    [
        np.interp(
            np.linspace(0, 1, _LUT_SIZE),
            np.linspace(0, 1, len(_RDBU_R)),
            [int(c[1 + 2 * i : 3 + 2 * i], 16) / 255 for c in _RDBU_R],
        )
        for i in range(3)
    ]
)


def _diverging(position: float) -> str:
    """The colour at ``position`` (0–1) of the diverging scale, as matplotlib's colormap gives it."""
    row = _LIFT_TABLE[min(int(position * _LUT_SIZE), _LUT_SIZE - 1)]
    return "#" + "".join(f"{round(float(v) * 255):02x}" for v in row)


def lift_colour(lift: float | None) -> str:
    """Background colour of a heatmap cell for a lift (segment / all customers)."""
    if lift is None or not np.isfinite(lift):
        return "#FFFFFF"
    position = np.clip(np.log2(max(lift, 1e-6)) / LIFT_LIMIT, -1, 1)
    return _diverging(0.5 + 0.42 * position)  # 0.42: the darkest shades stay readable


STD_DIFF_LIMIT = 2.0  # standard deviations at which the colour saturates


def std_diff_colour(std_diff: float | None) -> str:
    """Background colour of a heatmap cell for a standardised difference (segment − base, in sd)."""
    if std_diff is None or not np.isfinite(std_diff):
        return "#FFFFFF"
    position = np.clip(std_diff / STD_DIFF_LIMIT, -1, 1)
    return _diverging(0.5 + 0.42 * position)


def std_diff_scale(steps: Sequence[float] = (-2, -1, -0.5, 0, 0.5, 1, 2)) -> list[tuple[float, str]]:
    """(standardised difference, colour) pairs for the heatmap's legend."""
    return [(step, std_diff_colour(step)) for step in steps]


def lift_scale(steps: Sequence[float] = (0.25, 0.5, 1, 2, 4)) -> list[tuple[float, str]]:
    """(lift, colour) pairs for the heatmap's legend."""
    return [(step, lift_colour(step)) for step in steps]


def _matplotlib():
    """matplotlib, imported at the first chart drawn: a render whose charts are unchanged never loads it."""
    import matplotlib as mpl
    import matplotlib.lines
    import matplotlib.ticker  # mpl.lines and mpl.ticker, used by the charts

    return mpl


def _figure(width_mm: float, height_mm: float, layout: str | None = None) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_mm * MM, height_mm * MM), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path, dpi: int | None = None) -> Path:
    """Write through a temporary file, then rename: a killed render never leaves half a chart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"Date": None} if path.suffix == ".svg" else {}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(temporary, format=path.suffix[1:], dpi=dpi, metadata=metadata, transparent=False, facecolor="white")
        from segmentation.report.chart_files import finish

        finish(temporary, path.suffix)  # the same drawing, quicker for WeasyPrint: lean SVG, opaque PNG
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    logger.debug("wrote chart %s", path)
    return path


def _default_number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _percent_axis(axis, percent: Callable[[float], str]) -> None:
    mpl = _matplotlib()
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: percent(value)))
    axis.set_major_locator(mpl.ticker.MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))


def segment_shares(
    path: Path,
    rows: Sequence[Mapping],
    colours: Mapping[int, str],
    panels: Mapping[str, str],
    percent: Callable[[float], str],
) -> Path:
    """Aligned panels of horizontal bars, one bar per segment: e.g. its share of customers.

    rows: dicts with segment_id, label and one 0–1 value per panel key.
    panels: value key → panel title, in panel order.
    percent: formats a 0–1 share for the bar-end labels, in the report's language.
    """
    n = len(rows)
    keys = list(panels)
    mpl = _matplotlib()
    with mpl.rc_context(_STYLE):
        fig = _figure(170, 10 + 7.4 * n)
        axes = np.atleast_1d(fig.subplots(1, len(keys), sharey=True, gridspec_kw={"wspace": 0.08}))
        y = np.arange(n)
        top = max(max(r[key] or 0 for key in keys) for r in rows) or 1.0
        for ax, key in zip(axes, keys, strict=True):
            values = [r[key] or 0.0 for r in rows]
            ax.barh(y, values, height=0.62, color=[colours[r["segment_id"]] for r in rows])
            for yi, value in zip(y, values, strict=True):
                ax.text(value + top * 0.015, yi, percent(value), va="center", ha="left", fontsize=7, color=INK)
            ax.set_title(panels[key], loc="left", fontweight="bold", color=INK, pad=6)
            ax.xaxis.set_visible(False)
            ax.spines["bottom"].set_visible(False)
            ax.set_xlim(0, top * 1.18)
            ax.tick_params(axis="y", length=0)
        axes[0].set_yticks(y, [r["label"] for r in rows])
        axes[0].invert_yaxis()
        for ax in axes[1:]:
            ax.spines["left"].set_visible(False)
        fig.subplots_adjust(left=0.05, right=0.99, top=1 - 7 / (10 + 7.4 * n), bottom=0.02)
        _fit_left_margin(fig, axes[0])
        return _save(fig, path)


def _fit_left_margin(fig: Figure, ax) -> None:
    """Widen the left margin just enough for the y tick labels (long persona names)."""
    renderer = fig.canvas.get_renderer()  # fixed tick labels have their text already: no draw needed
    widest = max((t.get_window_extent(renderer).width for t in ax.get_yticklabels()), default=0)
    left = min(0.55, (widest + 10) / (fig.get_figwidth() * fig.dpi))
    fig.subplots_adjust(left=left)


def level_mix(
    path: Path,
    rows: Sequence[Mapping],
    colour: str,
    labels: Mapping[str, str],
    percent: Callable[[float], str],
) -> Path:
    """Horizontal bars: share of the segment per level of a category, with the base share marked.

    rows: dicts with label, share, base_share, most common first.
    labels: 'this_segment', 'all_customers' (legend).
    """
    n = len(rows)
    mpl = _matplotlib()
    with mpl.rc_context(_STYLE):
        fig = _figure(80, 14 + 6.2 * n)
        ax = fig.add_subplot()
        y = np.arange(n)
        shares = [r["share"] or 0.0 for r in rows]
        bases = [r["base_share"] or 0.0 for r in rows]
        bars = ax.barh(y, shares, height=0.66, color=colour)
        marks = ax.scatter(bases, y, marker="|", s=90, linewidths=1.6, color=INK, zorder=3)
        top = max(max(shares), max(bases), 0.05)
        for yi, value, base in zip(y, shares, bases, strict=True):  # the label clears the base mark
            ax.text(
                max(value, base) + top * 0.03, yi, percent(value), va="center", ha="left", fontsize=6.5, color=MUTED
            )
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


def selection_panels(
    path: Path,
    ks: Sequence[int],
    panels: Sequence[Mapping],
    chosen_k: int | None,
    knee_k: int | None,
    labels: Mapping[str, str],
    number: Callable[[float, int], str] = _default_number,
) -> Path:
    """Small multiples: one panel per measure of the choice of k, the chosen k marked in each.

    panels: dicts with 'title' (the measure), 'note' (how to read it: "higher is better"),
    'values' (None where not computed), 'digits' (tick labels) and optionally 'threshold'
    (a dotted reference line, e.g. the stability threshold). The inertia panel (the first)
    also marks the elbow's knee. labels: 'k' (axis title), 'chosen', 'knee' (legend entries).
    """
    n = len(panels)
    columns = 3 if n > 2 else max(n, 1)
    rows = -(-n // columns)
    width, height = 170, 10 + 46 * rows
    bottom = (14 if n % columns == 0 else 9) / height  # room for the legend below when no slot is free
    mpl = _matplotlib()
    with mpl.rc_context(_STYLE):
        fig = _figure(width, height)
        grid = fig.add_gridspec(
            rows, columns, left=0.07, right=0.99, top=1 - 9 / height, bottom=bottom, hspace=0.78, wspace=0.42
        )
        ks = list(ks)
        for i, panel in enumerate(panels):
            ax = fig.add_subplot(grid[i // columns, i % columns])
            values = np.array([np.nan if v is None else float(v) for v in panel["values"]], dtype=float)
            digits = int(panel.get("digits", 2))
            ax.plot(ks, values, color=NEUTRAL, marker="o", markersize=2.8, linewidth=1.2, zorder=2)
            if panel.get("threshold") is not None:
                ax.axhline(panel["threshold"], color=MUTED, linewidth=0.7, linestyle=(0, (1, 1.5)), zorder=1)
            if i == 0 and knee_k is not None and knee_k != chosen_k and knee_k in ks:
                value = values[ks.index(knee_k)]
                ax.plot([knee_k], [value], marker="o", markersize=5.5, markerfacecolor="white", color=MUTED, zorder=3)
            if chosen_k is not None and chosen_k in ks:
                ax.axvline(chosen_k, color=ACCENT, linewidth=0.8, linestyle=(0, (3, 2)), zorder=1)
                value = values[ks.index(chosen_k)]
                if np.isfinite(value):
                    ax.plot([chosen_k], [value], marker="o", markersize=5.5, color=ACCENT, zorder=3)
            ax.text(0, 1.2, panel["title"], transform=ax.transAxes, fontsize=7.2, fontweight="bold", color=INK)
            ax.text(0, 1.07, panel.get("note", ""), transform=ax.transAxes, fontsize=6.4, color=MUTED)
            ax.set_xticks(ks)
            ax.tick_params(axis="both", labelsize=6.3, length=2)
            ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
            ax.yaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _, d=digits: number(v, d)))
            ax.grid(axis="y")
            if i // columns == rows - 1 or i + columns >= n:
                ax.set_xlabel(labels["k"], fontsize=6.5, labelpad=2)
        handles = [
            mpl.lines.Line2D([], [], color=ACCENT, marker="o", markersize=5, linestyle=(0, (3, 2)), linewidth=0.8)
        ]
        names = [labels["chosen"]]
        if knee_k is not None and knee_k != chosen_k:
            handles.append(
                mpl.lines.Line2D([], [], color=MUTED, marker="o", markersize=5, markerfacecolor="white", linestyle="")
            )
            names.append(labels["knee"])
        if n % columns:  # an empty slot: the legend goes there
            fig.legend(handles, names, loc="center", bbox_to_anchor=_slot_centre(grid, n, columns), fontsize=7)
        else:
            fig.legend(handles, names, loc="lower right", bbox_to_anchor=(0.99, 0.0), ncols=2, fontsize=7)
        return _save(fig, path)


def _slot_centre(grid, index: int, columns: int) -> tuple[float, float]:
    """Figure coordinates of the centre of grid slot `index` (for a legend in an empty slot)."""
    bottom, top, left, right = grid.get_grid_positions(grid.figure)
    row, column = index // columns, index % columns
    return ((left[column] + right[column]) / 2, (bottom[row] + top[row]) / 2)


def scatter(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    segment_ids: np.ndarray,
    colours: Mapping[int, str],
    labels: Mapping[str, str],
    legend: Mapping[int, str],
    size_mm: tuple[float, float] = (82, 62),
) -> Path:
    """Customers on a 2-D map coloured by segment, as a PNG at SCATTER_DPI.

    Points are drawn in the given order (callers pass a shuffled order, so no
    segment hides another). labels: 'x', 'y' (axis titles); legend: segment id → label.
    """
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, segment_ids = x[keep], y[keep], segment_ids[keep]
    mpl = _matplotlib()
    with mpl.rc_context(_STYLE):
        fig = _figure(*size_mm)
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
        fig.subplots_adjust(left=0.06, right=0.98, top=0.98, bottom=(7 + 4 * rows) / size_mm[1])
        return _save(fig, path, dpi=SCATTER_DPI)


def locator(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    segment_ids: np.ndarray,
    segment_id: int,
    colour: str,
    size_mm: tuple[float, float] = (44, 34),
) -> Path:
    """A thumbnail of the 2-D map: one segment in its colour, every other customer in grey.

    PNG at SCATTER_DPI, no axes: it only says where the segment sits among the others.
    """
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, segment_ids = x[keep], y[keep], segment_ids[keep]
    mine = segment_ids == segment_id
    mpl = _matplotlib()
    with mpl.rc_context(_STYLE):
        fig = _figure(*size_mm)
        ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
        size = 2.2 if len(x) <= 2_000 else 1.1
        ax.scatter(x[~mine], y[~mine], c=OTHERS, s=size, linewidths=0)
        ax.scatter(x[mine], y[mine], c=colour, s=size * 1.6, linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_color(GRID)
        return _save(fig, path, dpi=SCATTER_DPI)
