"""The quality check of order lines: stop when too many lines were quarantined.

Lines without a customer (guest checkouts) and exact duplicates are normal in order
exports and say nothing about the file being the wrong one: they are counted and
reported, not held against it. Any other reason in bulk (unreadable dates or prices…)
means the declaration does not fit the file.
"""

from __future__ import annotations

import logging

import duckdb

from .errors import UserError
from .quality import QuarantineShare

log = logging.getLogger(__name__)

EXPECTED_REASONS = ("missing_customer_id", "duplicate_line", "empty_row")


def read_order_share(con: duckdb.DuckDBPyConnection) -> QuarantineShare | None:
    """Lines read and quarantined (expected reasons aside); None without order lines."""
    try:
        rows = con.execute("select section, item, rows from marts.order_quality_summary").fetchall()
    except duckdb.CatalogException:
        return None
    accounting = {item: int(n) for section, item, n in rows if section == "accounting"}
    if not accounting.get("lines_read"):
        return None
    reasons = sorted(((i, int(n)) for s, i, n in rows if s == "quarantine"), key=lambda r: (-r[1], r[0]))
    expected = sum(n for reason, n in reasons if reason in EXPECTED_REASONS)
    return QuarantineShare(
        accounting["lines_read"] - expected,
        accounting["lines_quarantined"] - expected,
        tuple(r for r in reasons if r[0] not in EXPECTED_REASONS),
    )


def check_order_share(con: duckdb.DuckDBPyConnection, max_share: float) -> QuarantineShare | None:
    counts = read_order_share(con)
    if counts is None:
        return None
    share = counts.share if counts.rows_read else 0.0
    log.info(
        "%s of %s order lines quarantined for unreadable or implausible values (lines without customer and "
        "duplicates aside; at most %.0f %% allowed)",
        f"{counts.rows_quarantined:,}",
        f"{counts.rows_read:,}",
        100 * max_share,
    )
    if share > max_share:
        top = ", ".join(f"{reason} ({rows:,})" for reason, rows in counts.reasons[:3])
        raise UserError(
            f"{100 * share:.1f} % of the order lines were quarantined, more than the {100 * max_share:.0f} % allowed "
            f"by MAX_QUARANTINE_SHARE; top reasons: {top}. Check the orders section of the declaration (date "
            "formats, columns), or raise the limit. The published results are unchanged."
        )
    return counts
