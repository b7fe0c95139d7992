"""Order lines end to end, as a user runs them: `make init ORDERS=f && make all ORDERS=f` on an
online-retail-like export (no customer table), and `make all` with both generated tables.

Real components only: make, the CLI, dbt-duckdb, scikit-learn, WeasyPrint.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_command, pipeline_env, run_cli
from pypdf import PdfReader

from segmentation.orders_gen import online_retail
from segmentation.shapes import write_table

pytestmark = pytest.mark.slow


def make(workdir: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    command = make_command(workdir, *targets, **variables)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=pipeline_env(workdir))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


@pytest.fixture(scope="module")
def retail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("orders_e2e")
    frame, truth = online_retail(220, seed=11)
    write_table(frame, workdir / "invoices.csv")
    write_table(truth, workdir / "truth.csv")
    declaration = str(workdir / "invoices.yml")
    make(workdir, "init", ORDERS=str(workdir / "invoices.csv"), DECLARATION=declaration)
    make(workdir, "all", ORDERS=str(workdir / "invoices.csv"), DECLARATION=declaration)
    return workdir


def test_orders_alone_give_rfm_features_and_a_report(retail: Path) -> None:
    columns = {row[0] for row in query(retail, "describe marts.customer_features")}
    assert {"recency_days", "frequency", "monetary", "tenure_days", "average_order_value"} <= columns
    lines = sum(1 for _ in (retail / "invoices.csv").open(encoding="utf-8")) - 1
    ledger = dict(query(retail, "select item, rows from marts.order_quality_summary where section = 'accounting'"))
    assert ledger["lines_read"] == lines
    assert ledger["lines_kept"] + ledger["returns_netted"] + ledger["lines_quarantined"] == lines
    assert ledger["returns_netted"] > 0 and ledger["lines_quarantined"] > 0
    text = "".join(page.extract_text() for page in PdfReader(retail / "output" / "segment_report.pdf").pages)
    assert "Order lines read" in text and "Returns and cancellations netted" in text
    assert "Buying behaviour" in text and "Medians per segment" in text


def test_segments_separate_recent_big_spenders_from_lapsed_small_ones(retail: Path) -> None:
    per_segment = query(
        retail,
        "select segment_id, avg(recency_days), avg(frequency), avg(monetary) from marts.customer_segments "
        "group by segment_id order by avg(monetary)",
    )
    assert len(per_segment) >= 2
    low, high = per_segment[0], per_segment[-1]
    assert high[1] < low[1] and high[2] > low[2]  # the top spenders are also more recent and more frequent
    planted = query(
        retail,
        f"select truth.planted_group, mode(segments.segment_id), count(*) "
        f"from read_csv('{retail / 'truth.csv'}', all_varchar = true) as truth "
        "join marts.customer_segments as segments on segments.customer_id = truth.CustomerID group by 1",
    )
    segment_of = {group: segment for group, segment, _ in planted}
    assert segment_of["champions"] != segment_of["lapsed"]


def test_both_generated_tables_are_joined_and_accounted_for(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path)
    for command in (
        ["generate", str(tmp_path / "customers.csv"), "--rows", "2000", "--seed", "5"],
        ["generate-orders", str(tmp_path / "orders.csv"), "--rows", "2000", "--seed", "5"],
    ):
        done = run_cli(env, *command)
        assert done.returncode == 0, done.stderr
    make(tmp_path, "all", DATA=str(tmp_path / "customers.csv"), ORDERS=str(tmp_path / "orders.csv"))
    counts = dict(query(tmp_path, "select item, rows from marts.order_quality_summary where section = 'customers'"))
    kept = query(tmp_path, "select count(*) from intermediate.int_customers_imputed")[0][0]
    features = query(tmp_path, "select count(*) from marts.customer_features")[0][0]
    assert counts["customers_without_orders"] > 0 and counts["customers_in_orders_only"] > 0
    assert features == kept + counts["customers_in_orders_only"]
    assert features == counts["customers_with_orders"] + counts["customers_without_orders"]
    columns = {row[0] for row in query(tmp_path, "describe marts.customer_segments")}
    assert {"recency_days", "frequency", "monetary", "share_grocery", "share_web"} <= columns

    assert "order lines are accounted for" in _pdf_text(tmp_path)

    # the same customers again, without their order lines: no order model runs, and the order
    # tables of the run before are gone (the report and the quality check read them)
    make(tmp_path, "all", DATA=str(tmp_path / "customers.csv"), ORDERS="")
    order_models = {"stg_orders", "stg_orders_rejected", "int_orders_validated", "customer_orders",
                    "order_quality_summary", "order_quarantine_examples"}  # fmt: skip
    relations = {row[0] for row in query(tmp_path, "select table_name from information_schema.tables")}
    assert not relations & order_models and "customer_features" in relations
    run_results = json.loads((tmp_path / "dbt_target" / "run_results.json").read_text(encoding="utf-8"))
    built = {result["unique_id"].split(".")[-1] for result in run_results["results"]}
    assert "customer_features" in built and not built & (order_models | {"assert_every_order_line_accounted_for"})
    assert query(tmp_path, "select count(*) from marts.customer_features")[0][0] == kept
    assert "order lines are accounted for" not in _pdf_text(tmp_path)


def _pdf_text(workdir: Path) -> str:
    return " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(workdir / "output" / "segment_report.pdf").pages
    )


def test_new_order_lines_are_scored_with_the_saved_model(retail: Path) -> None:
    frame, _ = online_retail(40, seed=12)
    write_table(frame, retail / "new_invoices.csv")
    make(retail, "score", ORDERS=str(retail / "new_invoices.csv"), DECLARATION=str(retail / "invoices.yml"))
    scored = query(retail, "select count(*), count(distinct customer_id) from segmentation.segment_scores")[0]
    buyers = frame.loc[frame["CustomerID"].str.len() > 0, "CustomerID"].nunique()
    assert scored[0] == scored[1] and 0 < scored[0] <= buyers
