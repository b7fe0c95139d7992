"""The dbt models on a small crafted export: cleaning, quarantine, dedup, imputation, accounting.

One real `dbt build` (module fixture) on a real DuckDB file, then assertions on its tables.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
from conftest import pipeline_env, run_cli, run_dbt

pytestmark = pytest.mark.slow

HEADER = [
    "ID",
    "Gender",
    "Ever_Married",
    "Age",
    "Graduated",
    "Profession",
    "Work_Experience",
    "Spending_Score",
    "Family_Size",
    "Var_1",
]
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
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("dbt")
    source = workdir / "export.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
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
    assert summary["rows_read"] == len(ROWS)
    assert summary["customers_kept"] == 5  # ids 1, 2, 7, 10, 11
    assert summary["duplicate_records_merged"] == 1
    assert summary["rows_quarantined"] == 7
    assert summary["customers_kept"] + summary["duplicate_records_merged"] + summary["rows_quarantined"] == len(ROWS)


def test_quarantine_gives_each_row_its_reason(built: Path) -> None:
    reasons = dict(query(built, "select coalesce(source_id, ''), quarantine_reason from marts.customer_quarantine"))
    assert reasons == {
        "3": "age_out_of_range",
        "4": "negative_work_experience",
        "5": "unknown_profession",
        "": "missing_customer_id",
        "6": "unparseable_age",
        "8": "family_size_out_of_range",
        "9": "unparseable_ever_married",
    }
    # the original values are kept as exported
    assert query(built, "select source_profession from marts.customer_quarantine where source_id = '5'") == [
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
        "select gender, is_married, age, has_degree, profession, spending_score, spending_level, family_size, var_1 "
        "from marts.customer_features where customer_id = '7'",
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
    assert contract.ordinal == ("spending_level",)
    assert set(contract.categorical) == {"gender", "is_married", "has_degree", "profession"}
