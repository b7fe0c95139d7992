"""The other-shape tables: deterministic per seed, the promised columns and mess, findable segments."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import pipeline_env, run_cli

from segmentation.shapes import DEFAULT_ROWS, SHAPES, generate_shape


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, name):
    generate_shape(name, tmp_path / "a.csv", 300, 5, tmp_path / "ta.csv")
    generate_shape(name, tmp_path / "b.csv", 300, 5, tmp_path / "tb.csv")
    generate_shape(name, tmp_path / "c.csv", 300, 6)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "ta.csv").read_bytes() == (tmp_path / "tb.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_exact_rows_and_every_customer_in_the_truth(tmp_path, name):
    shape = generate_shape(name, tmp_path / "t.csv", 500, 1, tmp_path / "truth.csv")
    assert len(shape.export) == 500
    identifier = shape.truth.columns[0]
    assert set(shape.export[identifier]) == set(shape.truth[identifier])
    assert shape.truth[identifier].is_unique
    assert shape.truth["planted_segment"].nunique() >= 2
    assert pd.read_csv(tmp_path / "truth.csv", dtype=str).shape == shape.truth.shape


def test_retail_has_the_campaign_export_columns_and_its_mess(tmp_path):
    shape = generate_shape("retail", tmp_path / "r.csv", 3000, 2)
    export = shape.export
    assert list(export.columns[:8]) == [
        "ID", "Year_Birth", "Education", "Marital_Status", "Income", "Kidhome", "Teenhome", "Dt_Customer",
    ]  # fmt: skip
    assert {"MntWines", "MntGoldProds", "NumCatalogPurchases", "Complain", "Response"} <= set(export.columns)
    assert export["ID"].duplicated().sum() > 50  # repeated customers
    dates = export["Dt_Customer"]
    assert dates.str.match(r"\d{4}-\d\d-\d\d$").mean() > 0.5 and dates.str.match(r"\d\d/\d\d/\d{4}$").mean() > 0.2
    assert (export["Complain"] == "0").mean() > 0.98
    assert export["Income"].isna().sum() > 0 and (export["Education"] == "unknown").sum() > 0
    assert {"1893", "1899"} <= set(export["Year_Birth"])


def test_retail_segments_are_carried_by_income_spend_and_channel_not_by_flags():
    shape = SHAPES["retail"](4000, 3)
    export = shape.export.drop_duplicates("ID").merge(shape.truth, on="ID")
    income = pd.to_numeric(export["Income"], errors="coerce")
    spend = sum(pd.to_numeric(export[c]) for c in export.columns if c.startswith("Mnt"))
    catalog = pd.to_numeric(export["NumCatalogPurchases"])
    by = export.assign(income=income, spend=spend, catalog=catalog).groupby("planted_segment")
    means = by[["income", "spend", "catalog"]].median()
    assert means["income"].max() > 2 * means["income"].min()
    assert means["spend"].max() > 5 * means["spend"].min()
    assert means["catalog"].idxmax() == "affluent_catalogue"


def test_services_fr_is_a_french_excel_export(tmp_path):
    generate_shape("services_fr", tmp_path / "s.csv", 400, 4)
    raw = (tmp_path / "s.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel's byte-order mark
    header, first = raw.decode("utf-8-sig").splitlines()[:2]
    assert header.split(";")[:3] == ["Identifiant client", "Âge", "Revenu annuel"]
    assert "Ancienneté (mois)" in header and "Nb appels support" in header
    assert "," in first.split(";")[2] or first.split(";")[2] in ("", "NC")
    assert set(pd.read_csv(tmp_path / "s.csv", sep=";", dtype=str)["Engagement"]) == {"Oui", "Non"}


def test_mall_has_five_income_spending_groups_and_an_uninformative_gender():
    shape = SHAPES["mall"](2000, 8)
    frame = shape.export.merge(shape.truth, on="CustomerID")
    income = pd.to_numeric(frame["Annual Income (k$)"])
    score = pd.to_numeric(frame["Spending Score (1-100)"])
    centres = frame.assign(i=income, s=score).groupby("planted_segment")[["i", "s"]].mean()
    assert len(centres) == 5 and np.ptp(centres["i"]) > 50 and np.ptp(centres["s"]) > 50
    shares = pd.crosstab(frame["planted_segment"], frame["Gender"], normalize="index")["Female"]
    assert shares.max() - shares.min() < 0.15
    assert DEFAULT_ROWS["mall"] == 200


def test_cli_generate_shape_writes_parquet_and_truth(tmp_path):
    env = pipeline_env(tmp_path)
    truth = str(tmp_path / "t.csv")
    result = run_cli(env, "generate", str(tmp_path / "m.parquet"), "--shape", "mall", "--truth", truth)
    assert result.returncode == 0, result.stderr
    rows = duckdb.sql(f"select count(*) from read_parquet('{tmp_path / 'm.parquet'}')").fetchall()[0][0]
    assert rows == 200 and (tmp_path / "t.csv").exists()
    refused = run_cli(env, "generate", str(tmp_path / "x.csv"), "--shape", "tiny", "--labels")
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
