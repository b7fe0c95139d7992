"""A catalogue of bad input files, each a real `make all DATA=…` on a published warehouse.

Every file ends in either a correct report or one clear message (`error: …` on one line,
non-zero exit, no traceback), and the previously published results stay intact. The
failing cases each run on their own copy of one baseline warehouse, two at a time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, make_command, pipeline_env

from segmentation.generate import COLUMNS as RAW_COLUMNS
from segmentation.generate import generate

pytestmark = pytest.mark.slow

COLUMNS = list(RAW_COLUMNS)
GOOD = ["1", "Male", "Yes", "40", "Yes", "Artist", "1", "Low", "2", "Cat_6"]
HEADER = ",".join(COLUMNS)
# fast settings for the clustering step (read from the environment, see config.py)
FAST = {"K": "3", "K_MAX": "3", "WEIGHTING": "none"}
HAS_QUALITY_STEP = "check-quality" in (ROOT / "Makefile").read_text(encoding="utf-8")


def make_all(workdir: Path, data: Path, **env: str) -> subprocess.CompletedProcess:
    """`make all` as a user runs it, every path under `workdir`."""
    return subprocess.run(
        make_command(workdir, "all", DATA=str(data)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir, **{**FAST, **env}),
        timeout=600,
    )


@dataclass(frozen=True)
class Published:
    run_id: str
    runs: int
    customers: int
    report_sha256: str


def published_state(workdir: Path) -> Published:
    """What a user sees: the published warehouse (it must open) and the report."""
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        run_ids = con.sql("select distinct run_id from segmentation.segment_assignments").fetchall()
        runs = con.sql("select count(*) from segmentation.segmentation_runs").fetchall()[0][0]
        customers = con.sql("select count(*) from marts.customer_segments").fetchall()[0][0]
    assert len(run_ids) == 1
    report = (workdir / "output" / "segment_report.pdf").read_bytes()
    return Published(run_ids[0][0], runs, customers, hashlib.sha256(report).hexdigest())


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


# --- the bad files ------------------------------------------------------------------------------


def _text(name: str, text: str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    return write


def _rows(*rows: list[str], header: str = HEADER, separator: str = ",") -> str:
    return "\n".join([header, *(separator.join(row) for row in rows)]) + "\n"


def _customers(count: int, **changes: str) -> list[list[str]]:
    rows = []
    for n in range(1, count + 1):
        row = dict(zip(COLUMNS, GOOD, strict=True))
        row.update(ID=str(n), Age=str(20 + n % 50), Work_Experience=str(n % 9), Family_Size=str(1 + n % 6))
        row.update(Profession=["Artist", "Doctor", "Engineer", "Lawyer"][n % 4], Spending_Score=["Low", "High"][n % 2])
        row.update(changes)
        rows.append([row[c] for c in COLUMNS])
    return rows


def _missing(name: str) -> Callable[[Path], Path]:
    return lambda directory: directory / name


def _directory(directory: Path) -> Path:
    path = directory / "a_directory.csv"
    path.mkdir()
    return path


def _workbook(directory: Path) -> Path:
    path = directory / "customers.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return path


def _parquet(name: str, table: dict[str, list[str]]) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / name
        pq.write_table(pa.table(table), path)
        return path

    return write


def _unterminated(directory: Path) -> Path:
    rows = _customers(30)
    rows[3][5] = '"Artist'  # a quote opened and never closed: the rest of the file would be one value
    return _text("unterminated.csv", _rows(*rows))(directory)


@dataclass(frozen=True)
class BadFile:
    name: str
    write: Callable[[Path], Path]
    message: str  # regular expression the one `error:` line must match
    env: dict[str, str] = field(default_factory=dict)
    needs_quality_step: bool = False


BAD_FILES = [
    BadFile("missing file", _missing("nowhere.csv"), r"nowhere\.csv does not exist: check the path"),
    BadFile("a directory", _directory, r"is not a file"),
    BadFile("0-byte file", _bytes("empty.csv", b""), r"is empty \(0 bytes\)"),
    BadFile("header only", _text("header.csv", HEADER + "\n"), r"has a header but no rows"),
    BadFile("blank lines only", _text("blank.csv", "\n \n\n"), r"only blank lines"),
    BadFile(
        "missing columns",
        _text("columns.csv", _rows(["1", "Male", "Yes"], header="ID,Gender,Ever_Married")),
        r"lacks required column\(s\) Age, Graduated, Profession, Work_Experience, Spending_Score, Family_Size, Var_1",
    ),
    BadFile(
        "a required column twice",
        _text("twice.csv", _rows([*GOOD, "41"], header=HEADER + ",AGE")),
        r"several columns for Age \('Age' and 'AGE'",
    ),
    BadFile("spreadsheet suffix", _text("customers.xlsx", _rows(GOOD)), r"neither CSV nor Parquet \(suffix '\.xlsx'\)"),
    BadFile("workbook named .csv", _workbook, r"Excel workbook.*save the sheet as CSV"),
    BadFile("text named .parquet", _text("customers.parquet", _rows(GOOD)), r"not a Parquet file"),
    BadFile("corrupt Parquet", _bytes("broken.parquet", b"PAR1" + os.urandom(300)), r"cannot read .* as PARQUET"),
    BadFile(
        "Parquet without the columns",
        _parquet("few.parquet", {"ID": ["1"], "Gender": ["Male"]}),
        r"lacks required column\(s\) Ever_Married",
    ),
    BadFile("binary file", _bytes("binary.csv", bytes(range(256)) * 64), r"binary data"),
    BadFile(
        "unknown separator",
        _text("colon.csv", _rows(GOOD, header=HEADER.replace(",", ":"), separator=":")),
        r"read as one single column.*set CSV_SEP",
    ),
    BadFile(
        "unquoted decimal commas",
        _text("commas.csv", "\n".join([HEADER, *(f"{i},Male,Yes,40,Yes,Artist,1,5,Low,2,0,Cat_6" for i in range(9))])),
        r"header has 10 fields but 9 of the first 9 rows do not.*must be quoted",
    ),
    BadFile("unterminated quote", _unterminated, r"never closed|rows do not"),
    BadFile(
        "every row too short",
        _text("short.csv", "\n".join([HEADER, *(f"{i},Male,Yes" for i in range(8))])),
        r"rows do not",
    ),
    BadFile(
        "wrong CSV_SEP",
        _text("semicolons.csv", _rows(*_customers(3), header=HEADER.replace(",", ";"), separator=";")),
        r"lacks required column",
        env={"CSV_SEP": ","},
    ),
    BadFile(
        "CSV_SEP not one character", _text("ok.csv", _rows(GOOD)), r"CSV_SEP='::' is not a single", {"CSV_SEP": "::"}
    ),
    BadFile(
        "wrong CSV_ENCODING",
        _text("latin.csv", _rows(*_customers(3, Profession="Médecin")), encoding="cp1252"),
        r"is not valid utf-8",
        env={"CSV_ENCODING": "utf-8"},
    ),
    BadFile(
        "fewer customers than K",
        _text("three.csv", _rows(*_customers(3))),
        r"K=5 cannot be used with 3 usable customers",
        env={"K": "5", "K_MAX": "10"},
    ),
    BadFile(
        "three customers",
        _text("three_customers.csv", _rows(*_customers(3))),
        r"only 3 usable customers: too few to segment \(at least 40, 20 per segment for k=2\).*MIN_SEGMENT_CUSTOMERS",
        env={"K": "", "K_MAX": "10"},
    ),
    BadFile(
        "two customers",
        _text("two.csv", _rows(*_customers(2))),
        r"only 2 usable customers",
        env={"K": "", "K_MAX": "10"},
    ),
    BadFile(
        "nothing to cluster",
        _text(
            "constant.csv",
            _rows(
                *_customers(
                    40, Age="40", Work_Experience="1", Family_Size="2", Spending_Score="Low", Profession="Artist"
                )
            ),
        ),
        r"nothing to cluster",
    ),
    BadFile(
        "mostly quarantined (probably the wrong file)",
        _text("wrong_file.csv", _rows(*_customers(40), *_customers(60, Profession="Astronaut"))),
        r"were quarantined \(\d+(\.\d)? %\).*MAX_QUARANTINE_SHARE.*top reasons: unknown_profession",
        needs_quality_step=True,
    ),
]


# --- runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("baseline")
    generate(workdir / "customers.csv", rows=400, seed=11)
    result = make_all(workdir, workdir / "customers.csv")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def _copy_of(baseline: Path, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("warehouse.duckdb", "output", "dbt_target", "models"):
        source = baseline / name
        if source.is_dir():
            shutil.copytree(source, workdir / name)
        elif source.exists():
            shutil.copy2(source, workdir / name)
    return workdir


@dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: Published
    after: Published


@pytest.fixture(scope="module")
def outcomes(baseline: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    def run(case: BadFile) -> Outcome:
        workdir = _copy_of(baseline, tmp_path_factory.mktemp("bad"))
        inputs = workdir / "inputs"
        inputs.mkdir()
        before = published_state(workdir)
        result = make_all(workdir, case.write(inputs), **case.env)
        return Outcome(result, before, published_state(workdir))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((c.name for c in BAD_FILES), pool.map(run, BAD_FILES), strict=True))


@pytest.mark.parametrize("case", BAD_FILES, ids=[c.name for c in BAD_FILES])
def test_bad_file_gets_one_clear_message_and_keeps_the_results(case: BadFile, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    result = outcome.result
    if case.needs_quality_step and not HAS_QUALITY_STEP:
        pytest.xfail("the Makefile has no check-quality step yet (patch sent to the lead)")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr[-2000:]
    assert re.search(case.message, errors[0]), errors[0]
    assert outcome.after == outcome.before  # the published warehouse and report are untouched


# --- a messy but valid export: a correct report, every row accounted for -------------------------

YES = ["Oui", "Y", "1", "TRUE", "yes", "VRAI"]
NO = ["Non", "N", "0", "FALSE", "no", "faux"]
FRENCH = {"Male": "Homme", "Female": "Femme", "Low": "Faible", "Average": "Moyen", "High": "Élevé"}
TAGGED = {  # rows written with a known problem, and the reason they must be quarantined for
    "Q-AGE": ("Age", "300", "age_out_of_range"),
    "Q-NUM": ("Age", "quarante", "unparseable_age"),
    "Q-EXP": ("Work_Experience", "-2", "work_experience_out_of_range"),
    "Q-FAM": ("Family_Size", "0", "family_size_out_of_range"),
    "Q-CAT": ("Profession", "Astronaute", "unknown_profession"),
    "Q-YN": ("Graduated", "peut-être", "unparseable_has_degree"),
}


def _french_export(source: Path, target: Path) -> dict[str, int]:
    """A French CRM export of the generated customers: `;`, decimal comma, Windows-1252, CRLF,
    yes/no and missing values spelled every way, a multi-line comment column, spreadsheet
    leftovers (lines of separators), a few broken lines and rows tagged with known problems."""
    rng = random.Random(5)
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([*COLUMNS, "Commentaire"])
    for index, row in enumerate(rows):
        values = []
        for column in COLUMNS:
            value = row[column]
            if value == "":
                value = rng.choice(["", "NA", "N/A", "n.a."])
            elif column in ("Ever_Married", "Graduated"):
                value = rng.choice(YES if value == "Yes" else NO if value == "No" else [value])
            elif column in ("Gender", "Spending_Score"):
                value = FRENCH.get(value, value)
            elif column in ("Age", "Work_Experience", "Family_Size"):
                value = value.replace(".", ",")
            values.append(value)
        writer.writerow([*values, f"client n°{index}\nrappeler le lundi" if index % 7 == 0 else ""])
    for customer_id, (column, value, _) in TAGGED.items():
        tagged = dict(
            zip(COLUMNS, ["", "Femme", "Oui", "45", "Non", "Doctor", "2", "Faible", "3", "Cat_4"], strict=True)
        )
        tagged.update({"ID": customer_id, column: value})
        writer.writerow([*(tagged[c] for c in COLUMNS), "ligne repérée"])
    text = out.getvalue() + ";" * 10 + "\r\n" + ";" * 10 + "\r\n" + "Z-1;Homme;Oui\r\n" + "Z-2;" * 14 + "\r\n"
    target.write_bytes(text.encode("cp1252"))
    return {"parsed": len(rows) + len(TAGGED) + 2, "malformed": 2}


def test_a_messy_french_export_gives_a_correct_report(baseline: Path, tmp_path: Path) -> None:
    workdir = _copy_of(baseline, tmp_path / "messy")
    before = published_state(workdir)
    counts = _french_export(baseline / "customers.csv", workdir / "export clients.csv")
    result = make_all(workdir, workdir / "export clients.csv")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    after = published_state(workdir)
    assert after.run_id != before.run_id and after.report_sha256 != before.report_sha256

    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        ledger = dict(
            con.sql("select item, rows from marts.data_quality_summary where section = 'accounting'").fetchall()
        )
        reasons = dict(
            con.sql(
                "select source_customer_id, quarantine_reason from marts.customer_quarantine "
                "where source_customer_id like 'Q-%'"
            ).fetchall()
        )
        by_reason = dict(
            con.sql("select item, rows from marts.data_quality_summary where section = 'quarantine'").fetchall()
        )
        metadata = con.sql("select encoding, separator, rows_rejected from raw.load_metadata").fetchall()
        comment = con.sql(
            "select is_required, values_present from marts.data_quality_columns where column_name = 'Commentaire'"
        ).fetchall()
        multi_line = con.sql(
            "select count(*) from raw.customers where Commentaire like '%' || chr(10) || 'rappeler%'"
        ).fetchall()
    read = counts["parsed"] + counts["malformed"]
    assert ledger["rows_read"] == read
    assert ledger["customers_kept"] + ledger["duplicate_records_merged"] + ledger["rows_quarantined"] == read
    assert reasons == {customer_id: reason for customer_id, (_, _, reason) in TAGGED.items()}
    assert by_reason["malformed_row"] == 2 and by_reason["empty_row"] == 2
    assert metadata == [("cp1252", ";", 2)]
    assert comment[0][0] is False and comment[0][1] > 0 and multi_line[0][0] > 0
    # every French spelling was understood: beyond the rows added here, the outcome is the baseline's
    with duckdb.connect(str(baseline / "warehouse.duckdb"), read_only=True) as con:
        original = dict(
            con.sql("select item, rows from marts.data_quality_summary where section = 'accounting'").fetchall()
        )
    assert ledger["customers_kept"] == original["customers_kept"]
    assert ledger["duplicate_records_merged"] == original["duplicate_records_merged"]
    assert ledger["rows_quarantined"] == original["rows_quarantined"] + len(TAGGED) + 4
