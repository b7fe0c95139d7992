"""An export that carries its own segmentation (role `label`): compared, never clustered on."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_end_to_end import make

from segmentation.contract import load_contract
from segmentation.generate import generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("labels")
    generate(workdir / "customers.csv", rows=3000, seed=5, labels=True)
    result = make(workdir, "publish", DATA=str(workdir / "customers.csv"))  # the report is tested elsewhere
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def test_label_is_declared_and_never_a_feature(labelled_run: Path) -> None:
    contract = load_contract(labelled_run / "dbt_target" / "manifest.json")
    assert contract.label == "known_segment"
    assert "known_segment" not in contract.features
    with duckdb.connect(str(labelled_run / "warehouse.duckdb"), read_only=True) as con:
        features = con.sql("select parameters from segmentation.segmentation_runs").fetchall()[0][0]
    assert "known_segment" not in features


def test_agreement_with_existing_labels_is_reported(labelled_run: Path) -> None:
    with duckdb.connect(str(labelled_run / "warehouse.duckdb"), read_only=True) as con:
        column, ari = con.sql("select label_column, label_ari from segmentation.segmentation_runs").fetchall()[0]
        crosstab = con.sql(
            "select label, sum(customers) from segmentation.segment_label_crosstab group by 1"
        ).fetchall()
        kept = con.sql("select count(*) from marts.customer_features").fetchall()[0][0]
    assert column == "known_segment"
    assert 0.2 < ari <= 1.0  # the planted letters are found again, imperfectly (noise, overlap)
    assert {label for label, _ in crosstab} == {"A", "B", "C", "D"}
    assert sum(n for _, n in crosstab) == kept
