"""`python -m segmentation run` (what `make all` calls): its exit codes and its all-or-nothing publication.

Real parts only: the CLI in its own process, dbt-duckdb through dbtRunner, real DuckDB files.
The successful run itself is `test_end_to_end.py`'s `make all`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import pipeline_env, run_cli

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
