"""The bench's own parts: the ARI from counts, heavy reads in a child, the seed's method, the pairs' verdicts."""

from __future__ import annotations

import os
import sys

import duckdb
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation.bench import StepResult, adjusted_rand_from_counts, query_in_child, run_measured
from segmentation.bench_memory import TreePeak
from segmentation.bench_pairs import Pair, pair_lines, seed_method
from segmentation.generate import generate


def test_ari_from_counts_is_scikit_learns():
    rng = np.random.default_rng(3)
    planted = rng.integers(0, 4, 500)
    found = np.where(rng.random(500) < 0.7, planted, rng.integers(0, 5, 500))
    counts = [(str(p), int(f), int(((planted == p) & (found == f)).sum())) for p in range(4) for f in range(5)]
    counts = [c for c in counts if c[2]]
    assert abs(adjusted_rand_from_counts(counts) - adjusted_rand_score(planted, found)) < 1e-12


def test_query_in_child_returns_the_rows(tmp_path):
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create table t as select range as i, range % 3 as g from range(10)")
    rows = query_in_child(database, "select g, count(*) from t where i >= ? group by g order by g", [1])
    assert rows == [(0, 3), (1, 3), (2, 3)]


def test_seed_method_runs_on_a_generated_file(tmp_path):
    path = tmp_path / "customers.parquet"
    generate(path, rows=300, seed=5)
    seed_method(path, tsne=True)  # raises if a row were lost


def test_pair_lines_judge_each_target():
    def step(seconds, gib=0.5):
        return StepResult("x", seconds, gib)

    fast = Pair(10_695, step(8.0), step(7.0), step(40.0), tsne=True)
    slow = Pair(1_000_000, step(25.0), step(22.0), step(130.0))
    large = Pair(10_000_000, step(55.0, 3.5), step(50.0, 3.5), None)
    lines = pair_lines([fast, slow, large])
    assert "**5.0×**" in lines[-3] and "met" in lines[-3] and "missed" not in lines[-3]
    assert "**5.2×**" in lines[-2] and "**missed**" in lines[-2]  # 25 s is over 20 s, 5.2× under 6×
    assert lines[-1].endswith("< 60 s, < 4 GiB: met |")


@pytest.mark.skipif(not TreePeak.available(), reason="needs /proc's smaps_rollup (Linux)")
def test_run_measured_counts_a_steps_processes_together(tmp_path):
    """make all runs two processes at once: the peak is their sum, not the larger one's."""
    script = (
        "import os, time\n"
        "mine = b'p' * (300 * 2**20)\n"  # touched pages: resident
        "if os.fork() == 0:\n"
        "    theirs = b'c' * (300 * 2**20); time.sleep(1.5); os._exit(0)\n"
        "time.sleep(1.5); os.wait()\n"
    )
    result = run_measured("two processes", [sys.executable, "-c", script], dict(os.environ), tmp_path)
    assert result.peak_rss_gib > 0.55  # both 300 MiB at once (0.59 GiB), not the 0.3 of either
