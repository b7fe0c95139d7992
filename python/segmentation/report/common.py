"""What every page builder receives, and the pieces several pages share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segmentation import charts
from segmentation.personas import Catalog, Persona
from segmentation.report.i18n import NumberFormat
from segmentation.report.warehouse import WarehouseData


@dataclass(frozen=True)
class PageInputs:
    """The warehouse's data and everything derived once for all pages."""

    data: WarehouseData
    personas: Sequence[Persona]
    catalog: Catalog
    colours: Mapping[int, str]
    chart: Mapping[str, str]  # chart key → URL (file: for the PDF, data: for the HTML companion)
    vocab: Mapping
    rules: Mapping
    fmt: NumberFormat
    lang: str

    @property
    def customers(self) -> int:
        """Customers segmented, from segment_profiles, so that the summary's figures add up."""
        return sum(int(p["customers"]) for p in self.data.profiles)


def segment_columns(inputs: PageInputs, show_names: bool) -> list[dict]:
    """Column headers of the tables with one column per segment (badge, and name when there is room)."""
    return [
        {
            "badge": str(p.segment_id),
            "colour": inputs.colours[p.segment_id],
            "text_colour": charts.text_colour(inputs.colours[p.segment_id]),
            "name": p.name if show_names else None,
            "title": p.name,
        }
        for p in inputs.personas
    ]


def crosstab(
    rows: Sequence[Mapping],
    row_key: str,
    row_order: Sequence,
    row_labels: Mapping,
    column_ids: Sequence,
    fmt: NumberFormat,
    diagonal: bool = False,
) -> list[dict]:
    """Counts by (row value, segment), zero cells left faint. Flagged: the cell where row and
    column are the same segment (diagonal, for migration), else each row's largest cell."""
    counts: dict[tuple, int] = {}
    for r in rows:
        key = (r[row_key], r["segment_id"])
        counts[key] = counts.get(key, 0) + int(r["customers"] or 0)
    out = []
    for value in row_order:
        values = [counts.get((value, column), 0) for column in column_ids]
        top = max(values, default=0)
        flagged = [
            (column == value and value is not None) if diagonal else (v == top and v > 0)
            for column, v in zip(column_ids, values, strict=True)
        ]
        out.append(
            {
                "label": row_labels[value],
                "cells": [
                    {"text": fmt.number(v), "top": flag, "zero": v == 0}
                    for v, flag in zip(values, flagged, strict=True)
                ],
            }
        )
    return out
