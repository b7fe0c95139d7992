"""Segments marketing can keep: scoring new customers without refitting, and ids that
survive a re-run on slightly changed data. Real make runs into a temp dir."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from conftest import persona_names
from test_end_to_end import make

from segmentation.generate import COLUMNS as RAW_COLUMNS
from segmentation.generate import generate_customers, write_customers

pytestmark = pytest.mark.slow


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("identity")
    export, _ = generate_customers(rows=4000, seed=11)
    write_customers(export, workdir / "customers.csv")
    result = make(workdir, "publish", DATA=str(workdir / "customers.csv"))  # the report is tested elsewhere
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def test_score_assigns_what_the_saved_model_predicts_without_refit(trained: Path) -> None:
    from segmentation.contract import load_contract
    from segmentation.features import transform
    from segmentation.pipeline import load_model
    from segmentation.warehouse import connect, read_features

    warehouse = trained / "warehouse.duckdb"
    runs_before = query(warehouse, "select count(*) from segmentation.segmentation_runs")
    new, _ = generate_customers(rows=600, seed=12)
    write_customers(new, trained / "new.csv")
    result = make(trained, "score", DATA=str(trained / "new.csv"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert query(warehouse, "select count(*) from segmentation.segmentation_runs") == runs_before  # no refit

    run_id, model_path = query(
        warehouse,
        "select run_id, model_path from segmentation.segmentation_runs "
        "where run_id = (select any_value(run_id) from segmentation.segment_assignments)",
    )[0]
    artefact = load_model(Path(model_path))
    scoring = trained / "scoring"
    contract = load_contract(scoring / "dbt_target" / "manifest.json")
    with connect(scoring / "warehouse.duckdb", read_only=True) as con:
        table = read_features(con, artefact["contract"])
    ids = table.column(contract.id_column).to_pylist()
    if artefact["algorithm"] == "mixture":  # the default: membership probabilities from its own preparation
        probabilities = artefact["model"].predict_proba(artefact["mixture_preparation"].transform(table))
        labels = probabilities.argmax(axis=1)
        stored = dict(query(warehouse, "select customer_id, membership_probability from segmentation.segment_scores"))
        assert stored == pytest.approx(dict(zip(ids, probabilities.max(axis=1).tolist(), strict=True)), abs=1e-6)
        assert min(stored.values()) < 0.9  # a posterior, not a constant
    else:
        labels = artefact["model"].predict(transform(artefact["preprocessor"], table, artefact["contract"]))
    predicted = artefact["segment_ids"][labels]
    expected = dict(zip(ids, predicted.tolist(), strict=True))
    scores = dict(query(warehouse, "select customer_id, segment_id from segmentation.segment_scores"))
    assert scores == expected and len(scores) > 400
    assert {r for (r,) in query(warehouse, "select distinct run_id from segmentation.segment_scores")} == {run_id}


def test_appending_five_percent_keeps_segment_ids_and_personas(trained: Path) -> None:
    warehouse = trained / "warehouse.duckdb"
    names_before = persona_names(warehouse)
    original = pacsv.read_csv(
        trained / "customers.csv",
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in RAW_COLUMNS}),
    )
    extra, _ = generate_customers(rows=200, seed=13)  # 5 % more rows, new customers
    extra = extra.set_column(0, "ID", pc.binary_join_element_wise("N", extra.column("ID"), ""))
    write_customers(pa.concat_tables([original, extra.cast(original.schema)]), trained / "grown.csv")
    result = make(trained, "publish", DATA=str(trained / "grown.csv"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert persona_names(warehouse) == names_before
    lineage = dict(query(warehouse, "select segment_id, status from segmentation.segment_lineage"))
    assert set(lineage) == set(names_before) and set(lineage.values()) == {"kept"}
    stayed, total = query(
        warehouse,
        "select sum(customers) filter (where previous_segment_id = segment_id), "
        "sum(customers) filter (where previous_segment_id is not null and segment_id is not null) "
        "from segmentation.segment_migration",
    )[0]
    assert stayed / total > 0.9
    new_customers = query(
        warehouse, "select sum(customers) from segmentation.segment_migration where previous_segment_id is null"
    )
    assert new_customers[0][0] > 0
