"""The report's charts: one drawing job per chart into ``output/charts`` (segmentation.charts draws;
``drawing`` skips the unchanged ones and spreads the others over processes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segmentation import charts
from segmentation.personas import Catalog, Persona
from segmentation.report.drawing import ChartJob, Drawing, draw_all
from segmentation.report.i18n import NumberFormat, fill
from segmentation.report.methodology import LOWER_IS_BETTER, chosen_and_knee, criteria, criterion_label
from segmentation.report.methodology import stability_threshold as _threshold
from segmentation.report.warehouse import WarehouseData

MIX_LEVELS = 9  # a mix chart shows this many levels at most, the rest grouped as "Other"


def map_view(projection: Mapping[str, np.ndarray]) -> str | None:
    """The 2-D view a persona's locator uses: t-SNE (it separates groups) or else PCA."""
    for view in ("tsne", "pca"):
        column = projection.get(f"{view}_x")
        if column is not None and len(column) and np.isfinite(column).any():
            return view
    return None


def mix_rows(traits: Sequence[Mapping], segment_id: int, feature: str, catalog: Catalog, other: str) -> list[dict]:
    """One segment's levels of a category for its mix chart, most common first; the tail as 'Other'."""
    declared = catalog.get(feature)
    rows = [
        {
            "label": declared.level_label(str(r["level"])) if declared else str(r["level"]),
            "share": float(r["segment_value"] or 0.0),
            "base_share": float(r["base_value"] or 0.0),
        }
        for r in traits
        if int(r["segment_id"]) == segment_id and r["feature"] == feature and r.get("level") is not None
    ]
    rows.sort(key=lambda r: (-r["share"], -r["base_share"], r["label"]))
    if len(rows) > MIX_LEVELS:
        head, tail = rows[: MIX_LEVELS - 1], rows[MIX_LEVELS - 1 :]
        rows = [
            *head,
            {"label": other, "share": sum(r["share"] for r in tail), "base_share": sum(r["base_share"] for r in tail)},
        ]
    return rows


def draw_charts(
    data: WarehouseData,
    personas: Sequence[Persona],
    catalog: Catalog,
    colours: Mapping[int, str],
    vocab: Mapping,
    fmt: NumberFormat,
    charts_dir: Path,
) -> dict[str, Path]:
    """Every chart of the report, drawn (or found unchanged) in ``charts_dir``; paths by key."""
    return draw_all(chart_jobs(data, personas, catalog, colours, vocab, fmt, charts_dir), charts_dir)


def start_charts(
    data: WarehouseData,
    personas: Sequence[Persona],
    catalog: Catalog,
    colours: Mapping[int, str],
    vocab: Mapping,
    fmt: NumberFormat,
    charts_dir: Path,
) -> Drawing:
    """The charts, being drawn in worker processes while the caller goes on (``finish`` waits)."""
    return Drawing(chart_jobs(data, personas, catalog, colours, vocab, fmt, charts_dir), charts_dir)


def chart_jobs(
    data: WarehouseData,
    personas: Sequence[Persona],
    catalog: Catalog,
    colours: Mapping[int, str],
    vocab: Mapping,
    fmt: NumberFormat,
    charts_dir: Path,
) -> list[ChartJob]:
    """What each chart is drawn from, without drawing it."""
    c = vocab["charts"]
    jobs = [
        ChartJob(
            "sizes",
            charts.segment_shares,
            charts_dir / "segment_sizes.svg",
            (
                [{"segment_id": p.segment_id, "label": p.name, "share": p.share_of_customers} for p in personas],
                dict(colours),
                {"share": c["share_of_customers"]},
                fmt.percent,
            ),
        )
    ]
    # the slowest charts first, so that the workers finish together
    _selection_chart(data, vocab, fmt, charts_dir, jobs)
    if data.behaviour_quantiles:  # order lines: recency, frequency and monetary value per segment
        from segmentation.report import behaviour

        titles = {f: catalog.label(f) if f in catalog else f for f in behaviour.MEASURES}
        order = [p.segment_id for p in personas]
        jobs.append(
            ChartJob(
                "behaviour",
                behaviour.draw,
                charts_dir / "behaviour.svg",
                (data.behaviour_quantiles, order, dict(colours), titles, fmt.number),
            )
        )
    for p in personas:
        if p.mix_feature:
            rows = mix_rows(data.traits, p.segment_id, p.mix_feature, catalog, vocab["persona"]["other_levels"])
            if rows:
                jobs.append(
                    ChartJob(
                        f"mix_{p.segment_id}",
                        charts.level_mix,
                        charts_dir / f"mix_segment_{p.segment_id}.svg",
                        (
                            rows,
                            colours[p.segment_id],
                            {"this_segment": c["this_segment"], "all_customers": c["all_customers"]},
                            fmt.percent,
                        ),
                    )
                )
    _maps(data, personas, colours, vocab, charts_dir, jobs)
    return jobs


def _selection_chart(data: WarehouseData, vocab: Mapping, fmt: NumberFormat, charts_dir: Path, jobs: list) -> None:
    if not data.selection:
        return
    c = vocab["charts"]
    chosen = next((r["k"] for r in data.selection if r.get("is_chosen")), data.run.get("k"))
    knee = next((r["k"] for r in data.selection if r.get("is_knee")), data.run.get("knee_k"))
    threshold = _threshold(data.run)
    columns = criteria(data.selection)
    panels = [
        {
            "title": criterion_label(vocab, column),
            "note": c["inertia_note"]
            if column == "inertia"
            else c["lower_better" if column in LOWER_IS_BETTER else "higher_better"],
            "values": [r.get(column) for r in data.selection],
            "digits": 0 if digits == 0 else 2,
            "threshold": threshold if column == "stability" else None,
        }
        for column, digits in columns
    ]
    if panels:
        labels = {
            "k": c["k"],
            "chosen": fill(c["chosen"], {"k": str(chosen)}),
            "knee": fill(c["knee"], {"k": str(knee)}),
        }
        knee_k = knee if columns and columns[0][0] == "inertia" else None
        jobs.append(
            ChartJob(
                "selection",
                charts.selection_panels,
                charts_dir / "model_selection.svg",
                ([r["k"] for r in data.selection], panels, chosen, knee_k, labels, fmt.number),
            )
        )


def _maps(
    data: WarehouseData,
    personas: Sequence[Persona],
    colours: Mapping[int, str],
    vocab: Mapping,
    charts_dir: Path,
    jobs: list,
) -> None:
    c, proj = vocab["charts"], data.projection
    if not len(proj.get("segment_id", [])):
        return
    segments = proj["segment_id"].astype(int)
    for key in ("pca", "tsne"):
        x, y = proj[f"{key}_x"], proj[f"{key}_y"]
        if np.isfinite(x).any():
            legend = {s: fill(c["legend"], {"segment_id": str(s)}) for s in colours}
            axes = {"x": c[f"{key}_x"], "y": c[f"{key}_y"]}
            jobs.append(
                ChartJob(key, charts.scatter, charts_dir / f"{key}.png", (x, y, segments, dict(colours), axes, legend))
            )
    view = map_view(proj)
    if view is not None:
        for p in personas:
            jobs.append(
                ChartJob(
                    f"locator_{p.segment_id}",
                    charts.locator,
                    charts_dir / f"locator_segment_{p.segment_id}.png",
                    (proj[f"{view}_x"], proj[f"{view}_y"], segments, p.segment_id, colours[p.segment_id]),
                    {"size_mm": (46, 38)},
                )
            )


__all__ = ["chart_jobs", "chosen_and_knee", "draw_charts", "map_view", "mix_rows", "start_charts"]
