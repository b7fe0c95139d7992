"""The dbt models on a small crafted export: cleaning, quarantine, dedup, imputation, accounting.

One real `dbt build` (module fixture) on a real DuckDB file, then assertions on its tables.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import pipeline_env, run_cli, run_dbt

from segmentation.errors import UserError
from segmentation.generate import COLUMNS as RAW_COLUMNS
from segmentation.quality import check_quality, max_quarantine_share_from_environment, parse_share

pytestmark = pytest.mark.slow

HEADER = list(RAW_COLUMNS)
ROWS = [
    # ordinary customers
    ["1", "Male", "Yes", "47", "Yes", "Engineer", "3.0", "Average", "3.0", "Cat_6"],
    # the same customer exported twice: the later record is older; its missing profession is filled
    ["2", "Female", "No", "30", "Yes", "Doctor", "2.0", "Low", "4.0", "Cat_6"],
    ["2", "Female", "Yes", "33", "Yes", "", "5.0", "Average", "4.0", "Cat_6"],
    # cleaning: whitespace, case, French yes/no, decimal comma, NA spellings
    ["7", "  female ", "oui", "45,0", "NON", " lawyer ", "N/A", "HIGH", "2,0", "cat_4"],
    # rows that cannot be used
    ["3", "Male", "Yes", "200", "Yes", "Lawyer", "1.0", "High", "2.0", "Cat_6"],
    ["4", "Male", "Yes", "50", "Yes", "Lawyer", "-1.0", "High", "2.0", "Cat_6"],
    ["5", "Male", "Yes", "50", "Yes", "Astronaut", "1.0", "High", "2.0", "Cat_6"],
    ["", "Male", "Yes", "50", "Yes", "Lawyer", "1.0", "High", "2.0", "Cat_6"],
    ["6", "Male", "Yes", "abc", "Yes", "Lawyer", "1.0", "High", "2.0", "Cat_6"],
    ["8", "Male", "Yes", "50", "Yes", "Lawyer", "1.0", "High", "0", "Cat_6"],
    ["9", "Male", "maybe", "50", "Yes", "Lawyer", "1.0", "High", "2.0", "Cat_6"],
    # a usable row whose own work experience is missing: imputed
    ["10", "Male", "No", "25", "No", "Healthcare", "", "Low", "5.0", "Cat_3"],
    ["11", "Male", "No", "26", "No", "Healthcare", "1.0", "Low", "5.0", ""],
    # a spreadsheet's leftover line of separators only
    ["", "", "", "", "", "", "", "", "", ""],
]
# a record that cannot be split into the header's fields, written as is after the rows above
MALFORMED_LINE = "12,Male,Yes"
EXPECTED_REASONS = {
    5: "age_out_of_range",
    6: "work_experience_out_of_range",
    7: "unknown_profession",
    8: "missing_customer_id",
    9: "unparseable_age",
    10: "family_size_out_of_range",
    11: "unparseable_is_married",
    14: "empty_row",
    15: "malformed_row",
}
READ = len(ROWS) + 1


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("dbt")
    source = workdir / "export.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
        handle.write(MALFORMED_LINE + "\n")
    env = pipeline_env(workdir)
    loaded = run_cli(env, "ingest", str(source))
    assert loaded.returncode == 0, loaded.stderr
    result = run_dbt(env, "build", "--exclude", "source:segmentation+")
    assert result.returncode == 0, result.stdout[-3000:]
    return workdir / "warehouse.duckdb"


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_row_is_accounted_for(built: Path) -> None:
    summary = dict(query(built, "select item, rows from marts.data_quality_summary where section = 'accounting'"))
    assert summary["rows_read"] == READ
    assert summary["customers_kept"] == 5  # ids 1, 2, 7, 10, 11
    assert summary["duplicate_records_merged"] == 1
    assert summary["rows_quarantined"] == len(EXPECTED_REASONS)
    assert summary["customers_kept"] + summary["duplicate_records_merged"] + summary["rows_quarantined"] == READ


def test_quarantine_gives_each_row_its_reason(built: Path) -> None:
    reasons = dict(query(built, "select source_row_number, quarantine_reason from marts.customer_quarantine"))
    assert reasons == EXPECTED_REASONS
    by_reason = dict(query(built, "select item, rows from marts.data_quality_summary where section = 'quarantine'"))
    assert by_reason == {reason: 1 for reason in EXPECTED_REASONS.values()}
    # the original values are kept as exported
    assert query(built, "select source_profession from marts.customer_quarantine where source_customer_id = '5'") == [
        ("Astronaut",)
    ]


def test_duplicates_keep_the_most_recent_record_and_fill_its_gaps(built: Path) -> None:
    row = query(
        built,
        "select age, is_married, profession, work_experience, records_merged "
        "from marts.customer_features where customer_id = '2'",
    )
    assert row == [(33, True, "Doctor", 5, 2)]


def test_staging_normalises_spellings(built: Path) -> None:
    row = query(
        built,
        "select gender, is_married, age, has_degree, profession, spending_score, spending_score_level, family_size, "
        "var_1 from marts.customer_features where customer_id = '7'",
    )
    assert row == [("Female", True, 45, False, "Lawyer", "High", 2, 2, "Cat_4")]


def test_missing_values_are_imputed_and_counted(built: Path) -> None:
    experience = query(built, "select work_experience from marts.customer_features where customer_id = '10'")[0][0]
    known = [3, 5, 1]  # ids 1, 2 (merged), 11; id 7's "N/A" is missing too
    assert experience == sorted(known)[1]
    imputed = dict(query(built, "select item, rows from marts.data_quality_summary where section = 'imputation'"))
    assert imputed["work_experience"] == 2
    assert imputed["var_1"] == 1
    assert imputed["age"] == 0


def test_feature_mart_declares_roles_for_python(built: Path) -> None:
    from segmentation.contract import load_contract

    contract = load_contract(built.parent / "dbt_target" / "manifest.json")
    assert contract.relation == "marts.customer_features"
    assert contract.id_column == "customer_id"
    assert set(contract.numeric) == {"age", "work_experience", "family_size"}
    assert contract.ordinal == ("spending_score_level",)
    assert set(contract.categorical) == {"gender", "is_married", "has_degree", "profession"}


def test_malformed_record_keeps_its_raw_text(built: Path) -> None:
    assert query(
        built,
        "select source_line_number, source_line, source_customer_id from marts.customer_quarantine "
        "where quarantine_reason = 'malformed_row'",
    ) == [(READ + 1, MALFORMED_LINE, None)]


def test_quarantine_examples_show_offending_values_as_exported(built: Path) -> None:
    examples = {
        reason: (column, value, rows)
        for reason, column, value, rows in query(
            built, "select quarantine_reason, column_name, source_value, rows from marts.quarantine_examples"
        )
    }
    assert examples["unknown_profession"] == ("Profession", "Astronaut", 1)
    assert examples["age_out_of_range"] == ("Age", "200", 1)
    assert examples["unparseable_is_married"] == ("Ever_Married", "maybe", 1)
    assert examples["malformed_row"] == (None, MALFORMED_LINE, 1)
    assert set(examples) == set(EXPECTED_REASONS.values())


def test_data_quality_columns_profile_every_input_column(built: Path) -> None:
    columns = query(
        built,
        "select column_position, column_name, is_required, values_present, is_empty, is_constant "
        "from marts.data_quality_columns order by column_position",
    )
    assert [c[1] for c in columns] == HEADER and all(c[2] for c in columns)
    present = {c[1]: c[3] for c in columns}
    assert present["ID"] == len(ROWS) - 2  # the missing ID and the empty row
    assert present["Work_Experience"] == len(ROWS) - 3  # '', 'N/A' and the empty row
    assert not any(c[4] or c[5] for c in columns)


def test_too_many_quarantined_rows_stop_the_run_with_one_message(built: Path) -> None:
    # 9 of the 15 rows are quarantined; the line of separators only does not count: 8 of 14
    message = (
        r"8 of 14 rows of .*export\.csv were quarantined \(57\.1 %, not counting 1 empty row\), more than the "
        r"20 % allowed by MAX_QUARANTINE_SHARE; top reasons: age_out_of_range \(1\), family_size_out_of_range "
        r"\(1\), malformed_row \(1\)\. The file is probably not the expected export.*customer_quarantine"
    )
    with pytest.raises(UserError, match=message):
        check_quality(built, 0.2)
    assert check_quality(built, 0.6).rows_read == READ


def test_quarantine_limit_is_read_as_users_write_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [parse_share(v) for v in ("0.2", "0,5", "20%", " 35 % ", "1", "0")] == [0.2, 0.5, 0.2, 0.35, 1.0, 0.0]
    for bad in ("20", "abc", "-0.1", "nan"):
        with pytest.raises(UserError, match="MAX_QUARANTINE_SHARE"):
            parse_share(bad)
    monkeypatch.delenv("MAX_QUARANTINE_SHARE", raising=False)
    assert max_quarantine_share_from_environment() == 0.2
    monkeypatch.setenv("MAX_QUARANTINE_SHARE", "45%")
    assert max_quarantine_share_from_environment() == 0.45


def test_cli_quality_check_prints_one_error_line(built: Path) -> None:
    env = pipeline_env(built.parent, MAX_QUARANTINE_SHARE="0.3")
    result = run_cli(env, "check-quality")
    if "invalid choice" in result.stderr:
        pytest.xfail("cli.py has no check-quality command yet (patch sent to the lead)")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "more than the 30 % allowed" in errors[0]
    assert run_cli(pipeline_env(built.parent, MAX_QUARANTINE_SHARE="60%"), "check-quality").returncode == 0


def test_mart_constraints_are_enforced_by_the_warehouse(built: Path, tmp_path: Path) -> None:
    """The declared ranges and required values are enforced contract constraints of the imputed
    customers, which customer_features shows as they stand (a view, without order lines): a value
    outside them fails the model's own build, before anyone downstream can read it."""
    shutil.copy(built, tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("update intermediate.int_customers_validated set age = 300 where customer_id = '1'")
    result = run_dbt(pipeline_env(tmp_path), "run", "--select", "int_customers_imputed")
    assert result.returncode != 0
    output = result.stdout
    assert "CHECK constraint failed" in output and "int_customers_imputed" in output, output[-2000:]
