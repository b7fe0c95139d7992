"""Loading the raw file and writing results, on real DuckDB files."""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from segmentation.declaration import load_declaration
from segmentation.dialect import CsvOptions, parse_encoding, parse_separator
from segmentation.errors import UserError
from segmentation.ingest import load_raw_file
from segmentation.warehouse import connect, write_results

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = load_declaration(ROOT / "dbt_project" / "declarations" / "default.yml").file_columns(required=True)
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
        write_results(
            con,
            {"segment_assignments": pa.table({"customer_id": ["a"], "segment_id": [1]})},
            {"segmentation_runs": pa.table({"run_id": ["r1"], "k": [1]})},
        )
        bad = pa.table({"customer_id": ["b"], "segment_id": [2]})
        with pytest.raises(duckdb.Error):
            # the history table of the transaction cannot take the new row (text into an integer column)
            write_results(
                con, {"segment_assignments": bad}, {"segmentation_runs": pa.table({"run_id": ["r2"], "k": ["two"]})}
            )
        assert con.sql("select * from segmentation.segment_assignments").fetchall() == [("a", 1)]
        assert con.sql("select run_id from segmentation.segmentation_runs").fetchall() == [("r1",)]


# --- CSV dialects: what French and spreadsheet exports really look like -----------------------

FRENCH_ROWS = [
    ["1", "Femme", "Oui", "45,0", "Non", "Médecin", "1,5", "Élevé", "2,0", "Cat_6"],
    ["2", "Homme", "N/A", "30", "Non", 'Artiste "peintre"\nà Paris', "", "Faible", "NA", "Cat_1"],
    ["3", "F", "Y", "52", "1", "Lawyer", "0", "moyen", "3", "Cat_2"],
]


def _french(separator: str = ";", newline: str = "\r\n") -> str:
    def field(value: str) -> str:
        needs_quotes = any(c in value for c in (separator, '"', "\n", "\r"))
        return '"' + value.replace('"', '""') + '"' if needs_quotes else value

    lines = [separator.join(REQUIRED)] + [separator.join(field(v) for v in row) for row in FRENCH_ROWS]
    return newline.join(lines) + newline


def _load(tmp_path: Path, name: str, data: bytes, options: CsvOptions | None = None):
    path = tmp_path / name
    path.write_bytes(data)
    with connect(tmp_path / "w.duckdb") as con:
        summary = load_raw_file(con, path, REQUIRED, options or CsvOptions())
        rows = con.sql("select * exclude (source_row_number) from raw.customers order by source_row_number").fetchall()
        rejected = con.sql("select source_line_number, source_line from raw.customers_rejected").fetchall()
    return summary, rows, rejected


EXPECTED_FRENCH = [tuple(row) for row in FRENCH_ROWS]


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("cp1252.csv", lambda text: text.encode("cp1252")),
        ("utf8.csv", lambda text: text.encode("utf-8")),
        ("bom.csv", lambda text: b"\xef\xbb\xbf" + text.encode("utf-8")),
        ("utf16.csv", lambda text: text.encode("utf-16")),
        ("excel_sep_line.csv", lambda text: ("sep=;\r\n" + text).encode("cp1252")),
        ("title_line.csv", lambda text: ("Export clients du 12/03/2024\n\n" + text).encode("utf-8")),
        ("mixed_newlines.csv", lambda text: text.replace("\r\n", "\n", 2).encode("utf-8")),
        ("export.csv.gz", lambda text: gzip.compress(text.encode("cp1252"))),
    ],
)
def test_french_exports_load_exactly(tmp_path: Path, name: str, encode) -> None:
    summary, rows, rejected = _load(tmp_path, name, encode(_french()))
    assert summary.separator == ";" and rejected == []
    assert [tuple(v.replace("\r\n", "\n") if v else v for v in row) for row in rows] == [
        tuple(v or None for v in row) for row in EXPECTED_FRENCH
    ]


@pytest.mark.parametrize(("separator", "name"), [(",", "comma"), ("\t", "tab"), ("|", "pipe")])
def test_every_usual_separator_is_detected(tmp_path: Path, separator: str, name: str) -> None:
    summary, rows, _ = _load(tmp_path, f"{name}.csv", _french(separator, "\n").encode("utf-8"))
    assert summary.separator == separator
    assert rows[0][3] == "45,0" and rows[1][5] == 'Artiste "peintre"\nà Paris'


def test_overrides_are_used_and_checked(tmp_path: Path) -> None:
    data = _french().encode("cp1252")
    summary, rows, _ = _load(tmp_path, "forced.csv", data, CsvOptions(separator=";", encoding="latin-1"))
    assert summary.encoding == "latin-1" and rows[0][5] == "Médecin"
    with pytest.raises(UserError, match=r"set CSV_SEP"):
        _load(tmp_path, "wrong_sep.csv", data, CsvOptions(separator=","))
    with pytest.raises(UserError, match=r"is not valid utf-8 .*CSV_ENCODING"):
        _load(tmp_path, "wrong_enc.csv", data, CsvOptions(encoding="utf-8"))
    assert parse_separator("tab") == "\t" and parse_separator("semicolon") == ";" and parse_separator("") is None
    assert parse_encoding("Windows-1252") == "cp1252"
    for bad_separator in ("::", '"'):
        with pytest.raises(UserError, match="CSV_SEP"):
            parse_separator(bad_separator)
    with pytest.raises(UserError, match="CSV_ENCODING"):
        parse_encoding("klingon")


def test_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSV_SEP", "pipe")
    monkeypatch.setenv("CSV_ENCODING", "latin1")
    assert CsvOptions.from_environment() == CsvOptions(separator="|", encoding="iso8859-1")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("colon.csv", HEADER.replace(",", ":") + "\n" + ROW.replace(",", ":") + "\n", r"one single column.*CSV_SEP"),
        (
            "decimal_comma.csv",
            HEADER + "\n" + "\n".join(f"{i},Male,Yes,40,Yes,Artist,1,5,Low,2,0,Cat_6" for i in range(5)) + "\n",
            r"header has 10 fields but 5 of the first 5 rows do not \(line 2 has 12\).*quoted",
        ),
        ("ambiguous.csv", "ID;Gender,Age\n1;M,4\n", r"cannot tell the separator.*CSV_SEP"),
        ("duplicate.csv", HEADER + ",AGE \n" + ROW + ",41\n", r"several columns for Age \('Age' and 'AGE'"),
        (
            "unterminated.csv",
            HEADER + "\n" + ROW + "\n" + ROW.replace("Artist", '"Artist') + "\n" + "\n".join([ROW] * 3) + "\n",
            r"never closed|do not",
        ),
        ("blank.csv", "\n\n   \n", "only blank lines"),
        ("zip.csv", b"PK\x03\x04" + bytes(200), "Excel workbook"),
        ("pdf.csv", b"%PDF-1.7\n" + bytes(range(256)), "PDF document"),
        ("nul.csv", bytes(range(256)) * 20, "binary data"),
        ("utf16_no_bom.csv", (HEADER + "\n" + ROW + "\n").encode("utf-16-le"), "UTF-16"),
        ("text.parquet", HEADER + "\n" + ROW + "\n", "not a Parquet file"),
        (
            "cut.csv.gz",
            gzip.compress(((HEADER + "\n" + ROW + "\n") * 50).encode())[:60],
            "cannot decompress .* damaged",
        ),
        (
            "mixed_encodings.csv",
            (HEADER + "\n" + ROW.replace("Artist", "Médecin") + "\n").encode()
            + ROW.replace("Artist", "M\xe9decin").encode("cp1252"),
            "mixes text encodings",
        ),
        ("data.json", '{"ID": 1}', "neither CSV nor Parquet"),
    ],
)
def test_files_that_cannot_be_read_get_one_clear_message(tmp_path: Path, name: str, data, message: str) -> None:
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    with pytest.raises(UserError, match=message):
        _load(tmp_path, name, raw)


def test_rows_that_do_not_fit_the_header_are_kept_apart_not_dropped(tmp_path: Path) -> None:
    lines = [HEADER, ROW, "2,Male,Yes", ROW.replace("1,", "3,", 1) + ",surplus", ROW.replace("1,", "4,", 1)]
    summary, rows, rejected = _load(tmp_path, "ragged.csv", ("\n".join(lines) + "\n").encode())
    assert summary.rows == 2 and summary.rejected_rows == 2
    assert [row[0] for row in rows] == ["1", "4"]
    assert rejected == [(3, "2,Male,Yes"), (4, lines[3])]
    with connect(tmp_path / "w.duckdb") as con:
        numbers = con.sql(
            "select source_row_number from raw.customers union all select source_row_number from raw.customers_rejected"
        ).fetchall()
    assert sorted(n for (n,) in numbers) == [1, 2, 3, 4]


def test_all_rows_malformed_is_an_error_not_an_empty_load(tmp_path: Path) -> None:
    lines = [HEADER, *(f"{i},Male" for i in range(2)), ROW]
    with pytest.raises(UserError, match=r"3 rows do not|do not"):
        _load(tmp_path, "short.csv", ("\n".join(lines) + "\n").encode())


def test_parquet_under_a_csv_name_is_read_as_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "export.csv"
    pq.write_table(pa.table({name: ["1"] for name in REQUIRED}), path)
    with connect(tmp_path / "w.duckdb") as con:
        assert load_raw_file(con, path, REQUIRED).file_format == "parquet"


def test_hostile_column_names_are_kept_as_data(tmp_path: Path) -> None:
    hostile = ['<img src="http://127.0.0.1:1/x.png">', 'it\'s "quoted"', "{{ 7*7 }}", "source_row_number", ""]
    header = HEADER + "," + ",".join('"' + h.replace('"', '""') + '"' for h in hostile)
    summary, rows, _ = _load(tmp_path, "hostile.csv", (header + "\n" + ROW + ",a,b,c,d,e\n").encode())
    assert summary.extra_columns == (*hostile[:3], "source_row_number_2", "column_15")
    assert rows[0][10:] == ("a", "b", "c", "d", "e")
    with connect(tmp_path / "w.duckdb") as con:
        columns = con.sql("select column_name, loaded_as, required_column from raw.load_columns order by 1").fetchall()
    assert ("{{ 7*7 }}", "{{ 7*7 }}", None) in columns and ("ID", "ID", "ID") in columns


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = _write(tmp_path / "secret.csv", f"{HEADER}\n{ROW}\n")
    path.chmod(0)
    with pytest.raises(UserError, match="cannot open the input file"), connect(tmp_path / "w.duckdb") as con:
        load_raw_file(con, path, REQUIRED)


def test_a_killed_load_leaves_nothing_the_next_one_trips_on(tmp_path: Path) -> None:
    stale = tmp_path / ".w.duckdb.ingest-killed"
    stale.mkdir()
    (stale / "input.utf8.csv").write_text("half a file", encoding="utf-8")
    summary, rows, _ = _load(tmp_path, "latin.csv", _french().encode("cp1252"))
    assert summary.encoding == "cp1252" and len(rows) == 3
    assert [p.name for p in tmp_path.iterdir() if ".ingest-" in p.name] == []
