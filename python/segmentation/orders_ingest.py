"""Loading order lines (`ORDERS=file`) into `raw.orders`, beside or instead of the customer table.

The order file goes through the same checks and dialect detection as the customer
export (`ingest.load_raw_file` with `table="orders"`). The order models always run:
without order lines, `raw.orders` is an empty table and they give no rows; without a
customer table, `raw.customers` is an empty table and the customers come from the
orders alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import duckdb

from .declaration import Declaration, DeclarationError
from .ingest import load_raw_file
from .orders_declaration import ROLE_KEYS
from .warehouse import quote_identifier

log = logging.getLogger(__name__)


def for_run(declaration: Declaration, orders_file: str | None, as_of: str | None = None) -> Declaration:
    """The declaration as this run uses it: without its orders when no ORDERS= file is given,
    with `AS_OF=` as the reference date when set."""
    if not orders_file:
        return declaration.without_orders()
    if declaration.orders is None:
        raise DeclarationError(
            f"{declaration.path} declares no order lines (no `orders:` section): write it with "
            f"`make init ORDERS={orders_file}` (FORCE=1 to rewrite), or name another with DECLARATION=."
        )
    if as_of and as_of.strip():
        try:
            date = dt.date.fromisoformat(as_of.strip()).isoformat()
        except ValueError:
            raise DeclarationError(f"AS_OF={as_of!r} is not a date: write it as YYYY-MM-DD.") from None
        spec = {**declaration.spec, "orders": {**declaration.orders, "as_of": date}}
        return dataclasses.replace(declaration, spec=spec)
    return declaration


def order_headers(declaration: Declaration) -> tuple[str, ...]:
    orders = declaration.orders or {}
    return tuple(orders[key]["column"] for key in ROLE_KEYS if orders.get(key))


def _empty(con: duckdb.DuckDBPyConnection, table: str, headers: tuple[str, ...]) -> None:
    columns = ", ".join(["source_row_number bigint", *(f"{quote_identifier(h)} varchar" for h in headers)])
    con.execute(f"create or replace table raw.{table} ({columns})")
    con.execute(
        f"create or replace table raw.{table}_rejected (source_row_number bigint, source_line_number bigint, "
        "source_line varchar, load_error varchar, error_message varchar)"
    )


def load_orders(con: duckdb.DuckDBPyConnection, declaration: Declaration, path: Path | None) -> int:
    """raw.orders from the file (or empty when `path` is None); returns the lines loaded."""
    con.execute("create schema if not exists raw")
    if path is None:
        _empty(con, "orders", order_headers(declaration))
        con.execute(
            "create or replace table raw.orders_load_metadata as select cast(null as varchar) as source_file, "
            "cast(0 as bigint) as rows, cast(0 as bigint) as rows_rejected, cast(null as varchar) as as_of"
        )
        return 0
    summary = load_raw_file(con, Path(path), order_headers(declaration), declaration=str(declaration.path),
                            table="orders")  # fmt: skip
    con.execute("alter table raw.orders_load_metadata add column as_of varchar")
    con.execute("update raw.orders_load_metadata set as_of = ?", [declaration.orders["as_of"]])
    return summary.rows


def orders_only_customers(con: duckdb.DuckDBPyConnection, declaration: Declaration) -> None:
    """No customer table: an empty raw.customers, and the load described by the orders' load."""
    _empty(con, "customers", declaration.file_columns(required=True) + declaration.file_columns(required=False))
    con.execute(
        "create or replace table raw.load_metadata as select source_file, file_format, rows, loaded_at, "
        "extra_columns, rows_rejected, encoding, separator, declaration from raw.orders_load_metadata"
    )
    con.execute(
        "create or replace table raw.load_columns (column_position integer, column_name varchar, "
        "loaded_as varchar, required_column varchar)"
    )
    log.info("no customer table: the customers are those of the order lines")
