"""How segments compare: every segment against all customers on every declared feature and
level (a heatmap coloured by standardised difference), then the 2-D maps."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from segmentation import charts
from segmentation.personas.catalog import Feature
from segmentation.personas.traits import value_text
from segmentation.report.common import PageInputs, segment_columns
from segmentation.report.i18n import fill


def _cell(row: Mapping | None, inputs: PageInputs) -> dict:
    if row is None:
        return {"text": inputs.fmt.missing, "colour": "#FFFFFF", "text_colour": charts.INK}
    lift, base, std_diff = row.get("lift"), row.get("base_value"), row.get("std_diff")
    if lift is not None and (base or 0) > 0 and math.isfinite(lift):
        text = inputs.fmt.lift(lift)
    else:
        text = inputs.fmt.sd(std_diff)
    colour = charts.std_diff_colour(std_diff)
    return {"text": text, "colour": colour, "text_colour": charts.text_colour(colour)}


def _row(feature: Feature, level: str | None, rows: Mapping[int, Mapping], inputs: PageInputs) -> dict:
    first = next(iter(rows.values()))
    kind = str(first.get("kind") or "mean")
    base = value_text(feature, kind, first.get("base_value"), inputs.fmt)
    label = feature.label if level is None else feature.level_label(level)
    cells = [_cell(rows.get(p.segment_id), inputs) for p in inputs.personas]
    return {"label": label, "base": base, "cells": cells}


def _level_order(feature: Feature, levels: list[str], base: Mapping[str, float]) -> list[str]:
    declared = list(feature.levels)
    return sorted(
        levels,
        key=lambda lv: (declared.index(lv) if lv in declared else len(declared), -(base.get(lv) or 0), lv),
    )


def heatmap(inputs: PageInputs) -> dict:
    """Rows in declaration order: a mean or a yes/no share is one row; a category a group of levels."""
    excluded = set((inputs.rules.get("refinements") or {}).get("exclude_features", []))
    by_key: dict[tuple[str, str | None], dict[int, Mapping]] = {}
    for row in inputs.data.traits:
        level = None if row.get("level") is None else str(row["level"])
        by_key.setdefault((row["feature"], level), {})[int(row["segment_id"])] = row
    groups = []
    for feature in inputs.catalog:
        if feature.name in excluded or (feature.companion_of and feature.companion_of in by_key_features(by_key)):
            continue
        keys = [key for key in by_key if key[0] == feature.name]
        if not keys:
            continue
        plain = [key for key in keys if key[1] is None]
        if plain:
            groups.append({"label": None, "rows": [_row(feature, None, by_key[plain[0]], inputs)]})
            continue
        base = {lv: next(iter(by_key[(feature.name, lv)].values())).get("base_value") for _, lv in keys}
        levels = _level_order(feature, [lv for _, lv in keys], base)
        groups.append(
            {"label": feature.label, "rows": [_row(feature, lv, by_key[(feature.name, lv)], inputs) for lv in levels]}
        )
    scale = [
        {"text": inputs.fmt.sd(step) if step else "0", "colour": colour, "text_colour": charts.text_colour(colour)}
        for step, colour in charts.std_diff_scale()
    ]
    show_names = len(inputs.personas) <= int(inputs.vocab["compare"].get("names_up_to", 6))
    return {"columns": segment_columns(inputs, show_names), "groups": groups, "scale": scale}


def by_key_features(by_key: Mapping[tuple[str, str | None], object]) -> set[str]:
    """Features profiled by their levels (so an ordered category's `_level` mean is not repeated)."""
    return {feature for feature, level in by_key if level is not None}


def build(inputs: PageInputs) -> dict:
    t = inputs.vocab["compare"]
    tsne = inputs.data.projection.get("tsne_x", np.array([]))
    return {
        "heatmap": heatmap(inputs),
        "pca_chart": inputs.chart.get("pca"),
        "tsne_chart": inputs.chart.get("tsne"),
        "tsne_caption": fill(t["tsne_caption"], {"sample": inputs.fmt.number(int(np.isfinite(tsne).sum()))}),
    }
