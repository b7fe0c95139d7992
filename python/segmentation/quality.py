"""Checks on the cleaned data before anything is clustered or published.

dbt quarantines bad rows one by one; when a large share of the file ends up there,
the input is probably not the expected export (another table, a shifted column, a
wrong separator…), and a report built from the few rows left would mislead. This
step stops the run with one message instead, before publication, so the previous
results stay in place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .errors import UserError
from .warehouse import connect

log = logging.getLogger(__name__)

DEFAULT_MAX_QUARANTINE_SHARE = 0.20
TOP_REASONS = 3


@dataclass(frozen=True)
class QuarantineShare:
    """Rows read and quarantined, from marts.data_quality_summary."""

    rows_read: int
    rows_quarantined: int
    reasons: tuple[tuple[str, int], ...]  # most frequent first

    @property
    def empty_rows(self) -> int:
        """Lines of separators only (spreadsheet leftovers) say nothing about the file."""
        return dict(self.reasons).get("empty_row", 0)

    @property
    def share(self) -> float:
        """Share of the non-empty rows that were quarantined (1.0 when no row has data)."""
        rows = self.rows_read - self.empty_rows
        return (self.rows_quarantined - self.empty_rows) / rows if rows > 0 else 1.0


def parse_share(value: str, name: str = "MAX_QUARANTINE_SHARE") -> float:
    """A share as users write it: 0.2, 0,2 or 20%."""
    text = value.strip().replace(",", ".")
    percent = text.endswith("%")
    try:
        share = float(text.rstrip("%").strip()) / (100 if percent else 1)
    except ValueError:
        share = float("nan")
    if not 0 <= share <= 1:  # also refuses NaN
        raise UserError(f"{name}={value!r} is not a share between 0 and 1: write e.g. {name}=0.2 or {name}=20%.")
    return share


def max_quarantine_share_from_environment() -> float:
    value = os.environ.get("MAX_QUARANTINE_SHARE", "").strip()
    return parse_share(value) if value else DEFAULT_MAX_QUARANTINE_SHARE


def read_quarantine_share(con: duckdb.DuckDBPyConnection) -> QuarantineShare:
    try:
        rows = con.execute("select section, item, rows from marts.data_quality_summary").fetchall()
    except duckdb.CatalogException:
        raise UserError(
            "marts.data_quality_summary is not in the warehouse: run the dbt step first (make mart)."
        ) from None
    accounting = {item: int(n) for section, item, n in rows if section == "accounting"}
    reasons = sorted(
        ((item, int(n)) for section, item, n in rows if section == "quarantine"), key=lambda r: (-r[1], r[0])
    )
    return QuarantineShare(accounting.get("rows_read", 0), accounting.get("rows_quarantined", 0), tuple(reasons))


def _percent(share: float) -> str:
    return f"{100 * share:.1f} %".replace(".0 %", " %")


def _source_file(con: duckdb.DuckDBPyConnection) -> str:
    try:
        rows = con.execute("select source_file from raw.load_metadata").fetchall()
    except duckdb.Error:
        return "the input file"
    return str(rows[0][0]) if rows else "the input file"


def check_quarantine_share(
    con: duckdb.DuckDBPyConnection, max_share: float, warehouse: Path | None = None
) -> QuarantineShare:
    """Raise one clear UserError when more than `max_share` of the rows were quarantined."""
    counts = read_quarantine_share(con)
    share = counts.share
    log.info(
        "%s of %s rows quarantined (%s; at most %s allowed)",
        f"{counts.rows_quarantined:,}",
        f"{counts.rows_read:,}",
        _percent(share),
        _percent(max_share),
    )
    if share <= max_share:
        return counts
    top_reasons = [r for r in counts.reasons if r[0] != "empty_row"][:TOP_REASONS]
    top = ", ".join(f"{reason} ({rows:,})" for reason, rows in top_reasons) or "no reason recorded"
    where = f" of {warehouse}" if warehouse else ""
    plural = "s" if counts.empty_rows != 1 else ""
    empty = f", not counting {counts.empty_rows:,} empty row{plural}" if counts.empty_rows else ""
    raise UserError(
        f"{counts.rows_quarantined - counts.empty_rows:,} of {counts.rows_read - counts.empty_rows:,} rows of "
        f"{_source_file(con)} were quarantined ({_percent(share)}{empty}), more than the "
        f"{_percent(max_share)} allowed by MAX_QUARANTINE_SHARE; top reasons: {top}. "
        "The file is probably not the expected export: "
        f"check it (each row and its reason are in marts.customer_quarantine{where}), or, if this is expected, "
        f"raise the limit, e.g. MAX_QUARANTINE_SHARE={min(1.0, round(share + 0.05, 2))}. "
        "The published results are unchanged."
    )


def log_column_notes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Log the input columns that are entirely empty or constant; returns (column, 'empty'|'constant')."""
    try:
        rows = con.execute(
            "select column_name, is_empty from marts.data_quality_columns "
            "where is_required and (is_empty or is_constant) order by column_position"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    notes = [(name, "empty" if is_empty else "constant") for name, is_empty in rows]
    for name, kind in notes:
        if kind == "empty":
            log.warning("column %s is entirely empty: filled with a neutral value, it cannot separate customers", name)
        else:
            log.warning("column %s holds a single value: it cannot separate customers", name)
    return notes


def check_quality(warehouse: Path, max_share: float | None = None) -> QuarantineShare:
    """The checks `make all` runs between the dbt mart and the clustering step."""
    from .orders_quality import check_order_share

    max_share = max_quarantine_share_from_environment() if max_share is None else max_share
    with connect(Path(warehouse), read_only=True) as con:
        orders = check_order_share(con, max_share)
        if orders is not None and read_quarantine_share(con).rows_read == 0:
            return orders  # no customer table: the order lines are the input
        counts = check_quarantine_share(con, max_share, warehouse)
        log_column_notes(con)
    return counts
