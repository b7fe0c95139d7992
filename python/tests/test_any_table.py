"""Any customer table, as a new user meets the project: `make init DATA=t`, then `make all DATA=t`, no edit.

Each table is another shape from the project's generator (planted segments, realistic mess): the
seed's schema, a retailer's table with a birth year, an enrolment date in two formats and skewed
amounts, a tiny table of four columns, and a French services export (semicolons, decimal commas,
Oui/Non) reported in French. The declaration is written to the test's own folder (DECLARATION=).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import ROOT, make_command, pipeline_env
from pypdf import PdfReader
from sklearn.metrics import adjusted_rand_score

from segmentation.generate import generate
from segmentation.shapes import generate_shape

pytestmark = pytest.mark.slow

# shape, rows, report language, least agreement with the planted segments
CASES = {
    "default": (3000, "en", 0.35),
    "retail": (2000, "en", 0.6),
    "tiny": (200, "en", 0.4),
    "services_fr": (2000, "fr", 0.5),
}


def make(workdir: Path, *targets: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        make_command(workdir, *targets, **variables),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir),
    )


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    shape = request.param
    rows, lang, _ = CASES[shape]
    workdir = tmp_path_factory.mktemp(shape)
    data, truth = workdir / f"{shape}.csv", workdir / "truth.csv"
    if shape == "default":
        generate(data, rows=rows, seed=11, truth_path=truth)
    else:
        generate_shape(shape, data, rows, 11, truth)
    declaration = workdir / "declaration.yml"
    settings = {"DATA": str(data), "DECLARATION": str(declaration)}
    init = make(workdir, "init", **settings)
    assert init.returncode == 0, init.stdout[-3000:] + init.stderr[-3000:]
    assert declaration.is_file()
    result = make(workdir, "all", REPORT_LANG=lang, **settings)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return shape, workdir


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(sql).fetchall()


def test_every_row_is_accounted_for(run: tuple[str, Path]) -> None:
    shape, workdir = run
    with (workdir / f"{shape}.csv").open("rb") as handle:
        lines = handle.read().decode("utf-8-sig", errors="replace").splitlines()
    ledger = dict(query(workdir, "select item, rows from marts.data_quality_summary where section = 'accounting'"))
    assert ledger["rows_read"] == len(lines) - 1
    assert ledger["customers_kept"] + ledger["duplicate_records_merged"] + ledger["rows_quarantined"] == len(lines) - 1
    assert query(workdir, "select count(*) from segmentation.segment_assignments")[0][0] == ledger["customers_kept"]


def test_segments_find_the_planted_ones(run: tuple[str, Path]) -> None:
    shape, workdir = run
    pairs = _pairs(shape, workdir)
    assert len(pairs) > 0.8 * query(workdir, "select count(*) from marts.customer_features")[0][0]
    ari = adjusted_rand_score([p[1] for p in pairs], [p[0] for p in pairs])
    assert ari >= CASES[shape][2], f"{shape}: ARI {ari:.3f}"


def _pairs(shape: str, workdir: Path) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        truth = con.sql(f"select * from read_csv('{workdir / 'truth.csv'}', all_varchar = true)").fetchall()
        key = {str(row[0]).strip(): row[-1] for row in truth}
        assigned = con.sql("select customer_id, segment_id from segmentation.segment_assignments").fetchall()
    return [(segment, key[customer]) for customer, segment in assigned if customer in key]


def test_personas_speak_of_the_tables_own_columns(run: tuple[str, Path]) -> None:
    shape, workdir = run
    lang = CASES[shape][1]
    declared = yaml.safe_load((workdir / "declaration.yml").read_text(encoding="utf-8"))
    words: set[str] = set()
    for column in [*declared["columns"], *(declared.get("derived") or [])]:
        for key in ("label", "unit"):
            words.add(str((column.get(key) or {}).get(lang, "")).casefold())
        for side in (column.get("words") or {}).values():
            words.add(str(side.get(lang, "")).casefold())
        for level in column.get("levels") or []:
            value = level if isinstance(level, str) else level.get(lang) or level.get("value")
            words.add(str(value).casefold())
    words.discard("")
    text = "\n".join(page.extract_text() for page in PdfReader(workdir / "output" / "segment_report.pdf").pages)
    folded = " ".join(text.split()).casefold()
    assert sum(word in folded for word in words) >= 3
    names = query(workdir, "select count(distinct segment_id) from marts.segment_profiles")[0][0]
    assert names >= 2
    if shape != "default":  # the seed's columns appear nowhere in another table's report
        for seed_word in ("Spending_Score", "Ever_Married", "Var_1", "profession"):
            assert seed_word.casefold() not in folded
    if lang == "fr":
        assert "clients" in folded and "segments" in folded
