"""Talking to DuckDB: opening the warehouse, reading the mart, writing results.

Kept in one module so that the rest of the package is a pure core (arrays in,
arrays out) and so that lock handling, quoting and transactions live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
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
    con: duckdb.DuckDBPyConnection, replace: Mapping[str, pa.Table], append: Mapping[str, pa.Table]
) -> None:
    """Write all results of a run in one transaction: a failure leaves the previous run whole.

    `replace` tables hold the latest run only; `append` tables keep every run's history.
    """
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {RESULTS_SCHEMA}")
        for name, table in replace.items():
            con.register("incoming", table)
            con.execute(f"create or replace table {RESULTS_SCHEMA}.{name} as select * from incoming")
            con.unregister("incoming")
        for name, table in append.items():
            con.register("incoming", table)
            con.execute(f"create table if not exists {RESULTS_SCHEMA}.{name} as select * from incoming limit 0")
            con.execute(f"insert into {RESULTS_SCHEMA}.{name} by name select * from incoming")
            con.unregister("incoming")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def fetch_table(con: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[object] = ()) -> pa.Table:
    return con.execute(sql, list(parameters)).to_arrow_table()
