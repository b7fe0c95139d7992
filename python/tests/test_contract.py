import json
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
