"""ENGINE=spark end to end: `make all ENGINE=spark` on a small generated export, in a temp dir,
against `make all` on DuckDB with the same file and k: the default model (the latent class
model, scored on Spark's executors) must give the same segments; Spark MLlib's K-Means
(ALGO=kmeans) must agree with scikit-learn's on the same encoding.

Real components only: make, dbt-spark in a local PySpark session (Java 17+), Spark MLlib,
dbt-duckdb, WeasyPrint. `.ci/run` installs Java and requirements-spark.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import ROOT, make_command, pipeline_env
from pypdf import PdfReader
from sklearn.metrics import adjusted_rand_score

from segmentation.config import Settings
from segmentation.contract import FeatureContract, order_line_relations
from segmentation.generate import generate
from segmentation.mixed_data import MixedPreparation
from segmentation.models_io import load_model
from segmentation.orders_gen import write_orders
from segmentation.spark.fit import _levels_and_weights
from segmentation.spark.kmeans import fit_kmeans_on_spark
from segmentation.spark.latent_class import driver_positions, fit_mixture_on_spark, fit_preparation
from segmentation.spark.session import start_session
from segmentation.warehouse import read_features

pytestmark = pytest.mark.slow

ROWS = 2500
K = "4"


def make_all(workdir: Path, data: Path, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        make_command(workdir, "all", DATA=str(data), **{"K": K, **variables}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The default model on Spark and on DuckDB at k = K, and K-Means on DuckDB at the k its rule chooses."""
    data = tmp_path_factory.mktemp("input") / "customers.csv"
    generate(data, rows=ROWS, seed=7)
    spark_dir, duckdb_dir, kmeans_dir = (tmp_path_factory.mktemp(name) for name in ("spark", "duckdb", "kmeans"))
    runs = [(spark_dir, {"ENGINE": "spark"}), (duckdb_dir, {}), (kmeans_dir, {"ALGO": "kmeans", "K": ""})]
    for workdir, variables in runs:
        result = make_all(workdir, data, **variables)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return spark_dir, duckdb_dir, kmeans_dir


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_spark_built_every_model_as_parquet(runs: tuple[Path, Path, Path]) -> None:
    spark_dir, _, _ = runs
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


def test_same_tables_and_accounting_as_duckdb(runs: tuple[Path, Path, Path]) -> None:
    spark_dir, duckdb_dir, _ = runs
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


def assignments(workdir: Path) -> list[tuple]:
    return query(
        workdir,
        "select customer_id, segment_id, membership_probability from segmentation.segment_assignments "
        "order by customer_id",
    )


def test_default_model_gives_the_same_segments_as_duckdb(runs: tuple[Path, Path, Path]) -> None:
    spark_dir, duckdb_dir, _ = runs
    spark_rows, duckdb_rows = assignments(spark_dir), assignments(duckdb_dir)
    assert [r[0] for r in spark_rows] == [r[0] for r in duckdb_rows]
    ari = adjusted_rand_score([r[1] for r in spark_rows], [r[1] for r in duckdb_rows])
    assert ari >= 0.99, ari
    # the same model scores each customer: the same membership probability, whichever process computed it
    assert max(abs(a[2] - b[2]) for a, b in zip(spark_rows, duckdb_rows, strict=True)) < 1e-4
    assert min(r[2] for r in spark_rows) < 1.0  # a posterior, not K-Means' constant 1
    (parameters,) = query(spark_dir, "select parameters from segmentation.segmentation_runs")[0]
    assert json.loads(parameters)["algorithm"] == "mixture"
    assert query(spark_dir, "select count(distinct segment_id) from marts.customer_segments") == [(int(K),)]


def test_mllib_kmeans_agrees_with_scikit_learn(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """ALGO=kmeans on Spark: MLlib's K-Means on DuckDB's encoding against the DuckDB run's scikit-learn K-Means,
    at the k that run chose on evidence (where K-Means has several near-equal optima, two initialisations
    need not agree)."""
    _, _, kmeans_dir = runs
    (model_path,) = (kmeans_dir / "models").glob("*.joblib")
    saved = load_model(model_path)
    contract, k = saved["contract"], len(saved["segment_ids"])
    with duckdb.connect(str(kmeans_dir / "warehouse.duckdb"), read_only=True) as con:
        table = read_features(con, contract)
    spark = start_session(tmp_path / "spark")
    try:
        labels, distances, centres, sizes, _ = fit_kmeans_on_spark(
            spark.createDataFrame(table), contract, saved["preprocessor"], k, random_state=42
        )
    finally:
        spark.stop()
    segment_of = {r[0]: r[1] for r in assignments(kmeans_dir)}
    expected = [segment_of[str(i)] for i in table.column(contract.id_column).to_pylist()]  # id order, as Spark's
    assert adjusted_rand_score(labels, expected) >= 0.9
    assert centres.shape[0] == k and sizes.sum() == len(expected) and distances.min() >= 0


def test_spark_connect_scores_the_same_segments(
    runs: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The remote path for real: a Spark Connect server started in this process (SPARK_REMOTE=local[2]),
    the mart sent as Arrow, the DuckDB run's model scored through mapInArrow over Connect."""
    _, duckdb_dir, _ = runs
    (model_path,) = (duckdb_dir / "models").glob("*.joblib")
    saved = load_model(model_path)
    contract = saved["contract"]
    with duckdb.connect(str(duckdb_dir / "warehouse.duckdb"), read_only=True) as con:
        table = read_features(con, contract)
    monkeypatch.setenv("SPARK_REMOTE", "local[2]")
    spark = start_session(tmp_path / "spark")
    try:
        assert type(spark).__module__.startswith("pyspark.sql.connect")
        frame = spark.createDataFrame(table)
        levels, _ = _levels_and_weights(frame, contract)
        settings = replace(Settings(), k=int(K), algorithm="mixture")
        positions = driver_positions(table.num_rows, settings, mixture=True)
        fitted = fit_mixture_on_spark(
            frame, contract, table, positions, table.num_rows, levels, saved["preprocessor"], 3, settings
        )
    finally:
        spark.stop()
        for variable in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE"):  # set by PySpark for its local server
            os.environ.pop(variable, None)
    segment_of = {r[0]: r[1] for r in assignments(duckdb_dir)}
    expected = [segment_of[str(i)] for i in table.column(contract.id_column).to_pylist()]
    assert adjusted_rand_score(fitted.labels, expected) >= 0.99
    assert fitted.probabilities.min() < 1.0 and len(fitted.labels) == table.num_rows


def test_run_and_report_say_spark_ran(runs: tuple[Path, Path, Path]) -> None:
    spark_dir, _, _ = runs
    (parameters,) = query(spark_dir, "select parameters from segmentation.segmentation_runs")[0]
    assert json.loads(parameters)["engine"] == "spark"
    text = " ".join(page.extract_text() or "" for page in PdfReader(spark_dir / "output" / "segment_report.pdf").pages)
    assert "Apache Spark" in " ".join(text.split())
    assert not (ROOT / "spark-warehouse").exists() and not (ROOT / "dbt_project" / "metastore_db").exists()


@pytest.fixture(scope="module")
def order_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Customers and their order lines, the default model at k = K, on Spark and on DuckDB."""
    inputs = tmp_path_factory.mktemp("order_input")
    data, orders = inputs / "customers.csv", inputs / "orders.csv"
    generate(data, rows=ROWS, seed=7)
    write_orders(orders, ROWS, seed=7)
    spark_dir, duckdb_dir = (tmp_path_factory.mktemp(name) for name in ("order_spark", "order_duckdb"))
    for workdir, variables in [(spark_dir, {"ENGINE": "spark"}), (duckdb_dir, {})]:
        result = make_all(workdir, data, ORDERS=str(orders), **variables)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return spark_dir, duckdb_dir


def test_order_lines_give_the_same_behaviour_and_segments_on_spark(order_runs: tuple[Path, Path]) -> None:
    spark_dir, duckdb_dir = order_runs
    for sql in [
        "select section, item, rows from marts.order_quality_summary order by section, item",
        "select quarantine_reason, source_value, rows from marts.order_quarantine_examples order by all",
        "select count(*), sum(frequency), round(sum(monetary), 6), round(avg(recency_days), 6)"
        " from marts.customer_features",
    ]:
        assert query(spark_dir, sql) == query(duckdb_dir, sql), sql
    lines = dict(query(spark_dir, "select item, rows from marts.order_quality_summary where section = 'accounting'"))
    assert lines["lines_read"] > 0 and lines["lines_kept"] > 0
    spark_rows, duckdb_rows = assignments(spark_dir), assignments(duckdb_dir)
    assert [r[0] for r in spark_rows] == [r[0] for r in duckdb_rows]
    assert adjusted_rand_score([r[1] for r in spark_rows], [r[1] for r in duckdb_rows]) >= 0.99


def test_a_driver_sample_takes_which_numbers_have_few_values_from_every_row(tmp_path: Path) -> None:
    """Above the driver's sample, MixedPreparation's few-valued ranges are read by Spark over every
    row, as DuckDB reads them from the whole table: the sample alone would decide otherwise."""
    rng = np.random.default_rng(3)
    n = 4000
    children = rng.integers(0, 4, n).astype(np.float64)
    children[:40] = 9  # 1 % of every row, none in the sample: the range runs to 9
    score = rng.integers(0, 4, n).astype(np.float64)
    score[-5:] = 0.5  # not whole, outside the sample: a Gaussian, not levels
    tenure = rng.integers(0, 30, n).astype(np.float64)  # 30 whole values: too many levels either way
    region = rng.choice(["north", "south"], n)
    table = pa.table({"id": [str(i) for i in range(n)], "children": children, "score": score, "tenure": tenure,
                      "region": region})  # fmt: skip
    contract = FeatureContract("t", "id", numeric=("children", "score", "tenure"), ordinal=(), categorical=("region",))
    driver = table.slice(100, 1000)
    spark = start_session(tmp_path / "spark")
    try:
        prepared = fit_preparation(driver, spark.createDataFrame(table), n, contract, {"region": ["north", "south"]})
    finally:
        spark.stop()
    whole = MixedPreparation(contract).fit(table)
    assert MixedPreparation(contract).fit(driver).ranges_ == {"children": (0, 3), "score": (0, 3)}
    assert prepared.ranges_ == whole.ranges_ == {"children": (0, 9)}
    assert prepared.gaussian_ == whole.gaussian_ == ("score", "tenure")
    assert prepared.levels_["children"] == list(range(10))
    np.testing.assert_allclose(prepared.mean_, whole.mean_)
    np.testing.assert_allclose(prepared.scale_, whole.scale_)


def test_without_order_lines_spark_builds_no_order_model(runs: tuple[Path, Path, Path]) -> None:
    spark_dir, _, _ = runs
    target = spark_dir / "dbt_target"
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    built = {result["unique_id"].split(".")[-1] for result in results}
    order_models = {name for _, name in order_line_relations(target / "manifest.json")}
    assert order_models == {"stg_orders", "stg_orders_rejected", "int_orders_validated", "customer_orders",
                            "order_quality_summary", "order_quarantine_examples"}  # fmt: skip
    assert "customer_features" in built and not built & (order_models | {"assert_every_order_line_accounted_for"})
    assert not {row[0] for row in query(spark_dir, "select table_name from information_schema.tables")} & order_models
