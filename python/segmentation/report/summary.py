"""The executive summary: headline figures, segment sizes, the personas at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segmentation.report.common import PageInputs
from segmentation.report.i18n import fill


def join_list(items: Sequence[str], vocab: Mapping, limit: int = 6) -> str:
    """ "a, b and c" in the report's language; beyond `limit` items, "a, b, … and others"."""
    words = vocab["lists"]
    if len(items) > limit:
        return fill(words["and_others"], {"items": vocab.get("list_separator", ", ").join(items[:limit])})
    if len(items) <= 1:
        return "".join(items)
    return fill(words["and"], {"items": vocab.get("list_separator", ", ").join(items[:-1]), "last": items[-1]})


def build(inputs: PageInputs, persona_pages: Sequence[Mapping]) -> dict:
    t, fmt = inputs.vocab["summary"], inputs.fmt
    customers = inputs.customers
    largest = max(inputs.personas, key=lambda p: (p.customers, -p.segment_id))
    clustered = [f.label for f in inputs.catalog if f.role != "profile" and f.companion_of is None]
    return {
        "lead": fill(
            t["lead"],
            {
                "customers": fmt.number(customers),
                "k": str(len(inputs.personas)),
                "features": join_list(clustered, inputs.vocab),
            },
        ),
        "kpis": [
            {"value": fmt.number(customers), "label": t["kpi_customers"]},
            {"value": str(len(inputs.personas)), "label": t["kpi_segments"]},
            {"value": str(len(clustered)), "label": t["kpi_features"]},
            {"value": fmt.share(largest.share_of_customers), "label": fill(t["kpi_largest"], {"name": largest.name})},
        ],
        "sizes_chart": inputs.chart.get("sizes"),
        "rows": [
            {
                "anchor": page["anchor"],
                "segment_id": page["segment_id"],
                "colour": page["colour"],
                "text_colour": page["text_colour"],
                "name": page["name"],
                "profile": page["portrait"],
                "behaviour": page["behaviour"],
                "share_of_customers": page["share_of_customers"],
                "customers": page["customers"],
            }
            for page in persona_pages
        ],
    }
