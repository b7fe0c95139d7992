"""Loading the raw file and writing results, on real DuckDB files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from segmentation.contract import required_source_columns
from segmentation.errors import UserError
from segmentation.ingest import load_raw_file
from segmentation.warehouse import connect, write_results

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = required_source_columns(ROOT / "dbt_project")
HEADER = ",".join(REQUIRED)
ROW = "1,Male,Yes,40,Yes,Artist,1.0,Low,2.0,Cat_6"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_required_columns_come_from_the_source_yaml() -> None:
    assert REQUIRED[0] == "ID" and "Spending_Score" in REQUIRED and len(REQUIRED) == 10


def test_csv_is_loaded_as_text_in_file_order(tmp_path: Path) -> None:
    lines = [
        HEADER.lower().replace("spending_score", " Spending Score "),
        *(f"{i},Male,Yes,0{i}" + ROW[13:] for i in range(1, 6)),
    ]
    source = _write(tmp_path / "in.csv", "\n".join(lines) + "\n")
    with connect(tmp_path / "w.duckdb") as con:
        summary = load_raw_file(con, source, REQUIRED)
        rows = con.sql('select source_row_number, "ID", "Age" from raw.customers order by 1').fetchall()
        types = {row[0]: row[1] for row in con.sql("describe raw.customers").fetchall()}
    assert summary.rows == 5
    assert rows[0] == (1, "1", "01") and rows[-1] == (5, "5", "05")  # text kept as written
    assert types["Spending_Score"] == "VARCHAR"


def test_parquet_and_extra_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    columns = {name: [str(i) for i in range(3)] for name in REQUIRED}
    columns["Loyalty_Card"] = ["a", "b", "c"]
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), source)
    with connect(tmp_path / "w.duckdb") as con:
        summary = load_raw_file(con, source, REQUIRED)
        numbers = con.sql("select source_row_number from raw.customers order by 1").fetchall()
    assert summary.extra_columns == ("Loyalty_Card",)
    assert [n for (n,) in numbers] == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "does not exist"),
        ("empty.csv", "", "is empty"),
        ("header.csv", HEADER + "\n", "header but no rows"),
        ("columns.csv", "ID,Gender\n1,Male\n", "lacks required column(s) Ever_Married, Age"),
        ("data.xlsx", "whatever", "neither CSV nor Parquet"),
    ],
)
def test_bad_inputs_get_one_clear_message_and_keep_previous_data(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    good = _write(tmp_path / "good.csv", f"{HEADER}\n{ROW}\n")
    with connect(tmp_path / "w.duckdb") as con:
        load_raw_file(con, good, REQUIRED)
        path = tmp_path / name
        if content is not None:
            path.write_text(content, encoding="utf-8")
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_raw_file(con, path, REQUIRED)
        assert con.sql("select count(*) from raw.customers").fetchall() == [(1,)]


def test_cli_reports_user_errors_without_traceback(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT / "python"), "SEGMENTATION_WAREHOUSE": str(tmp_path / "w.duckdb"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "segmentation", "ingest", str(tmp_path / "nope.csv")],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: input file") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_locked_warehouse_is_reported_clearly(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(UserError, match="in use by another run"), connect(warehouse):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_failed_write_leaves_previous_results_whole(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb") as con:
        write_results(con, {"segment_assignments": pa.table({"customer_id": ["a"], "segment_id": [1]})}, {})
        bad = pa.table({"customer_id": ["b"], "segment_id": [2]})
        with pytest.raises(duckdb.Error):
            # the second table of the transaction cannot be appended (its columns do not match)
            write_results(
                con,
                {"segment_assignments": bad},
                {"segment_assignments_history": pa.table({"x": [1]}), "segment_assignments": pa.table({"y": [1]})},
            )
        assert con.sql("select * from segmentation.segment_assignments").fetchall() == [("a", 1)]
