"""The embedded default data, clustered as `make all` clusters it: k is stable and the
planted personas are recovered (each planted group has one segment holding most of it)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_end_to_end import make

from segmentation.generate import generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("default")
    generate(workdir / "customers.csv", rows=10_000, seed=42, truth_path=workdir / "truth.parquet")
    result = make(workdir, "publish", DATA=str(workdir / "customers.csv"))  # the report is tested elsewhere
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir


def test_chosen_k_is_stable(default_run: Path) -> None:
    with duckdb.connect(str(default_run / "warehouse.duckdb"), read_only=True) as con:
        k, stability, rule = con.sql(
            "select k, coalesce(mixture_stability, stability), "
            "(select selection_rule from segmentation.segmentation_runs) "
            "from segmentation.segment_model_selection where is_chosen"
        ).fetchall()[0]
    assert 3 <= k <= 6
    assert stability >= 0.8
    assert rule in ("bic_stable", "icl_stable", "elbow_stable", "stable_near_elbow")


def test_planted_personas_are_recovered(default_run: Path) -> None:
    with duckdb.connect(str(default_run / "warehouse.duckdb"), read_only=True) as con:
        shares = con.execute(
            "with counts as ("
            "  select truth.planted_segment, assignments.segment_id, count(*) as customers "
            "  from segmentation.segment_assignments as assignments "
            "  inner join read_parquet(?) as truth on truth.ID = assignments.customer_id "
            "  group by all) "
            "select planted_segment, max(customers) / sum(customers) as best_share, arg_max(segment_id, customers) "
            "from counts where planted_segment <> 'noise' group by planted_segment",
            [str(default_run / "truth.parquet")],
        ).fetchall()
    assert len(shares) == 4
    for planted, best_share, _ in shares:
        assert best_share > 0.5, planted
    assert len({segment for _, _, segment in shares}) == 4  # four different segments
