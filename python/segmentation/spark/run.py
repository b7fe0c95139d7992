"""`python -m segmentation spark`: every step between the ingest and the publication, on Spark.

One process, one session: the raw tables go to Spark, dbt-spark builds the marts (through
dbt's programmatic runner, so it shares this process's session), the quality check reads
them, MLlib fits the segments, dbt builds the profiles, and the marts come back into the
DuckDB working copy that `publish` swaps in and the report reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..config import Settings
from ..contract import EXCLUDE_ORDER_LINES, order_line_relations
from ..errors import UserError
from ..pipeline import stage
from ..quality import check_quality
from ..warehouse import connect, drop_relations
from .session import start_session
from .transfer import raw_to_spark, spark_tables, spark_to_duckdb

log = logging.getLogger(__name__)

MARTS = "marts"


def spark_directory(settings: Settings) -> Path:
    """The run's Spark warehouse, metastore and scratch space: beside the DuckDB warehouse, made fresh."""
    return settings.warehouse.parent / "spark"


def dbt_on_spark(settings: Settings, *args: str) -> None:
    from dbt.cli.main import dbtRunner

    profiles = os.environ.get("DBT_PROFILES_DIR") or str(settings.dbt_project_dir)
    command = [
        "build",
        "--target",
        "spark",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        profiles,
        "--exclude-resource-type",
        "unit_test",
        *args,
    ]
    result = dbtRunner().invoke(command)
    if not result.success:
        raise UserError(
            f"dbt build on Spark failed ({' '.join(args)}): see the messages above and "
            f"{settings.dbt_target_dir / 'logs' / 'dbt.log'}; the published results are unchanged."
        )


def copy_marts(spark, settings: Settings, work: Path) -> None:
    with connect(settings.warehouse) as con:
        spark_to_duckdb(spark, con, MARTS, spark_tables(spark, MARTS), work)


def run_on_spark(settings: Settings, order_lines: bool = True) -> str:
    """dbt → quality → MLlib → dbt on Spark; the marts and the run's tables end in the DuckDB working copy.

    Without order lines the order models are not built (as in `make all` on DuckDB), and those an
    earlier run left in the DuckDB warehouse are dropped."""
    from .fit import run_segmentation_on_spark

    work = spark_directory(settings)
    with stage("starting Spark"):
        spark = start_session(work)
    try:
        with stage("loading the raw tables into Spark"), connect(settings.warehouse) as con:
            raw_to_spark(con, spark, work)
        with stage("dbt build on Spark: staging → intermediate → marts (tests included)"):
            dbt_on_spark(settings, "--exclude", "source:segmentation+", *(() if order_lines else EXCLUDE_ORDER_LINES))
        with stage("copying the marts into the DuckDB warehouse"):
            copy_marts(spark, settings, work)
            if not order_lines:
                drop_relations(settings.warehouse, order_line_relations(settings.manifest_path))
        check_quality(settings.warehouse)
        run_id = run_segmentation_on_spark(spark, settings)
        with stage("dbt build on Spark: segment profiles"):
            # the manifest of the first build stays the one Python reads
            dbt_on_spark(settings, "--select", "source:segmentation+", "--no-write-json")
        with stage("copying the segment marts into the DuckDB warehouse"):
            copy_marts(spark, settings, work)
    finally:
        spark.stop()
    return run_id
