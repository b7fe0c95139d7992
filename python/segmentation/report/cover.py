"""The cover: title, data set and date, and the contents (page numbers by target-counter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from segmentation.report.common import PageInputs
from segmentation.report.i18n import date_text, fill


def document(inputs: PageInputs) -> dict:
    t, run, fmt = inputs.vocab["report"], inputs.data.run, inputs.fmt
    date = date_text(run.get("finished_at") or run.get("started_at"), inputs.vocab)
    source = Path(str(run.get("source_file") or "")).name or fmt.missing
    return {
        "title": t["title"],
        "subtitle": t["subtitle"],
        "kicker": t["kicker"],
        "audience": t["audience"],
        "dataset": fill(t["dataset"], {"source": source, "customers": fmt.number(inputs.customers)}),
        "run": fill(t["run"], {"run_id": str(run["run_id"])}),
        "date": fill(t["date"], {"date": date}),
        "footer": fill(t["footer"], {"date": date}),
        "created": (run.get("finished_at") or datetime.now()).strftime("%Y-%m-%d"),  # W3C date, no time zone known
    }


def contents(inputs: PageInputs, persona_pages: Sequence[Mapping]) -> list[dict]:
    sections = inputs.vocab["sections"]
    return [
        {"anchor": "summary", "label": sections["summary"], "children": []},
        {
            "anchor": persona_pages[0]["anchor"],
            "label": sections["personas"],
            "children": [{"anchor": p["anchor"], "label": p["name"], "colour": p["colour"]} for p in persona_pages],
        },
        {"anchor": "compare", "label": sections["compare"], "children": []},
        *([{"anchor": "behaviour", "label": sections["behaviour"], "children": []}] if _has_orders(inputs) else []),
        {"anchor": "methodology", "label": sections["methodology"], "children": []},
        {"anchor": "quality", "label": sections["quality"], "children": []},
        *(
            [{"anchor": "order_quality", "label": sections["order_quality"], "children": []}]
            if _has_orders(inputs)
            else []
        ),
    ]


def _has_orders(inputs: PageInputs) -> bool:
    return any(r["item"] == "lines_read" and r["rows"] for r in inputs.data.order_quality)
