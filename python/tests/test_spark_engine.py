"""ENGINE=spark end to end: `make all ENGINE=spark` on a small generated export, in a temp dir,
against `make all` on DuckDB with the same file, k and algorithm (K-Means).

Real components only: make, dbt-spark in a local PySpark session (Java 17+), Spark MLlib,
dbt-duckdb, WeasyPrint. `.ci/run` installs Java and requirements-spark.txt.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_command, pipeline_env
from pypdf import PdfReader
from sklearn.metrics import adjusted_rand_score

from segmentation.generate import generate

pytestmark = pytest.mark.slow

ROWS = 2500
K = "4"


def make_all(workdir: Path, data: Path, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        make_command(workdir, "all", DATA=str(data), K=K, **variables),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("input") / "customers.csv"
    generate(data, rows=ROWS, seed=7)
    spark_dir, duckdb_dir = tmp_path_factory.mktemp("spark"), tmp_path_factory.mktemp("duckdb")
    result = make_all(spark_dir, data, ENGINE="spark")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    result = make_all(duckdb_dir, data, ALGO="kmeans")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return spark_dir, duckdb_dir


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_spark_built_every_model_as_parquet(runs: tuple[Path, Path]) -> None:
    spark_dir, _ = runs
    warehouse = spark_dir / ".build" / "spark" / "warehouse"
    # staging.stg_customers and intermediate.int_customers_deduplicated are views (read once): no files
    for schema, table in [
        ("intermediate.db", "int_customers_validated"),
        ("intermediate.db", "int_customers_imputed"),
        ("marts.db", "customer_features"),
        ("marts.db", "customer_segments"),
        ("segmentation.db", "segment_assignments"),
    ]:
        files = list((warehouse / schema / table).glob("*.parquet"))
        assert files, f"{schema}/{table}"
    rows = duckdb.sql(
        f"select count(*) from read_parquet('{warehouse / 'intermediate.db' / 'int_customers_validated'}/*.parquet')"
    ).fetchall()[0][0]
    assert rows == ROWS


def test_same_tables_and_accounting_as_duckdb(runs: tuple[Path, Path]) -> None:
    spark_dir, duckdb_dir = runs
    for relation in [
        "marts.customer_features",
        "marts.customer_quarantine",
        "marts.data_quality_summary",
        "marts.data_quality_columns",
        "marts.customer_segments",
        "marts.segment_profiles",
        "marts.segment_traits",
        "marts.feature_catalog",
        "marts.feature_levels",
        "marts.quarantine_examples",
        "segmentation.segment_assignments",
        "segmentation.segment_model_selection",
        "segmentation.segmentation_runs",
    ]:
        assert query(spark_dir, f"select count(*) from {relation}") == query(
            duckdb_dir, f"select count(*) from {relation}"
        ), relation
    # the plotted sample is stratified by segment: its size follows the segments' by a row or so
    assert query(spark_dir, "select count(*) from segmentation.segment_projection")[0][0] >= 900
    sql = "select section, item, rows from marts.data_quality_summary order by section, item"
    assert query(spark_dir, sql) == query(duckdb_dir, sql)  # the same cleaning, row for row
    summary = dict(query(spark_dir, "select item, rows from marts.data_quality_summary where section = 'accounting'"))
    assert summary["rows_read"] == ROWS
    assert summary["customers_kept"] + summary["duplicate_records_merged"] + summary["rows_quarantined"] == ROWS
    features = "select * from marts.customer_features order by customer_id"
    assert query(spark_dir, features) == query(duckdb_dir, features)


def test_segments_agree_with_duckdb(runs: tuple[Path, Path]) -> None:
    spark_dir, duckdb_dir = runs
    sql = "select customer_id, segment_id from segmentation.segment_assignments order by customer_id"
    spark_rows, duckdb_rows = query(spark_dir, sql), query(duckdb_dir, sql)
    assert [r[0] for r in spark_rows] == [r[0] for r in duckdb_rows]
    ari = adjusted_rand_score([r[1] for r in spark_rows], [r[1] for r in duckdb_rows])
    assert ari >= 0.9, ari
    assert query(spark_dir, "select count(distinct segment_id) from marts.customer_segments") == [(int(K),)]


def test_run_and_report_say_spark_ran(runs: tuple[Path, Path]) -> None:
    spark_dir, _ = runs
    (parameters,) = query(spark_dir, "select parameters from segmentation.segmentation_runs")[0]
    assert json.loads(parameters)["engine"] == "spark"
    text = " ".join(page.extract_text() or "" for page in PdfReader(spark_dir / "output" / "segment_report.pdf").pages)
    assert "Apache Spark" in " ".join(text.split())
    assert not (ROOT / "spark-warehouse").exists() and not (ROOT / "dbt_project" / "metastore_db").exists()
