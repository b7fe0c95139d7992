"""Tests for the embedded default-data generator.

The generated export stands in for a real CRM export, so these tests pin down
the properties the rest of the pipeline (and its tests) rely on: schema, exact
size, determinism, realistic missingness, repeated customers, rare bad values
and planted personas that are visible but not trivially separable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation import generate as gen
from segmentation.generate import COLUMNS, PLANTED_SEGMENTS, generate, generate_customers, write_customers

ROWS = 24_000
SEED = 11

VALID = {
    "Gender": {"Male", "Female"},
    "Ever_Married": {"Yes", "No"},
    "Graduated": {"Yes", "No"},
    "Profession": {
        "Healthcare",
        "Engineer",
        "Lawyer",
        "Entertainment",
        "Artist",
        "Executive",
        "Doctor",
        "Homemaker",
        "Marketing",
    },
    "Spending_Score": {"Low", "Average", "High"},
    "Var_1": {f"Cat_{i}" for i in range(1, 8)},
}
PLANTED_UNKNOWNS = {"Profession": {"astronaut"}, "Var_1": {"cat_9"}}

# (low, high) bands for the share of missing values per column.
MISSING_BANDS = {
    "ID": (0.0, 0.0),
    "Gender": (0.001, 0.006),
    "Ever_Married": (0.013, 0.027),
    "Age": (0.001, 0.006),
    "Graduated": (0.006, 0.015),
    "Profession": (0.010, 0.021),
    "Work_Experience": (0.085, 0.115),
    "Spending_Score": (0.001, 0.006),
    "Family_Size": (0.030, 0.050),
    "Var_1": (0.006, 0.015),
}

SANE_AGE = (18, 100)


@pytest.fixture(scope="module")
def tables() -> tuple[pa.Table, pa.Table]:
    return generate_customers(rows=ROWS, seed=SEED)


@pytest.fixture(scope="module")
def export(tables: tuple[pa.Table, pa.Table]) -> pd.DataFrame:
    frame = tables[0].to_pandas()
    frame["row"] = np.arange(len(frame))
    for column in ("Age", "Work_Experience", "Family_Size"):
        frame[column.lower()] = pd.to_numeric(frame[column])
    return frame


@pytest.fixture(scope="module")
def labelled(export: pd.DataFrame, tables: tuple[pa.Table, pa.Table]) -> pd.DataFrame:
    """Export rows with their planted segment and cleaned categoricals (strip + casefold)."""
    frame = export.merge(tables[1].to_pandas(), on="ID", how="left", validate="many_to_one")
    for column in VALID:
        frame[column.lower()] = frame[column].str.strip().str.casefold()
    return frame


@pytest.fixture(scope="module")
def pairs(export: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(earlier, later) records of each repeated customer, aligned by ID.

    There is no timestamp: the later record is the older one. Only pairs where
    both ages are known and sane are kept, so that 'later' is well defined.
    """
    repeated = export[export["ID"].duplicated(keep=False)]
    sane = repeated.groupby("ID")["age"].transform(lambda a: a.between(*SANE_AGE).all())
    repeated = repeated[sane].sort_values(["ID", "age"])
    earlier = repeated.groupby("ID").nth(0).set_index("ID")
    later = repeated.groupby("ID").nth(1).set_index("ID")
    return earlier, later


# --- schema, size, determinism ---------------------------------------------


def test_columns_in_order_and_all_strings(tables: tuple[pa.Table, pa.Table]) -> None:
    export, truth = tables
    assert tuple(export.column_names) == COLUMNS
    assert COLUMNS == (
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
    )
    assert all(t == pa.string() for t in export.schema.types)
    assert truth.column_names == ["ID", "planted_segment"]
    assert all(t == pa.string() for t in truth.schema.types)


@pytest.mark.parametrize("rows", [0, 1, 2, 7, 1_000, 4_321])
def test_exact_row_count(rows: int) -> None:
    export, truth = generate_customers(rows=rows, seed=3)
    assert export.num_rows == rows
    assert truth.num_rows == len(set(export["ID"].to_pylist()))


def test_negative_rows_or_seed_rejected() -> None:
    with pytest.raises(ValueError, match="rows"):
        generate_customers(rows=-1)
    with pytest.raises(ValueError, match="seed"):
        generate_customers(rows=10, seed=-1)


def test_same_seed_same_tables_different_seed_different() -> None:
    a_export, a_truth = generate_customers(rows=3_000, seed=5)
    b_export, b_truth = generate_customers(rows=3_000, seed=5)
    c_export, _ = generate_customers(rows=3_000, seed=6)
    assert a_export.equals(b_export)
    assert a_truth.equals(b_truth)
    assert not a_export.equals(c_export)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_byte_identical_for_same_seed(tmp_path: Path, suffix: str) -> None:
    first, second, other = (tmp_path / f"{name}{suffix}" for name in ("a", "b", "c"))
    generate(first, rows=2_500, seed=9)
    generate(second, rows=2_500, seed=9)
    generate(other, rows=2_500, seed=10)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(min_value=0, max_value=400), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_size_and_seed_is_consistent(rows: int, seed: int) -> None:
    export, truth = generate_customers(rows=rows, seed=seed)
    assert export.num_rows == rows
    ids = export["ID"].to_pylist()
    assert sorted(set(ids)) == sorted(truth["ID"].to_pylist())
    assert max((ids.count(i) for i in set(ids)), default=0) <= 2
    assert set(truth["planted_segment"].to_pylist()) <= set(PLANTED_SEGMENTS)
    # A repeated customer's two records are never exact copies.
    frame = export.to_pandas()
    assert not frame.duplicated(keep=False).any()


# --- IDs and repeated exports -------------------------------------------------


def test_ids_are_integers_and_truth_is_one_row_per_customer(
    export: pd.DataFrame, tables: tuple[pa.Table, pa.Table]
) -> None:
    assert export["ID"].str.fullmatch(r"[1-9]\d{5,}").all()
    truth = tables[1].to_pandas()
    assert truth["ID"].is_unique
    assert set(truth["ID"]) == set(export["ID"])
    assert (truth["ID"].astype(np.int64).diff().dropna() > 0).all()  # sorted by ID
    assert set(truth["planted_segment"]) == set(PLANTED_SEGMENTS)


def test_about_a_fifth_of_customers_appear_twice(export: pd.DataFrame) -> None:
    counts = export["ID"].value_counts()
    assert counts.max() == 2
    share_twice = (counts == 2).mean()
    assert 0.15 <= share_twice <= 0.25
    assert len(export) / len(counts) == pytest.approx(1.2, abs=0.03)


def test_repeated_records_are_never_exact_copies(export: pd.DataFrame) -> None:
    raw = export[list(COLUMNS)]
    assert raw["ID"].duplicated().any()
    assert not raw.duplicated().any()


def test_repeated_ages_differ_in_both_directions(pairs: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    younger, older = pairs  # the export cannot say which record is the more recent: sorted by age
    assert len(younger) > 0.15 * ROWS / 1.2 * 0.9
    gap = older["age"] - younger["age"]
    assert gap.between(1, 14).all() and set(gap.unique()) == set(range(1, 15))


def test_a_repeat_moves_age_either_way_and_experience_with_it() -> None:
    rng = np.random.default_rng(0)
    first = gen._draw_customers(rng, rng.integers(0, len(gen.PERSONAS), 20_000).astype(np.int8))
    repeat = gen._later_exports(rng, first)
    gap = repeat.age.astype(int) - first.age.astype(int)
    assert set(range(-14, 14)) - {0} <= set(gap) and np.abs(gap).max() <= 14 and not (gap == 0).any()
    assert 0.35 < (gap < 0).mean() < 0.65
    assert repeat.age.min() >= gen.MIN_AGE and repeat.age.max() <= gen.MAX_AGE
    free = (first.experience + gap >= 0) & (first.experience + gap <= repeat.age - gen.MIN_WORKING_AGE)
    assert (repeat.experience[free] - first.experience[free] == gap[free]).all()
    yes, no = gen.YES_NO.index("Yes"), gen.YES_NO.index("No")
    assert ((first.married == no) & (repeat.married == yes)).sum() > 0  # some married in between
    assert not ((first.married == yes) & (repeat.married == no)).any()
    assert np.abs(repeat.family.astype(int) - first.family).max() == 1
    assert 0.03 < (repeat.spending != first.spending).mean() < 0.3
    low = gen.SPENDING_SCORES.index("Low")
    assert (repeat.spending[repeat.married != yes] == low).all()  # only the married spend above Low


def test_repeated_records_are_scattered_not_adjacent(
    export: pd.DataFrame, pairs: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rows = export[export["ID"].duplicated(keep=False)].groupby("ID")["row"]
    distance = rows.max() - rows.min()
    assert (distance == 1).mean() < 0.01
    assert distance.median() > len(export) / 10
    # File order says nothing about which record is the later one (no appended block at the end).
    earlier, later = pairs
    assert 0.45 < (later["row"] > earlier["row"]).mean() < 0.55
    assert later["row"].mean() == pytest.approx(len(export) / 2, rel=0.05)


# --- values: domains, missingness, bad values ----------------------------------


@pytest.mark.parametrize("column", sorted(VALID))
def test_category_domains_after_cleaning(labelled: pd.DataFrame, column: str) -> None:
    cleaned = set(labelled[column.lower()].dropna())
    allowed = {v.casefold() for v in VALID[column]} | PLANTED_UNKNOWNS.get(column, set())
    assert cleaned <= allowed
    assert {v.casefold() for v in VALID[column]} <= cleaned
    # Raw values are almost always already clean.
    raw = labelled[column].dropna()
    assert raw.isin(VALID[column]).mean() > 0.995


def test_numbers_are_written_like_the_original_export(export: pd.DataFrame) -> None:
    assert export["Age"].dropna().str.fullmatch(r"-?\d+").all()
    for column in ("Work_Experience", "Family_Size"):
        assert export[column].dropna().str.fullmatch(r"-?\d+\.0").all(), column
    sane = export["age"].between(*SANE_AGE)
    assert sane.mean() > 0.99
    assert export.loc[sane, "age"].between(18, 95).all()
    assert export["family_size"].dropna().between(1, 10).all()


@pytest.mark.parametrize("column", COLUMNS)
def test_missing_rates_within_bands(export: pd.DataFrame, column: str) -> None:
    low, high = MISSING_BANDS[column]
    assert low <= export[column].isna().mean() <= high


def test_bad_values_present_but_rare(labelled: pd.DataFrame) -> None:
    impossible_age = ~labelled["age"].between(*SANE_AGE) & labelled["age"].notna()
    negative_experience = labelled["work_experience"] < 0
    unknown = labelled["profession"].isin(PLANTED_UNKNOWNS["Profession"]) | labelled["var_1"].isin(
        PLANTED_UNKNOWNS["Var_1"]
    )
    whitespace = np.zeros(len(labelled), dtype=bool)
    case_variant = np.zeros(len(labelled), dtype=bool)
    for column, valid in VALID.items():
        raw = labelled[column]
        stripped = raw.str.strip()
        whitespace |= raw.notna() & (raw != stripped)
        valid_folded = {v.casefold() for v in valid}
        case_variant |= raw.notna() & ~stripped.isin(valid) & stripped.str.casefold().isin(valid_folded)
    for kind, mask in {
        "impossible age": impossible_age,
        "negative experience": negative_experience,
        "unknown category": unknown,
        "stray whitespace": whitespace,
        "case variant": case_variant,
    }.items():
        assert mask.sum() >= 1, kind
    assert set(labelled.loc[impossible_age, "age"]) <= {0, -3, 150, 212}
    assert set(labelled.loc[negative_experience, "work_experience"]) <= {-1, -5}
    any_bad = impossible_age | negative_experience | unknown | whitespace | case_variant
    assert any_bad.mean() < 0.01


# --- planted personas -----------------------------------------------------------


def test_segment_shares(tables: tuple[pa.Table, pa.Table]) -> None:
    shares = tables[1].to_pandas()["planted_segment"].value_counts(normalize=True)
    expected = {
        "core_professionals": 0.42,
        "young_healthcare_singles": 0.22,
        "senior_lawyers": 0.10,
        "homemakers": 0.16,
        "noise": 0.10,
    }
    for segment, share in expected.items():
        assert shares[segment] == pytest.approx(share, abs=0.02), segment


def test_personas_visible_in_truth(labelled: pd.DataFrame) -> None:
    sane = labelled[labelled["age"].between(*SANE_AGE)]
    mean_age = sane.groupby("planted_segment")["age"].mean()
    for segment, target in {
        "core_professionals": 47,
        "young_healthcare_singles": 27,
        "senior_lawyers": 78,
        "homemakers": 38,
    }.items():
        assert mean_age[segment] == pytest.approx(target, abs=2.5), segment
    assert sane.loc[sane["planted_segment"] == "young_healthcare_singles", "age"].min() >= 18
    assert sane.loc[sane["planted_segment"] == "senior_lawyers", "age"].max() <= 95

    def share(segment: str, column: str, value: str) -> float:
        values = labelled.loc[labelled["planted_segment"] == segment, column].dropna()
        return float((values == value).mean())

    assert 0.55 <= share("senior_lawyers", "profession", "lawyer") <= 0.75
    assert 0.62 <= share("young_healthcare_singles", "profession", "healthcare") <= 0.82
    assert 0.1 <= share("homemakers", "profession", "homemaker") <= 0.25  # 3 % of all customers are homemakers
    assert share("homemakers", "gender", "female") > 0.7
    assert share("core_professionals", "gender", "male") == pytest.approx(0.55, abs=0.04)
    assert share("young_healthcare_singles", "spending_score", "low") > 0.75
    assert share("senior_lawyers", "spending_score", "high") > 0.45
    assert share("core_professionals", "spending_score", "average") > 0.3
    assert share("senior_lawyers", "ever_married", "yes") > 0.8
    assert share("young_healthcare_singles", "ever_married", "yes") < 0.25

    family = labelled.groupby("planted_segment")["family_size"].mean()
    assert family["young_healthcare_singles"] > family["core_professionals"] > family["senior_lawyers"]
    experience = labelled[labelled["work_experience"] >= 0].groupby("planted_segment")["work_experience"].mean()
    assert experience.idxmax() == "homemakers"


def test_marginals_match_the_real_export(labelled: pd.DataFrame) -> None:
    """The facts of the real file behind the seed (10,695 rows): shares, spending, marriage, ages."""
    professions = labelled["profession"].value_counts(normalize=True)
    real = {"artist": 0.327, "healthcare": 0.165, "entertainment": 0.118, "engineer": 0.086, "doctor": 0.085}
    real |= {"lawyer": 0.078, "executive": 0.073, "marketing": 0.037, "homemaker": 0.030}
    for profession, share in real.items():
        assert professions[profession] == pytest.approx(share, abs=0.012), profession
    spending = labelled["spending_score"].value_counts(normalize=True)
    for level, share in {"low": 0.605, "average": 0.24, "high": 0.15}.items():
        assert spending[level] == pytest.approx(share, abs=0.025), level
    above_low = labelled[labelled["spending_score"].isin(["average", "high"]) & labelled["ever_married"].notna()]
    assert (above_low["ever_married"] == "yes").all()
    sane = labelled[labelled["age"].between(*SANE_AGE)]
    ages = sane.groupby("profession")["age"].mean()
    assert ages["lawyer"] == pytest.approx(75, abs=2) and ages["healthcare"] == pytest.approx(27, abs=2)


def _clean_features(rows: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """A cleaned feature table (the mart's columns) drawn straight from the personas, and its truth."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(len(gen.PERSONAS), size=rows, p=[p.share for p in gen.PERSONAS]).astype(np.int8)
    drawn = gen._draw_customers(rng, segment)
    table = pa.table(
        {
            "age": drawn.age.astype(np.int32),
            "gender": pa.array(np.array(gen.GENDERS)[drawn.gender]),
            "is_married": drawn.married == 0,
            "has_degree": drawn.graduated == 0,
            "profession": pa.array(np.array(gen.PROFESSIONS)[drawn.profession]),
            "work_experience": drawn.experience.astype(np.int32),
            "spending_level": drawn.spending.astype(np.int32),
            "family_size": drawn.family.astype(np.int32),
        }
    )
    return table, np.array(PLANTED_SEGMENTS)[segment]


def test_bayes_oracle_is_the_ceiling_on_clean_draws() -> None:
    from sklearn.metrics import adjusted_rand_score

    table, truth = _clean_features(20_000, seed=1)
    oracle = np.array(gen.bayes_oracle(table).to_pylist())
    assert np.array_equal(oracle, np.array(gen.bayes_oracle(table).to_pylist()))
    assert set(oracle) <= set(PLANTED_SEGMENTS)
    accuracy = (oracle == truth).mean()
    assert accuracy > 0.7
    # the posterior maximum beats a single-feature rule (each profession → its most common persona)
    professions = table.column("profession").to_pylist()
    by_profession = pd.Series(truth).groupby(professions).agg(lambda v: v.mode()[0])
    rule = by_profession.reindex(professions).to_numpy()
    assert accuracy > (rule == truth).mean()
    assert adjusted_rand_score(truth, oracle) > adjusted_rand_score(truth, rule)


def test_personas_overlap_rather_than_separate_trivially(labelled: pd.DataFrame) -> None:
    lawyers = labelled[labelled["profession"] == "lawyer"]
    assert (lawyers["planted_segment"] != "senior_lawyers").mean() > 0.05
    sane = labelled[labelled["age"].between(*SANE_AGE)]
    ages = sane.groupby("planted_segment")["age"]
    assert ages.max()["young_healthcare_singles"] > ages.min()["core_professionals"]
    assert ages.max()["homemakers"] > ages.quantile(0.25)["core_professionals"]
    assert ages.max()["core_professionals"] > ages.min()["senior_lawyers"]


def test_var_1_mostly_independent_of_segment(labelled: pd.DataFrame) -> None:
    cat_6 = labelled["var_1"].dropna().eq("cat_6")
    assert cat_6.mean() == pytest.approx(0.65, abs=0.03)
    by_segment = (
        labelled.dropna(subset=["var_1"]).groupby("planted_segment")["var_1"].apply(lambda v: (v == "cat_6").mean())
    )
    assert (by_segment - cat_6.mean()).abs().max() < 0.05
    shares = labelled["var_1"].value_counts(normalize=True)
    assert shares["cat_4"] == pytest.approx(0.13, abs=0.03)
    assert shares["cat_3"] == pytest.approx(0.10, abs=0.03)


# --- writing --------------------------------------------------------------------


def test_csv_round_trips_through_duckdb(tmp_path: Path) -> None:
    export, _ = generate_customers(rows=3_000, seed=2)
    path = tmp_path / "nested" / "dir" / "customers.csv"
    write_customers(export, path)
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert '"' not in text  # a plain export: nothing here needs quoting
    assert ",," in text  # missing values are empty fields
    back = duckdb.sql(f"SELECT * FROM read_csv('{path}', all_varchar=true, header=true)").to_arrow_table()
    assert back.column_names == list(COLUMNS)
    assert back.num_rows == export.num_rows
    assert back.cast(export.schema).equals(export)


def test_parquet_round_trips_with_zstd(tmp_path: Path) -> None:
    export, _ = generate_customers(rows=3_000, seed=2)
    path = tmp_path / "customers.parquet"
    write_customers(export, path)
    assert pq.read_table(path).equals(export)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("name", ["customers.json", "customers.txt", "customers", "customers.csv.gz"])
def test_unsupported_suffix_raises(tmp_path: Path, name: str) -> None:
    export, _ = generate_customers(rows=10, seed=1)
    with pytest.raises(ValueError, match="suffix"):
        write_customers(export, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_debris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "customers.parquet"
    path.write_bytes(b"previous export")

    def half_write(table: pa.Table, where: Path, **kwargs: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(gen.pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_customers(generate_customers(rows=10, seed=1)[0], path)
    assert path.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["customers.parquet"]


def test_generate_writes_export_and_truth_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "out" / "customers.csv"
    truth_path = tmp_path / "out" / "truth.parquet"
    with caplog.at_level(logging.INFO, logger="segmentation.generate"):
        generate(path, rows=1_200, seed=4, truth_path=truth_path)
    export, truth = generate_customers(rows=1_200, seed=4)
    assert pq.read_table(truth_path).equals(truth)
    written = duckdb.sql(f"SELECT * FROM read_csv('{path}', all_varchar=true)").to_arrow_table()
    assert written.cast(export.schema).equals(export)
    assert sorted(p.name for p in path.parent.iterdir()) == ["customers.csv", "truth.parquet"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "1200 rows" in messages and str(path) in messages and str(truth_path) in messages
