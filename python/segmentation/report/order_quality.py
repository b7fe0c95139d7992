"""The order lines' data-quality page: where every line went (read, kept, returns netted,
quarantined by reason, with examples), how the customer table and the order lines met,
and the reference date recency counts from. None when the run had no order lines.
"""

from __future__ import annotations

from collections.abc import Mapping

from segmentation.report.common import PageInputs
from segmentation.report.i18n import NumberFormat, fill

LEDGER = ("lines_read", "returns_netted", "lines_quarantined", "lines_kept")
CUSTOMERS = ("customers_with_orders", "customers_without_orders", "customers_in_orders_only")


def _share(fmt: NumberFormat, part: int, whole: int) -> str:
    return fmt.share(part / whole) if whole else ""


def _reason(reason: str, words: Mapping[str, str]) -> str:
    return words.get(reason) or reason.replace("_", " ")


def build(inputs: PageInputs) -> dict | None:
    rows = inputs.data.order_quality
    counts = {r["item"]: int(r["rows"] or 0) for r in rows if r["section"] in ("accounting", "customers")}
    read = counts.get("lines_read", 0)
    if not read:
        return None
    t, fmt = inputs.vocab["order_quality"], inputs.fmt
    as_of = next((r["detail"] for r in rows if r["section"] == "reference"), None)
    accounted = counts["lines_kept"] + counts["returns_netted"] + counts["lines_quarantined"]
    reasons = sorted(
        ((r["item"], int(r["rows"])) for r in rows if r["section"] == "quarantine"), key=lambda kv: (-kv[1], kv[0])
    )
    kinds = {"lines_read": "total", "lines_kept": "result"}
    return {
        "lead": fill(t["lead"], {"as_of": as_of or t["no_date"]}),
        "ledger": [
            {
                "label": t[item],
                "rows": fmt.number(counts[item]) if kinds.get(item) else fmt.signed(-counts[item]),
                "share": _share(fmt, counts[item], read),
                "kind": kinds.get(item, "less"),
            }
            for item in LEDGER
        ],
        "check_ok": accounted == read,
        "check": fill(t["check_ok"], {"lines_read": fmt.number(read)})
        if accounted == read
        else fill(t["check_failed"], {"difference": fmt.number(abs(read - accounted))}),
        "reasons": [
            {"label": _reason(reason, t["reasons"]), "rows": fmt.number(n), "share": _share(fmt, n, read)}
            for reason, n in reasons
        ],
        "examples": [
            {
                "reason": _reason(r["quarantine_reason"], t["reasons"]),
                "value": t["no_value"] if r["source_value"] is None else r["source_value"],
                "rows": fmt.number(r["rows"]),
            }
            for r in inputs.data.order_examples
        ],
        "customers": [{"label": t[item], "rows": fmt.number(counts.get(item, 0))} for item in CUSTOMERS],
    }
