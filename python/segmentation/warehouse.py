"""Talking to DuckDB: opening the warehouse, reading the mart, writing results.

Kept in one module so that the rest of the package is a pure core (arrays in,
arrays out) and so that lock handling, quoting and transactions live in one place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from .contract import FeatureContract
from .errors import UserError

log = logging.getLogger(__name__)

RESULTS_SCHEMA = "segmentation"


def quote_identifier(name: str) -> str:
    """Quote a column or table name for SQL, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, turning DuckDB's lock error into a message a user can act on."""
    if read_only and not path.exists():
        raise UserError(f"warehouse {path} does not exist: run `make all` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise UserError(
                f"the warehouse {path} is in use by another run (DuckDB holds a lock on it): "
                "wait for that run to finish, or stop it, then run again."
            ) from None
        raise UserError(f"cannot open the warehouse {path}: {exc}") from None
    if not read_only:
        # the same cap as dbt's (profiles.yml): beyond it DuckDB spills to disk, so a
        # bigger input costs time, not memory
        limit = os.environ.get("DUCKDB_MEMORY_LIMIT", "").strip() or "4GB"
        try:
            con.execute(f"set memory_limit = {quote_literal(limit)}")
        except duckdb.Error:
            con.close()
            raise UserError(
                f"DUCKDB_MEMORY_LIMIT={limit!r} is not a memory size DuckDB understands: use e.g. 4GB."
            ) from None
    try:
        yield con
    finally:
        con.close()


def read_features(con: duckdb.DuckDBPyConnection, contract: FeatureContract) -> pa.Table:
    """Read the mart as Arrow, in id order so that the same data give the same labels."""
    columns = ", ".join(quote_identifier(c) for c in contract.columns)
    try:
        return con.sql(
            f"select {columns} from {contract.relation} order by {quote_identifier(contract.id_column)}"
        ).to_arrow_table()
    except duckdb.CatalogException:
        raise UserError(f"{contract.relation} is not in the warehouse: run the dbt step first (make mart).") from None


def write_results(
    con: duckdb.DuckDBPyConnection,
    replace: Mapping[str, pa.Table],
    append: Mapping[str, pa.Table],
    derived: Mapping[str, str] | None = None,
) -> None:
    """Write all results of a run in one transaction: a failure leaves the previous run whole.

    `replace` tables hold the latest run only; `append` tables keep every run's history;
    `derived` tables are built by SQL that may read both the incoming tables (registered
    as `incoming_<name>`) and the previous run's tables, before those are replaced.
    """
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {RESULTS_SCHEMA}")
        for name, table in {**replace, **append}.items():
            con.register(f"incoming_{name}", table)
        for name, sql in (derived or {}).items():
            con.execute(f"create or replace table {RESULTS_SCHEMA}.{name} as {sql}")
        for name in replace:
            con.execute(f"create or replace table {RESULTS_SCHEMA}.{name} as select * from incoming_{name}")
        for name in append:
            con.execute(f"create table if not exists {RESULTS_SCHEMA}.{name} as select * from incoming_{name} limit 0")
            _add_new_columns(con, f"{RESULTS_SCHEMA}.{name}", f"incoming_{name}")
            con.execute(f"insert into {RESULTS_SCHEMA}.{name} by name select * from incoming_{name}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        for name in {**replace, **append}:
            con.unregister(f"incoming_{name}")


def _add_new_columns(con: duckdb.DuckDBPyConnection, target: str, incoming: str) -> None:
    """History tables written by an older version gain the columns this version adds."""
    existing = {row[0] for row in con.sql(f"describe {target}").fetchall()}
    for column, column_type, *_ in con.sql(f"describe {incoming}").fetchall():
        if column not in existing:
            con.execute(f"alter table {target} add column {quote_identifier(column)} {column_type}")


def drop_relations(path: Path, relations: Iterable[tuple[str, str]]) -> None:
    """Drop each (schema, name) there is, table or view."""
    with connect(path) as con:
        for schema, name in relations:
            kind = con.execute(
                "select table_type from information_schema.tables"
                " where table_catalog = current_database() and table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchone()
            if kind is not None:
                what = "view" if kind[0] == "VIEW" else "table"
                con.execute(f"drop {what} {quote_identifier(schema)}.{quote_identifier(name)}")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchall()
    return rows[0][0] > 0


def previous_run(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[int, dict[str, float]], int]:
    """The run whose assignments are current: its id, its centres (original units), the largest id ever used."""
    if not (
        table_exists(con, RESULTS_SCHEMA, "segment_assignments")
        and table_exists(con, RESULTS_SCHEMA, "segment_centroids")
    ):
        return None, {}, 0
    run = con.sql(f"select any_value(run_id) from {RESULTS_SCHEMA}.segment_assignments").fetchall()[0][0]
    if run is None:
        return None, {}, 0
    centres: dict[int, dict[str, float]] = {}
    for segment_id, feature, value in con.execute(
        f"select segment_id, feature, value from {RESULTS_SCHEMA}.segment_centroids where run_id = ?", [run]
    ).fetchall():
        centres.setdefault(int(segment_id), {})[feature] = float(value)
    largest = con.sql(f"select coalesce(max(segment_id), 0) from {RESULTS_SCHEMA}.segment_centroids").fetchall()[0][0]
    return str(run), centres, int(largest)
