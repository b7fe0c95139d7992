"""Tables between the DuckDB warehouse and Spark, through Parquet.

In: the raw tables the DuckDB ingest loaded (the file checked and read exactly as on the
DuckDB engine) become Spark tables over Parquet files. Out: the marts the report and the
quality check read are copied back into the DuckDB working copy. Locally both go through
Parquet files under the run's Spark directory; against a remote cluster (Spark Connect)
the driver cannot share files with it, so tables travel as Arrow.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from ..warehouse import quote_identifier, quote_literal
from .session import remote_url

log = logging.getLogger(__name__)


def spark_name(schema: str, table: str) -> str:
    return f"`{schema}`.`{table}`"


def signed(table: pa.Table) -> pa.Table:
    """Unsigned integers (DuckDB's counts) as int64: Spark has no unsigned types to receive them as Arrow."""
    fields = [
        field.with_type(pa.int64()) if pa.types.is_unsigned_integer(field.type) else field for field in table.schema
    ]
    return table.cast(pa.schema(fields))


def raw_to_spark(con: duckdb.DuckDBPyConnection, spark, staging_dir: Path) -> None:
    """Register every table of DuckDB's raw schema (customers, orders, their rejects and the load's
    metadata) in Spark's `raw` database, replacing any."""
    from pyspark.sql.pandas.types import from_arrow_schema

    spark.sql("create database if not exists raw")
    raw_tables = [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by table_name"
        ).fetchall()
    ]
    for table in raw_tables:
        spark.sql(f"drop table if exists {spark_name('raw', table)}")
        if remote_url():
            arrow = signed(con.sql(f"select * from raw.{table}").to_arrow_table())
            # an empty table (no rejected rows) carries its schema: Spark Connect cannot infer one from no rows
            frame = (
                spark.createDataFrame(arrow)
                if arrow.num_rows
                else spark.createDataFrame([], from_arrow_schema(arrow.schema))
            )
            frame.write.format("parquet").mode("overwrite").saveAsTable(f"raw.{table}")
            continue
        target = staging_dir / "raw" / f"{table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy raw.{table} to {quote_literal(str(target))} (format parquet)")
        spark.sql(f"create table {spark_name('raw', table)} using parquet location {quote_literal(str(target))}")
    log.info("raw tables registered in Spark: %s", ", ".join(raw_tables))


def spark_tables(spark, schema: str) -> list[str]:
    return sorted(row.tableName for row in spark.sql(f"show tables in `{schema}`").collect() if not row.isTemporary)


def spark_to_duckdb(spark, con: duckdb.DuckDBPyConnection, schema: str, tables: list[str], staging_dir: Path) -> None:
    """Copy Spark tables (views included, as tables) into the DuckDB warehouse's `schema`."""
    con.execute(f"create schema if not exists {quote_identifier(schema)}")
    for table in tables:
        frame = spark.table(spark_name(schema, table))
        target = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        if remote_url():
            arrow = frame.toArrow()  # noqa: F841 (read by DuckDB's replacement scan)
            con.execute(f"create or replace table {target} as select * from arrow")
            continue
        directory = staging_dir / "export" / schema / table
        if directory.exists():
            shutil.rmtree(directory)
        frame.write.mode("overwrite").parquet(str(directory))
        pattern = quote_literal(str(directory / "*.parquet"))
        con.execute(f"create or replace table {target} as select * from read_parquet({pattern})")
    log.info("copied %s.{%s} from Spark into DuckDB", schema, ", ".join(tables))
