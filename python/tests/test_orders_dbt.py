"""The order models on a small crafted pair of files: every line accounted for, returns netted,
quarantine reasons, and the join of customers and orders accounted for both ways.

One real ingest and `dbt build` (module fixture) on a real DuckDB file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
from conftest import pipeline_env, run_cli, run_dbt

from segmentation.generate import generate
from segmentation.orders_gen import write_orders

pytestmark = pytest.mark.slow

DECLARATION = """
version: 1
columns:
  - {column: Client, type: identifier}
  - {column: Region, type: category, label: {en: region, fr: région}}
  - {column: Income, type: number, label: {en: income, fr: revenu}}
orders:
  customer: Client
  order: Commande
  date: {column: Date, formats: ["%d/%m/%Y"]}
  quantity: Qty
  price: Prix
  channel: Canal
  channels: [web, magasin]
"""
CUSTOMERS = [["Client", "Region", "Income"], ["A", "north", "10"], ["B", "south", "20"], ["C", "north", "30"]]
ORDER_HEADER = ["Commande", "Client", "Date", "Qty", "Prix", "Canal"]
ORDER_LINES = [
    ["1", "A", "01/06/2024", "2", "10", "web"],  # A buys 20 on the web
    ["1", "A", "01/06/2024", "1", "5", "web"],  # and 5 more in the same order
    ["2", "A", "20/06/2024", "1", "30", "magasin"],  # a second order, in a shop
    ["C2", "A", "21/06/2024", "-1", "30", "magasin"],  # which is cancelled: netted
    ["3", "B", "10/01/2024", "4", "2,5", "web"],  # B: one order of 10, decimal comma
    ["3", "B", "10/01/2024", "4", "2,5", "web"],  # an exact copy: duplicate_line
    ["4", "", "10/01/2024", "1", "9", "web"],  # no customer
    ["5", "B", "45/13/2024", "1", "9", "web"],  # unreadable date
    ["6", "B", "10/02/2024", "1", "0", "web"],  # zero price
    ["7", "B", "10/02/2024", "x", "3", "web"],  # unreadable quantity
    ["8", "D", "30/06/2024", "1", "40", "web"],  # D is in the orders only; 30/06 is the last date
    ["9", "B", "30/06/2030", "1", "4", "web"],  # after the reference date
]
REASONS = {
    "duplicate_line": 1,
    "missing_customer_id": 1,
    "unparseable_date": 1,
    "non_positive_price": 1,
    "unparseable_quantity": 1,
    "date_out_of_range": 1,
}


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("orders_dbt")
    declaration = workdir / "shop.yml"
    declaration.write_text(DECLARATION, encoding="utf-8")
    customers = _write(workdir / "shop.csv", CUSTOMERS)
    orders = _write(workdir / "shop_orders.csv", [ORDER_HEADER, *ORDER_LINES])
    env = pipeline_env(workdir, DECLARATION=str(declaration), ORDERS=str(orders))
    loaded = run_cli(env, "ingest", str(customers), "--orders", str(orders))
    assert loaded.returncode == 0, loaded.stderr
    result = run_dbt(env, "build", "--exclude", "source:segmentation+", "--exclude-resource-type", "unit_test")
    assert result.returncode == 0, result.stdout[-3000:]
    return workdir / "warehouse.duckdb"


def test_order_line_rules_unit_test(built: Path) -> None:
    """The dbt unit test beside int_orders_validated (returns, duplicates, reasons on given rows)."""
    env = pipeline_env(
        built.parent, DECLARATION=str(built.parent / "shop.yml"), ORDERS=str(built.parent / "shop_orders.csv")
    )
    result = run_dbt(env, "test", "--select", "int_orders_validated,test_type:unit")
    assert result.returncode == 0 and "PASS=1" in result.stdout, result.stdout[-3000:]


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_order_line_is_accounted_for(built: Path) -> None:
    summary = dict(query(built, "select item, rows from marts.order_quality_summary where section = 'accounting'"))
    assert summary["lines_read"] == len(ORDER_LINES)
    assert summary["returns_netted"] == 1
    assert summary["lines_quarantined"] == sum(REASONS.values())
    assert summary["lines_kept"] + summary["returns_netted"] + summary["lines_quarantined"] == len(ORDER_LINES)
    reasons = dict(query(built, "select item, rows from marts.order_quality_summary where section = 'quarantine'"))
    assert reasons == REASONS


def test_returns_are_netted_and_behaviour_is_computed(built: Path) -> None:
    rows = query(
        built,
        "select customer_id, recency_days, frequency, monetary, average_order_value, return_rate, share_web "
        "from marts.customer_orders order by customer_id",
    )
    by_id = {row[0]: row[1:] for row in rows}
    assert set(by_id) == {"A", "B", "D"}
    recency, frequency, monetary, aov, return_rate, share_web = by_id["A"]
    assert (recency, frequency) == (10, 2)  # last purchase 20/06, reference date 30/06 (last order date)
    assert monetary == pytest.approx(20 + 5 + 30 - 30)
    assert aov == pytest.approx(25 / 2)
    assert return_rate == pytest.approx(30 / 55)
    assert share_web == pytest.approx(25 / 55)
    assert by_id["B"][2] == pytest.approx(10.0)  # the duplicate line is not counted twice
    detail = query(built, "select detail from marts.order_quality_summary where section = 'reference'")
    assert detail == [("2024-06-30",)]


def test_join_is_accounted_for_both_ways(built: Path) -> None:
    customers = dict(query(built, "select item, rows from marts.order_quality_summary where section = 'customers'"))
    assert customers == {"customers_with_orders": 3, "customers_without_orders": 1, "customers_in_orders_only": 1}
    features = dict(query(built, "select customer_id, frequency from marts.customer_features"))
    assert set(features) == {"A", "B", "C", "D"}
    assert features["C"] == 0  # C never ordered
    sql = "select region, records_merged from marts.customer_features where customer_id = 'D'"
    region, records = query(built, sql)[0]
    assert region == "north" and records == 0  # D's attributes imputed (most frequent region)
    recency = dict(query(built, "select customer_id, recency_days from marts.customer_features"))
    assert recency["C"] == max(recency[c] for c in "ABD")  # no order: as lapsed as the most lapsed buyer


def test_money_sums_do_not_depend_on_how_threads_split_the_lines(tmp_path: Path) -> None:
    """25,000 generated customers and their 345,000 order lines (three of DuckDB's row groups, the
    aggregate on four threads): customer_orders computed again and again is the same, bit for bit.
    Summed as doubles, the values moved in their last bits from one run to the next."""
    env = pipeline_env(tmp_path)
    customers, orders = tmp_path / "customers.csv", tmp_path / "orders.csv"
    generate(customers, rows=25_000, seed=42)
    write_orders(orders, 25_000, seed=42)
    loaded = run_cli(env, "ingest", str(customers), "--orders", str(orders))
    assert loaded.returncode == 0, loaded.stderr
    result = run_dbt(env, "run", "--select", "+customer_orders")
    assert result.returncode == 0, result.stdout[-3000:]
    compiled = next((tmp_path / "dbt_target" / "compiled").rglob("customer_orders.sql")).read_text(encoding="utf-8")
    sums = f"select sum(hash(gross_value)), sum(hash(returned_value)), sum(hash(monetary)) from ({compiled})"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.int_orders_validated").fetchone()[0] > 2 * 122_880
        con.execute("set threads = 4")
        stored = con.execute(sums.replace(f"({compiled})", "marts.customer_orders")).fetchall()
        assert {tuple(con.execute(sums).fetchall()) for _ in range(20)} == {tuple(stored)}
