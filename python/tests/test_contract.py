import json
import subprocess
import sys
from pathlib import Path

import pytest

from segmentation.contract import load_contract
from segmentation.errors import UserError


def _manifest(tmp_path: Path, columns: dict[str, str | None]) -> Path:
    node = {
        "resource_type": "model",
        "name": "customer_features",
        "schema": "marts",
        "alias": "customer_features",
        "columns": {
            name: {"name": name, "meta": {}, "config": {"meta": {"role": role} if role else {}}}
            for name, role in columns.items()
        },
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": {"model.x.customer_features": node}}))
    return path


def test_roles_are_read_from_column_meta(tmp_path: Path) -> None:
    contract = load_contract(
        _manifest(tmp_path, {"key": "id", "size": "numeric", "tier": "ordinal", "colour": "categorical", "note": None})
    )
    assert contract.id_column == "key"
    assert contract.features == ("size", "tier", "colour")
    assert contract.columns == ("key", "size", "tier", "colour")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"size": "numeric"}, "exactly one column with meta role 'id'"),
        ({"key": "id", "other": "id", "size": "numeric"}, "exactly one column"),
        ({"key": "id"}, "no feature column"),
        ({"key": "id", "size": "number"}, "use one of"),
    ],
)
def test_bad_contracts_are_refused(tmp_path: Path, columns: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_contract(_manifest(tmp_path, columns))


def test_missing_manifest_says_to_run_dbt(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run the dbt step first"):
        load_contract(tmp_path / "nope.json")


COMPARE = """
from segmentation.config import load_settings
from segmentation.contract import contract_from_manifest, load_contract
from segmentation.run_all import Dbt

dbt = Dbt(load_settings())
dbt._invoke(["parse", "--quiet"], "parse")  # writes manifest.json
dbt.parse()  # the manifest in memory, as `make all` keeps it
written = load_contract(dbt.settings.manifest_path)
print(contract_from_manifest(dbt.manifest) == written, written.relation, len(written.features))
"""


def test_the_contract_in_memory_is_the_one_in_manifest_json(tmp_path: Path) -> None:
    """`make all` hands the segment step the contract of dbt's manifest in memory; `make segment`
    reads manifest.json: a real parse of the project (in its own process), both ways, the same."""
    from conftest import pipeline_env

    result = subprocess.run(
        [sys.executable, "-c", COMPARE], env=pipeline_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    same, relation, features = result.stdout.split()[-3:]
    assert same == "True" and relation == "marts.customer_features" and int(features) > 0, result.stdout
