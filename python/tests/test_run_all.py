"""`python -m segmentation run` (what `make all` calls): its exit codes and its all-or-nothing publication.

Real parts only: the CLI in its own process, dbt-duckdb through dbtRunner, real DuckDB files.
The successful run itself is `test_end_to_end.py`'s `make all`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, pipeline_env, run_cli

from segmentation.contract import load_contract
from segmentation.generate import generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    generate(path, rows=300, seed=5)
    return path


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_a_user_error_exits_2_with_one_line_and_publishes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,Gender\n1,Male\n", encoding="utf-8")
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_cli(pipeline_env(tmp_path), "run", str(warehouse), str(bad))
    assert result.returncode == 2, result.stderr[-3000:]
    errors = _errors(result.stderr)
    assert len(errors) == 1 and "lacks required column(s)" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "==> Loading" in result.stdout and "==> dbt build" not in result.stdout
    assert not warehouse.exists() and not (tmp_path / "output").exists()


def test_a_dbt_failure_exits_1_and_publishes_nothing(tmp_path: Path, data: Path) -> None:
    profiles = tmp_path / "no_profiles"  # dbt finds no profile there: its own error, then ours
    profiles.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    env = pipeline_env(tmp_path, DBT_PROFILES_DIR=str(profiles))
    result = run_cli(env, "run", str(warehouse), str(data))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    errors = _errors(result.stderr)
    assert len(errors) == 1 and "dbt" in errors[0] and "unchanged" in errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "==> Clustering customers" not in result.stdout
    assert not warehouse.exists() and not (tmp_path / "output").exists()


def test_a_successful_run_leaves_nothing_behind_and_says_nothing_more(tmp_path: Path, data: Path) -> None:
    """The warm worker and dbt's locks: no leaked semaphore reported, no stray process, no traceback."""
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_cli(pipeline_env(tmp_path, K="3", K_MAX="3", WEIGHTING="none"), "run", str(warehouse), str(data))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "leaked" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (tmp_path / "output" / "segment_report.pdf").exists()
    # dbt's artefacts, written while the report renders: the manifest (what `make segment` and
    # `make score` read, and the contract the run used), and the results of both builds
    target = tmp_path / "dbt_target"
    contract = load_contract(target / "manifest.json")
    assert contract.relation == "marts.customer_features" and contract.numeric
    run_results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    built = [result["unique_id"].split(".")[-1] for result in run_results["results"]]
    assert {"customer_features", "customer_segments", "segment_profiles", "feature_catalog"} <= set(built)
    assert len(built) == len(set(built))
    assert {result["status"] for result in run_results["results"]} <= {"success", "pass"}
    # the 2-D maps, computed while dbt built the profiles, were written to the run that made them
    with duckdb.connect(str(warehouse), read_only=True) as con:
        run_id, sample, seconds = con.execute(
            "select run_id, tsne_sample, stage_seconds from segmentation.segmentation_runs"
        ).fetchone()
        mapped = con.execute("select run_id, count(*) from segmentation.segment_projection group by run_id").fetchall()
    assert mapped == [(run_id, sample)] and sample > 0
    assert json.loads(seconds)["projection"] > 0


def _heed_ctrl_c() -> None:
    """In the child before it starts: Ctrl-C at its default (a shell's background job, as a CI
    runner may start the suite, ignores it, and Python would then keep ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_segment_step_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """Ctrl-C reaches the run and its warm worker (one process group): one line, exit 130, now.

    Thirty thousand customers and k chosen among 2…10: the segment step lasts seconds, so the
    interrupt lands in it even on a slow machine (it is checked that it did)."""
    data = tmp_path / "customers.csv"
    generate(data, rows=30_000, seed=5)
    command = [sys.executable, "-m", "segmentation", "run", str(tmp_path / "warehouse.duckdb"), str(data)]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}  # one pipe, read as it comes
    group = {"start_new_session": True, "preexec_fn": _heed_ctrl_c}
    run = subprocess.Popen(command, env=pipeline_env(tmp_path), cwd=ROOT, **output, **group, text=True)
    for line in run.stdout:
        if "==> Clustering customers" in line:
            break
    time.sleep(0.5)
    interrupted = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    rest, _ = run.communicate(timeout=60)
    assert run.returncode == 130, rest[-3000:]
    assert time.monotonic() - interrupted < 10
    assert "segment done" not in rest, rest[-3000:]  # interrupted in the segment step, not after it
    assert _errors(rest) == ["error: interrupted; the warehouse keeps its previous complete results."], rest[-3000:]
    assert "Traceback" not in rest and "leaked" not in rest, rest[-3000:]
    assert not (tmp_path / "warehouse.duckdb").exists()
