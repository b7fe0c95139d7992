"""The CRM export: one row per kept customer, safe to open in a spreadsheet, streamed by DuckDB."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.errors import UserError
from segmentation.export import FORMULA_PREFIXES, _in_customer_order, neutralise, write_assignments

NAMES = {1: "Senior lawyers, high spenders", 2: "Jeunes profils variés, petits budgets", 3: '=HYPERLINK("x")'}


def warehouse_with(path: Path, customers: list[tuple[str, int]] | None = None, rows: int | None = None) -> Path:
    """A warehouse with marts.customer_segments, from explicit (id, segment) pairs or `rows` generated ones."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        if rows is not None:
            con.execute(
                "create table marts.customer_segments as select 'C' || lpad(i::varchar, 9, '0') as customer_id,"
                " (1 + i % 3)::integer as segment_id, 'run-1' as run_id, 40.0 as age from range(?) as t(i)",
                [rows],
            )
        else:
            con.execute(
                "create table marts.customer_segments (customer_id varchar, segment_id integer, run_id varchar)"
            )
            con.executemany("insert into marts.customer_segments values (?, ?, 'run-1')", customers or [])
    return path


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_one_row_per_customer_with_its_segment_and_persona(tmp_path):
    customers = [("A1", 2), ("A3", 1), ("A2", 1), ("B7", 3)]
    out = tmp_path / "output" / "segment_assignments.csv"
    assert write_assignments(warehouse_with(tmp_path / "w.duckdb", customers), out, NAMES) == 4
    rows = read(out)
    assert list(rows[0]) == ["customer_id", "segment_id", "persona_name"]
    assert [(r["customer_id"], int(r["segment_id"])) for r in rows] == sorted(customers)  # by customer id
    assert rows[1]["persona_name"] == "Senior lawyers, high spenders"
    assert rows[0]["persona_name"] == "Jeunes profils variés, petits budgets"  # accents, comma: quoted UTF-8
    assert rows[3]["persona_name"] == "'" + NAMES[3]  # a formula in a name is neutralised too


def test_cells_a_spreadsheet_would_evaluate_are_neutralised(tmp_path):
    hostile = ["=1+1", "+33 6 12", "-2", "@SUM(A1:A9)", "\tTAB", "\rCR", '=cmd|" /C calc"!A0']
    harmless = ["C-1", "plain", "a=b", " =spaced", 'say "hi", then\nleave']
    customers = [(value, 1) for value in hostile + harmless]
    out = tmp_path / "segment_assignments.csv"
    write_assignments(warehouse_with(tmp_path / "w.duckdb", customers), out, NAMES)
    ids = {r["customer_id"] for r in read(out)}
    assert ids == {"'" + v for v in hostile} | set(harmless)  # round-trips, except the added apostrophe
    raw = out.read_bytes().decode("utf-8-sig")  # not read_text: it would turn the CR cell into LF
    for value in ids:  # text cells are always quoted, embedded quotes doubled
        assert '"' + value.replace('"', '""') + '",1,"Senior lawyers, high spenders"' in raw, value


@settings(max_examples=12, deadline=None)
@given(values=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40, unique=True))
def test_the_sql_neutralises_exactly_like_the_documented_rule(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("prop") / "w.duckdb"
    values = [v.replace("\x00", "") or "x" for v in values]
    values = list(dict.fromkeys(values))
    out = path.parent / "out.csv"
    write_assignments(warehouse_with(path, [(v, 1) for v in values]), out, NAMES)
    exported = [r["customer_id"] for r in read(out)]
    assert sorted(exported) == sorted(neutralise(v) for v in values)
    for value in exported:
        assert not value.startswith(FORMULA_PREFIXES)


def test_spreadsheets_and_tools_read_it_as_utf8(tmp_path):
    out = tmp_path / "segment_assignments.csv"
    write_assignments(warehouse_with(tmp_path / "w.duckdb", [("é1", 2)]), out, NAMES)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == ["customer_id", "segment_id", "persona_name"]
    assert frame.iloc[0].tolist() == ["é1", "2", NAMES[2]]
    with duckdb.connect() as con:
        assert con.execute("select * from read_csv(?)", [str(out)]).fetchall() == [("é1", 2, NAMES[2])]


def test_a_failed_export_keeps_the_previous_file(tmp_path):
    out = tmp_path / "segment_assignments.csv"
    out.write_text("previous export")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(UserError, match="customer_segments is not in the warehouse"):
        write_assignments(empty, out, NAMES)
    assert out.read_text() == "previous export"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_large_exports_stream_without_python_objects(tmp_path):
    """500,000 customers: Python's own allocations stay tiny, DuckDB streams the rows to disk."""
    rows = 500_000
    warehouse = warehouse_with(tmp_path / "w.duckdb", rows=rows)
    out = tmp_path / "segment_assignments.csv"
    tracemalloc.start()
    try:
        assert write_assignments(warehouse, out, NAMES) == rows
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000  # bytes; the file itself is ~20 MB
    with out.open(encoding="utf-8-sig") as handle:
        assert sum(1 for _ in handle) == rows + 1


def with_assignments(path: Path, customers: list[tuple[str, int]], run: str = "run-1") -> Path:
    """Add the segment step's table, in the given storage order."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema segmentation")
        con.execute(
            "create table segmentation.segment_assignments (customer_id varchar, segment_id integer, run_id varchar)"
        )
        con.executemany("insert into segmentation.segment_assignments values (?, ?, ?)", [(*c, run) for c in customers])
    return path


CUSTOMERS = [("B7", 3), ("=2+3", 1), ("A3", 1), ("-A2", 2), ("A1", 2), ("é9", 4), ("\tT", 1)]


def test_assignments_stored_by_customer_are_streamed_as_they_are_to_the_same_file(tmp_path):
    sorted_only = warehouse_with(tmp_path / "sorted_only.duckdb", CUSTOMERS)
    expected = tmp_path / "expected.csv"
    assert write_assignments(sorted_only, expected, NAMES) == len(CUSTOMERS)  # sorted by DuckDB
    both = with_assignments(warehouse_with(tmp_path / "both.duckdb", CUSTOMERS), sorted(CUSTOMERS))
    with duckdb.connect(str(both), read_only=True) as con:
        assert _in_customer_order(con)
    streamed = tmp_path / "streamed.csv"
    assert write_assignments(both, streamed, NAMES) == len(CUSTOMERS)
    assert streamed.read_bytes() == expected.read_bytes()
    quoted = {**NAMES, 4: "Clients d'hier, \"fidèles\"; -- '); drop table x"}  # quotes reach SQL as literals
    write_assignments(both, streamed, quoted)
    assert {r["persona_name"] for r in read(streamed)} == {neutralise(name) for name in quoted.values()}
    assert [r["customer_id"] for r in read(streamed)][:2] == ["'\tT", "'-A2"]  # by id, neutralised


@pytest.mark.parametrize(
    ("stored", "run"),
    [
        (list(reversed(sorted(CUSTOMERS))), "run-1"),  # not in customer order
        (sorted([*CUSTOMERS, ("Z0", 1)]), "run-1"),  # a customer customer_segments does not have
        (sorted([*CUSTOMERS, ("A1", 2)]), "run-1"),  # a customer twice
        (sorted(CUSTOMERS), "run-2"),  # another run's (customer_segments not rebuilt since)
    ],
    ids=["unordered", "extra", "duplicate", "other-run"],
)
def test_otherwise_the_export_sorts_customer_segments(tmp_path, stored, run):
    expected = tmp_path / "expected.csv"
    write_assignments(warehouse_with(tmp_path / "only.duckdb", CUSTOMERS), expected, NAMES)
    both = with_assignments(warehouse_with(tmp_path / "both.duckdb", CUSTOMERS), stored, run)
    with duckdb.connect(str(both), read_only=True) as con:
        assert not _in_customer_order(con)
    out = tmp_path / "out.csv"
    assert write_assignments(both, out, NAMES) == len(CUSTOMERS)
    assert out.read_bytes() == expected.read_bytes()
