"""Shared fixtures: real DuckDB files, real dbt runs, all inside pytest's tmp dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DBT_PROJECT = ROOT / "dbt_project"


def pipeline_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment that points every step at files under `workdir` (never the user's data)."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT / "python"),
            "SEGMENTATION_WAREHOUSE": str(workdir / "warehouse.duckdb"),
            "SEGMENTATION_MODELS_DIR": str(workdir / "models"),
            "SEGMENTATION_OUTPUT_DIR": str(workdir / "output"),
            "DBT_TARGET_PATH": str(workdir / "dbt_target"),
            "DBT_LOG_PATH": str(workdir / "dbt_target" / "logs"),
            "DBT_PROFILES_DIR": str(DBT_PROJECT),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    # a run's own settings, which `make test` itself exports (DATA, ORDERS…), never leak into the runs tested
    for variable in ("K", "DATA", "ORDERS", "AS_OF", "DECLARATION", "ALGO", "WEIGHTING", "K_MIN", "K_MAX", "ENGINE"):
        env.pop(variable, None)
    for variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(variable, None)
    env.update(extra)
    return env


def make_command(workdir: Path, *targets: str, **variables: str) -> list[str]:
    """A `make` call whose warehouse, models, outputs and dbt artefacts all live under `workdir`."""
    settings = {
        "WAREHOUSE": str(workdir / "warehouse.duckdb"),
        "MODELS_DIR": str(workdir / "models"),
        "OUTPUT_DIR": str(workdir / "output"),
        "DBT_TARGET_PATH": str(workdir / "dbt_target"),
        **variables,
    }
    return ["make", "--no-print-directory", *targets, *(f"{key}={value}" for key, value in settings.items())]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segmentation", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )


def run_dbt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dbt"), *args], env=env, cwd=DBT_PROJECT, capture_output=True, text=True)


def persona_names(warehouse: Path, lang: str = "en") -> dict[int, str]:
    """The persona name of each segment, as the report names them from the warehouse."""
    from segmentation.report.build import prepare
    from segmentation.report.i18n import load_rules
    from segmentation.report.warehouse import read_warehouse

    _, personas, _, _ = prepare(read_warehouse(warehouse), load_rules(ROOT / "reports" / "persona_rules.yml"), lang)
    return {persona.segment_id: persona.name for persona in personas}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
