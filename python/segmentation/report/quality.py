"""The data-quality page: where every row of the file went (read, kept, merged, quarantined by
reason, with examples), the values filled in per feature, and columns empty or constant.

Quarantine reasons are worded from their rule and the feature's declared label, so a
new column needs no new sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from segmentation.report.common import PageInputs
from segmentation.report.i18n import NumberFormat, fill
from segmentation.report.warehouse import ReportError

logger = logging.getLogger(__name__)

ACCOUNTING_ITEMS = ("rows_read", "duplicate_records_merged", "rows_quarantined", "customers_kept")
ROW_REASONS = {"empty_row": "empty_row", "malformed_row": "malformed_row", "missing_customer_id": "missing_id"}
MAX_NAME = 60  # column names longer than this are cut in the notes


def _items(rows: Sequence[Mapping], section: str) -> list[tuple[str, int]]:
    """(item, rows) of a section, in display order."""
    picked = [r for r in rows if r["section"] == section]
    picked.sort(key=lambda r: (r.get("display_order") if r.get("display_order") is not None else 1 << 30, r["item"]))
    return [(r["item"], int(r["rows"] or 0)) for r in picked]


def reason_rule(reason: str, examples: Sequence[Mapping]) -> tuple[str, str | None, str | None]:
    """(rule, feature, column) of a quarantine reason code: from its examples, else from the code."""
    for r in examples:
        if r["quarantine_reason"] == reason and r.get("rule"):
            return r["rule"], r.get("feature"), r.get("column_name")
    if reason in ROW_REASONS:
        return ROW_REASONS[reason], None, None
    for prefix, rule in (("unparseable_", "unparseable"), ("unknown_", "unknown_level")):
        if reason.startswith(prefix):
            return rule, reason[len(prefix) :], None
    if reason.endswith("_out_of_range"):
        return "out_of_range", reason[: -len("_out_of_range")], None
    return "other", None, None


def reason_label(reason: str, inputs: PageInputs) -> str:
    rules = inputs.vocab["quality"]["rules"]
    rule, feature, column = reason_rule(reason, inputs.data.quarantine_examples)
    if feature and feature in inputs.catalog:
        label = inputs.catalog.label(feature)
    else:
        label = column or (feature or reason).replace("_", " ")
    if rule not in rules:
        logger.warning("no wording for the quarantine rule %r; showing the reason code", rule)
        return reason.replace("_", " ")
    return fill(rules[rule], {"feature": label})


def flow_widths(parts: Mapping[str, int], minimum: float = 0.6) -> dict[str, float]:
    """Widths in % of the bar showing where the rows went; a non-zero part gets at least
    `minimum` % so it stays visible, taken from the widest part so the bar still sums to 100."""
    total = sum(parts.values())
    if not total:
        return {}
    widths = {key: max(minimum, 100 * n / total) for key, n in parts.items() if n}
    widest = max(widths, key=widths.get)
    widths[widest] -= sum(widths.values()) - 100
    return widths


def _share(fmt: NumberFormat, rows: int, of: int) -> str:
    if not of:
        return fmt.missing
    small = 0 < rows / of < 0.001  # 2 rows in 10,000 is not "0.0%"
    return fmt.percent(rows / of, 2 if small else 1)


def _cut(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def build(inputs: PageInputs) -> dict:
    q, fmt, data = inputs.vocab["quality"], inputs.fmt, inputs.data
    accounting = dict(_items(data.quality, "accounting"))
    missing = [item for item in ACCOUNTING_ITEMS if item not in accounting]
    if missing:
        raise ReportError(
            f"marts.data_quality_summary lacks accounting items: {', '.join(missing)}; rebuild (make all)"
        )
    read, kept = accounting["rows_read"], accounting["customers_kept"]
    unaccounted = read - kept - accounting["duplicate_records_merged"] - accounting["rows_quarantined"]
    if unaccounted:
        logger.warning("row accounting does not add up: %d rows unaccounted for", unaccounted)
    ledger = [
        {"label": q["rows_read"], "rows": fmt.number(read), "share": _share(fmt, read, read), "kind": "total"},
        *(
            {
                "label": q[item],
                "rows": fmt.signed(-accounting[item]),
                "share": _share(fmt, accounting[item], read),
                "kind": "less",
            }
            for item in ("duplicate_records_merged", "rows_quarantined")
        ),
        {"label": q["customers_kept"], "rows": fmt.number(kept), "share": _share(fmt, kept, read), "kind": "result"},
    ]
    parts = {key: accounting[key] for key in ("customers_kept", "duplicate_records_merged", "rows_quarantined")}
    flow = [{"key": key, "label": q[key], "width": f"{width:.2f}"} for key, width in flow_widths(parts).items()]
    quarantine = sorted(_items(data.quality, "quarantine"), key=lambda kv: (-kv[1], kv[0]))
    quarantine_total = sum(n for _, n in quarantine)
    if quarantine_total != accounting["rows_quarantined"]:
        logger.warning(
            "quarantine reasons sum to %d but %d rows are quarantined", quarantine_total, accounting["rows_quarantined"]
        )
    imputation = sorted(_items(data.quality, "imputation"), key=lambda kv: (-kv[1], kv[0]))
    segmented = data.run.get("customers")
    order = {reason: i for i, (reason, _) in enumerate(quarantine)}
    examples = sorted(data.quarantine_examples, key=lambda r: order.get(r["quarantine_reason"], len(order)))
    required = [c for c in data.input_columns if c["is_required"]]
    notes = (
        ("empty_columns", [c["column_name"] for c in required if c["is_empty"]]),
        ("constant_columns", [c["column_name"] for c in required if c["is_constant"]]),
        ("extra_columns", [c["column_name"] for c in data.input_columns if not c["is_required"]]),
    )
    return {
        "lead": q["lead"],
        "ledger": ledger,
        "flow": flow,
        "check_ok": unaccounted == 0,
        "check": fill(q["check_ok"], {"rows_read": fmt.number(read)})
        if unaccounted == 0
        else fill(q["check_failed"], {"difference": fmt.number(abs(unaccounted))}),
        "segmented_note": fill(q["segmented_note"], {"customers": fmt.number(segmented)})
        if segmented is not None and segmented != kept
        else None,
        "quarantine": [
            {"label": reason_label(reason, inputs), "rows": fmt.number(n), "share": _share(fmt, n, read)}
            for reason, n in quarantine
        ],
        "quarantine_total": {"rows": fmt.number(quarantine_total), "share": _share(fmt, quarantine_total, read)},
        "imputation": [
            {"label": inputs.catalog.label(column), "rows": fmt.number(n), "share": _share(fmt, n, kept)}
            for column, n in imputation
        ],
        # values from the file: plain strings, escaped by the template like every other value
        "examples": [
            {
                "reason": reason_label(r["quarantine_reason"], inputs),
                "column": r.get("column_name") or "",
                "value": q["no_value"] if r["source_value"] is None else r["source_value"],
                "rows": fmt.number(r["rows"]),
            }
            for r in examples
        ],
        "column_notes": [
            {"label": q[kind], "columns": ", ".join(_cut(name) for name in names)} for kind, names in notes if names
        ],
    }
