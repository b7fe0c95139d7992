"""`make bench`, order lines: the order models at ten million lines, in DuckDB.

The default generator's customers (cached by the customer bench) get their order lines
(about fourteen per customer, with the generator's mess: cancellations, lines without a
customer, duplicates). Both files are loaded and the dbt project builds everything up to
the customer mart, so the order models run where they matter: validated, netted, and
joined to the attributes. Each step is its own process, timed with its peak memory.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from .bench import StepResult, run_measured, work_env

log = logging.getLogger(__name__)

LINES_PER_CUSTOMER = 14  # about what the default generator writes


@dataclass
class OrdersResult:
    customers: int
    lines: int = 0
    steps: list[StepResult] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(step.seconds for step in self.steps if not step.name.startswith("generate"))

    @property
    def peak(self) -> float:
        return max((step.peak_rss_gib for step in self.steps if not step.name.startswith("generate")), default=0.0)


def bench_orders(lines: int, root: Path, env_base: dict[str, str]) -> OrdersResult:
    """Generate (cached) about `lines` order lines and run ingest and the dbt build on them."""
    customers = max(1_000, lines // LINES_PER_CUSTOMER)
    python = sys.executable
    dbt = str(Path(python).parent / "dbt")
    data_dir = root / "data" / "bench"
    work = data_dir / f"orders_run_{customers}"
    data = data_dir / f"orders_customers_{customers}.parquet"
    orders = data_dir / f"orders_{customers}.parquet"
    result = OrdersResult(customers)
    declaration = str(root / "dbt_project" / "declarations" / "default.yml")
    env = work_env(root, work, env_base, DECLARATION=declaration)
    if not data.exists():
        command = [python, "-m", "segmentation", "generate", str(data), "--rows", str(customers)]
        result.steps.append(run_measured("generate customers", command, env, root))
    if not orders.exists():
        command = [python, "-m", "segmentation", "generate-orders", str(orders), "--rows", str(customers)]
        result.steps.append(run_measured("generate order lines", command, env, root))
    published = work / "warehouse.duckdb"
    building = work / ".build" / "warehouse.duckdb"
    published.unlink(missing_ok=True)
    steps = [
        ("begin", [python, "-m", "segmentation", "begin", str(published)]),
        ("ingest", [python, "-m", "segmentation", "ingest", str(data), "--orders", str(orders)]),
        ("dbt build", [dbt, "build", "--exclude", "source:segmentation+", "--exclude-resource-type", "unit_test"]),
    ]
    for name, command in steps:
        cwd = root / "dbt_project" if command[0] == dbt else root
        result.steps.append(run_measured(name, command, {**env, "SEGMENTATION_WAREHOUSE": str(building)}, cwd))
    with duckdb.connect(str(building), read_only=True) as con:
        result.lines = int(con.sql("select count(*) from raw.orders").fetchall()[0][0])
        result.ledger = {
            str(item): int(rows)
            for item, rows in con.sql("select item, rows from marts.order_quality_summary").fetchall()
            if isinstance(rows, int)
        }
    log.info("%s order lines of %s customers: %.1f s", f"{result.lines:,}", f"{customers:,}", result.total)
    return result


def orders_lines(result: OrdersResult | None) -> list[str]:
    """The order-lines table of bench.md."""
    if result is None:
        return []
    lines = [
        "",
        f"Order lines: {result.lines:,} lines of {result.customers:,} customers (the default generator's, "
        "with its cancellations, lines without a customer and duplicates), loaded with the customer table and "
        "built by dbt up to the customer mart (validation, netting of returns, behaviour, join):",
        "",
        "| step | seconds | peak RSS |",
        "|---|---:|---:|",
    ]
    lines += [f"| {step.name} | {step.seconds:.1f} s | {step.peak_rss_gib:.2f} GiB |" for step in result.steps]
    lines.append(f"| **order lines through the models** (without generation) | **{result.total:.1f} s** | "
                 f"**{result.peak:.2f} GiB** |")  # fmt: skip
    return lines
