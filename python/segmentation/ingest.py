"""Loading the user's export into `raw.customers`: the "EL" before dbt's "T".

The file is checked first (exists, not empty, CSV or Parquet, required columns) so
that every mistake ends in one clear message, and copied as text so that a bad value
becomes a quarantined row in dbt rather than a load failure.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .errors import UserError
from .warehouse import quote_identifier, quote_literal

log = logging.getLogger(__name__)

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class LoadSummary:
    source_file: str
    file_format: str
    rows: int
    columns: tuple[str, ...]
    extra_columns: tuple[str, ...]


def _reader_sql(path: Path) -> tuple[str, str]:
    suffix = path.suffix.lower()
    literal = quote_literal(str(path))
    if suffix in CSV_SUFFIXES:
        return "csv", f"read_csv({literal}, all_varchar = true, header = true)"
    if suffix in PARQUET_SUFFIXES:
        return "parquet", f"read_parquet({literal})"
    raise UserError(
        f"{path} is neither CSV nor Parquet (suffix {path.suffix or 'none'!r}): "
        "give a .csv or .parquet file, e.g. make all DATA=customers.csv."
    )


def _normalise_header(name: str) -> str:
    return re.sub(r"\s+", "_", name.replace("\ufeff", "").strip()).casefold()


def match_columns(found: Sequence[str], required: Sequence[str]) -> dict[str, str]:
    """Map each required column to the file's header, ignoring case, spaces and a BOM."""
    by_key: dict[str, str] = {}
    for name in found:
        by_key.setdefault(_normalise_header(name), name)
    missing = [column for column in required if _normalise_header(column) not in by_key]
    if missing:
        raise UserError(
            f"the input lacks required column(s) {', '.join(missing)} (found: {', '.join(found) or 'none'}): "
            "export a file with these columns (names are matched ignoring case)."
        )
    return {column: by_key[_normalise_header(column)] for column in required}


def load_raw_file(con: duckdb.DuckDBPyConnection, path: Path, required: Sequence[str]) -> LoadSummary:
    """Copy the input file, unchanged and as text, into `raw.customers`, in one transaction.

    Every column stays text so that a bad value becomes a quarantined row in dbt, not a
    load failure; `source_row_number` keeps the file order for the dedup rule and the
    quarantine report. Nothing in the warehouse changes unless the whole load succeeds.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"input file {path} does not exist: check the path given in DATA=.")
    if not path.is_file():
        raise UserError(f"input {path} is not a file: give the path of a .csv or .parquet file.")
    file_format, reader = _reader_sql(path)
    if path.stat().st_size == 0:
        raise UserError(f"input file {path} is empty (0 bytes): export the customer table again.")
    try:
        described = con.sql(f"describe select * from {reader}").fetchall()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise UserError(
            f"cannot read {path} as {file_format.upper()}: {first_line}. Check the file's format."
        ) from None
    found = [row[0] for row in described]
    mapping = match_columns(found, required)
    extra = tuple(name for name in found if name not in mapping.values())

    select_list = ", ".join(
        [f"{quote_identifier(src)}::varchar as {quote_identifier(dst)}" for dst, src in mapping.items()]
        + [f"{quote_identifier(name)}::varchar as {quote_identifier(name)}" for name in extra]
    )
    started = time.perf_counter()
    literal = quote_literal(str(path))
    if file_format == "csv":
        # Read outside the transaction: a committed temp table numbers rows 0..n-1 in file
        # order (DuckDB preserves insertion order), so rowid is the row's position.
        try:
            con.execute(f"create or replace temp table customers_load as select {select_list} from {reader}")
        except duckdb.Error as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise UserError(f"cannot read {path} as CSV: {first_line}. Check the file's format.") from None
        load_sql = (
            "select rowid + 1 as source_row_number, * exclude (rowid) from "
            "(select rowid, * from customers_load) order by rowid"
        )
    else:
        load_sql = (
            f"select file_row_number + 1 as source_row_number, {select_list} "
            f"from read_parquet({literal}, file_row_number = true) order by file_row_number"
        )
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists raw")
        con.execute(f"create or replace table raw.customers as {load_sql}")
        rows = con.sql("select count(*) from raw.customers").fetchall()[0][0]
        if rows == 0:
            raise UserError(f"input file {path} has a header but no rows: export the customer table again.")
        con.execute(
            "create or replace table raw.load_metadata as select "
            "? as source_file, ? as file_format, ?::bigint as rows, now() as loaded_at, ? as extra_columns",
            [str(path), file_format, rows, ", ".join(extra)],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists customers_load")
    log.info("loaded %s rows from %s in %.1f s", f"{rows:,}", path, time.perf_counter() - started)
    if extra:
        log.info("extra columns kept in raw.customers and ignored: %s", ", ".join(extra))
    return LoadSummary(str(path), file_format, rows, tuple(mapping), extra)
