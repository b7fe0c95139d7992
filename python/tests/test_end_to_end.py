"""The whole pipeline, as a user runs it: `make all` on a generated export, in a temp dir.

Real components only: make, the CLI, dbt-duckdb, scikit-learn, WeasyPrint.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_command, persona_names, pipeline_env, run_cli
from pypdf import PdfReader

from segmentation.generate import generate

pytestmark = pytest.mark.slow

ROWS = 3000


def make(workdir: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        make_command(workdir, *targets, **variables),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir),
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("e2e")
    generate(workdir / "customers.csv", rows=ROWS, seed=7)
    result = make(workdir, "all", DATA=str(workdir / "customers.csv"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "segment_report.pdf" in result.stdout
    return workdir


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_step_table_can_be_read(pipeline: Path) -> None:
    for relation in [
        "raw.customers",
        "staging.stg_customers",
        "intermediate.int_customers_validated",
        "intermediate.int_customers_deduplicated",
        "intermediate.int_customers_imputed",
        "marts.customer_features",
        "marts.customer_quarantine",
        "marts.data_quality_summary",
        "segmentation.segment_assignments",
        "segmentation.segment_model_selection",
        "segmentation.segment_projection",
        "segmentation.segmentation_runs",
        "marts.customer_segments",
        "marts.segment_profiles",
        "marts.segment_traits",
        "marts.feature_catalog",
        "marts.feature_levels",
    ]:
        assert query(pipeline, f"select count(*) from {relation}")[0][0] > 0, relation
    assert not (pipeline / ".build" / "warehouse.duckdb").exists()  # the working copy was published


def test_rows_are_accounted_for(pipeline: Path) -> None:
    summary = dict(query(pipeline, "select item, rows from marts.data_quality_summary where section = 'accounting'"))
    assert summary["rows_read"] == ROWS
    assert summary["customers_kept"] + summary["duplicate_records_merged"] + summary["rows_quarantined"] == ROWS
    assert summary["duplicate_records_merged"] > 0 and summary["rows_quarantined"] > 0
    kept = query(pipeline, "select count(*) from marts.customer_features")[0][0]
    assert kept == summary["customers_kept"]
    assert query(pipeline, "select count(*) from segmentation.segment_assignments")[0][0] == kept


def test_model_selection_and_run_are_recorded(pipeline: Path) -> None:
    ks = query(pipeline, "select k, is_chosen from segmentation.segment_model_selection order by k")
    assert [k for k, _ in ks] == list(range(2, 11))
    chosen = [k for k, is_chosen in ks if is_chosen]
    assert len(chosen) == 1 and 3 <= chosen[0] <= 6
    runs = query(pipeline, "select run_id, k, customers, model_path from segmentation.segmentation_runs")
    assert len(runs) == 1 and runs[0][1] == chosen[0]
    assert Path(runs[0][3]).exists()
    segments = query(pipeline, "select count(*) from marts.segment_profiles")[0][0]
    assert segments == chosen[0]


def test_saved_model_reproduces_the_assignments(pipeline: Path) -> None:
    from segmentation.contract import load_contract
    from segmentation.features import transform
    from segmentation.pipeline import load_model
    from segmentation.warehouse import connect, read_features

    model_path = Path(query(pipeline, "select model_path from segmentation.segmentation_runs")[0][0])
    artefact = load_model(model_path)
    contract = load_contract(pipeline / "dbt_target" / "manifest.json")
    assert artefact["contract"] == contract
    with connect(pipeline / "warehouse.duckdb", read_only=True) as con:
        table = read_features(con, contract)
        stored = dict(con.sql("select customer_id, segment_id from segmentation.segment_assignments").fetchall())
    if artefact["algorithm"] == "mixture":  # the default: the model reads its own preparation of the columns
        labels = artefact["model"].predict(artefact["mixture_preparation"].transform(table))
    else:
        labels = artefact["model"].predict(transform(artefact["preprocessor"], table, contract))
    predicted = artefact["segment_ids"][labels]
    ids = table.column(contract.id_column).to_pylist()
    assert all(stored[i] == s for i, s in zip(ids, predicted.tolist(), strict=True))


def test_membership_probabilities_and_the_model_used_are_recorded(pipeline: Path) -> None:
    low, high, ambiguous = query(
        pipeline,
        "select min(membership_probability), max(membership_probability), "
        "count(*) filter (where membership_probability < 0.6) from segmentation.segment_assignments",
    )[0]
    assert 0 < low <= high <= 1 and low < 0.9  # a mixture model's posterior, not a constant
    algorithm, reason, recorded, parameters = query(
        pipeline,
        "select algorithm, algorithm_reason, ambiguous_customers, parameters from segmentation.segmentation_runs",
    )[0]
    assert algorithm == "mixture" and "K-Means evaluated alongside" in reason and recorded == ambiguous
    assert '"compared_with_kmeans"' in parameters
    evidence = query(pipeline, "select k, bic, icl, is_chosen from segmentation.segment_model_selection order by k")
    assert all(bic is not None and icl >= bic for _, bic, icl, _ in evidence)
    assert sum(is_chosen for *_, is_chosen in evidence) == 1


def test_pdf_names_every_persona(pipeline: Path) -> None:

    pdf = pipeline / "output" / "segment_report.pdf"
    reader = PdfReader(pdf)
    segments = query(pipeline, "select count(*) from marts.segment_profiles")[0][0]
    assert len(reader.pages) >= segments + 4  # cover, summary, personas, methodology, data quality
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)

    names = persona_names(pipeline / "warehouse.duckdb")
    assert len(set(names.values())) == segments
    for name in names.values():
        assert " ".join(name.split()) in text
    assert f"{ROWS:,}" in text


def test_rerun_gives_identical_assignments(pipeline: Path) -> None:
    before = query(
        pipeline,
        "select customer_id, segment_id, distance_to_centroid from segmentation.segment_assignments order by 1",
    )
    result = make(pipeline, "all", DATA=str(pipeline / "customers.csv"))
    assert result.returncode == 0, result.stdout[-3000:]
    after = query(
        pipeline,
        "select customer_id, segment_id, distance_to_centroid from segmentation.segment_assignments order by 1",
    )
    assert before == after
    assert query(pipeline, "select count(*) from segmentation.segmentation_runs")[0][0] == 2


def test_user_k_and_a_failing_step_keep_the_published_results(pipeline: Path) -> None:
    published = query(pipeline, "select run_id from segmentation.segment_assignments limit 1")
    bad = pipeline / "bad.csv"
    bad.write_text("ID,Gender\n1,Male\n", encoding="utf-8")
    result = make(pipeline, "all", DATA=str(bad))
    assert result.returncode != 0
    assert "lacks required column(s)" in result.stderr and "Traceback" not in result.stderr
    assert query(pipeline, "select run_id from segmentation.segment_assignments limit 1") == published

    env = pipeline_env(pipeline, K="3", SEGMENTATION_WAREHOUSE=str(pipeline / "warehouse.duckdb"))
    result = run_cli(env, "segment")
    assert result.returncode == 0, result.stderr[-2000:]
    assert query(pipeline, "select count(distinct segment_id) from segmentation.segment_assignments") == [(3,)]
    assert query(
        pipeline, "select k_source from segmentation.segmentation_runs order by finished_at desc, run_id desc limit 1"
    ) == [("user",)]
