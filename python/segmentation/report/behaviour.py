"""The behaviour page: recency, frequency and monetary value per segment, as distributions.

Drawn from quantiles the warehouse computes (never every customer): one panel per
measure, one box per segment (10th–90th percentile whiskers, quartile box, median),
amounts and counts on a log scale as the clustering sees them. None when the run had
no order lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import duckdb

from segmentation import charts
from segmentation.report.common import PageInputs

MEASURES = ("recency_days", "frequency", "monetary")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def read_quantiles(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """(segment_id, feature, q10, q25, q50, q75, q90) of each measure present in customer_segments."""
    try:
        present = {row[0] for row in con.execute("describe marts.customer_segments").fetchall()}
    except duckdb.CatalogException:
        return []
    rows: list[dict] = []
    for feature in (m for m in MEASURES if m in present):
        result = con.execute(
            f"select segment_id, quantile_cont({feature}, {list(QUANTILES)}) from marts.customer_segments "
            "group by segment_id order by segment_id"
        ).fetchall()
        rows += [{"segment_id": int(s), "feature": feature, "q": [float(v) for v in q]} for s, q in result]
    return rows


def _compact(value: float, number: Callable[[float], str]) -> str:
    """Tick labels that fit: 10k, 2M for the large amounts of a log axis."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= 10 * size:
            return number(value / size) + suffix
    return number(value)


def draw(
    path: Path,
    rows: Sequence[Mapping],
    order: Sequence[int],
    colours: Mapping[int, str],
    titles: Mapping[str, str],
    number: Callable[[float], str],
) -> Path:
    mpl = charts._matplotlib()
    # stable ids (the same data, the same file); text as text, not one path per glyph
    with mpl.rc_context({"svg.hashsalt": "segment-report", "svg.fonttype": "none"}):
        return _draw(path, rows, order, colours, titles, number)


def _draw(path, rows, order, colours, titles, number) -> Path:
    features = [m for m in MEASURES if any(r["feature"] == m for r in rows)]
    fig = charts._figure(170, 18 + 9 * len(order), layout="constrained")
    axes = fig.subplots(1, len(features), sharey=True, squeeze=False)[0]
    for ax, feature in zip(axes, features, strict=True):
        by_segment = {r["segment_id"]: r["q"] for r in rows if r["feature"] == feature}
        for y, segment in enumerate(order):
            q10, q25, q50, q75, q90 = by_segment.get(segment, [float("nan")] * 5)
            colour = colours[segment]
            ax.plot([q10, q90], [y, y], color=colour, linewidth=1)
            ax.barh(y, q75 - q25, left=q25, height=0.55, color=colour, alpha=0.55, edgecolor=colour)
            ax.plot([q50, q50], [y - 0.3, y + 0.3], color=charts.INK, linewidth=1.6)
        if feature != "recency_days":
            ax.set_xscale("symlog", linthresh=1)
        ax.xaxis.set_major_formatter(
            charts._matplotlib().ticker.FuncFormatter(lambda value, _: _compact(value, number))
        )
        ax.set_title(titles[feature], fontsize=8)
        ax.grid(axis="x", color=charts.GRID, linewidth=0.5)
    axes[0].set_yticks(range(len(order)), [str(s) for s in order])
    axes[0].invert_yaxis()
    return charts._save(fig, path)


def build(inputs: PageInputs) -> dict | None:
    rows = inputs.data.behaviour_quantiles
    if not rows or "behaviour" not in inputs.chart:
        return None
    t, fmt = inputs.vocab["behaviour"], inputs.fmt
    features = [m for m in MEASURES if any(r["feature"] == m for r in rows)]
    medians = {(r["segment_id"], r["feature"]): r["q"][2] for r in rows}
    return {
        "lead": t["lead"],
        "chart": inputs.chart["behaviour"],
        "columns": [inputs.catalog.label(f) if f in inputs.catalog else f for f in features],
        "rows": [
            {
                "badge": str(p.segment_id),
                "colour": inputs.colours[p.segment_id],
                "text_colour": charts.text_colour(inputs.colours[p.segment_id]),
                "name": p.name,
                "cells": [fmt.number(medians.get((p.segment_id, f))) for f in features],
            }
            for p in inputs.personas
        ],
    }
