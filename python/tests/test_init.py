"""`init` on each shape writes a declaration that follows docs/declaration.md, and never overwrites one."""

from __future__ import annotations

import importlib.util
import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, make_command, pipeline_env, run_cli

from segmentation.generate import generate
from segmentation.inference import infer_declaration
from segmentation.profiling import profile_file
from segmentation.shapes import SHAPES, generate_shape
from segmentation.starter import render

TYPES = {"identifier", "number", "integer", "boolean", "category", "date", "text"}
ROLES = {"numeric", "ordinal", "categorical", "label", "profile", "ignored"}
IMPUTES = {"median", "most_frequent", "constant", "none"}
COLUMN_KEYS = {
    "column", "name", "type", "role", "required", "missing", "range", "levels", "ordered", "true", "false",
    "formats", "impute", "fallback", "skewed", "label", "unit", "words", "value",
}  # fmt: skip
DERIVATIONS = {"years_since", "days_since", "sum", "ratio", "difference"}
NAME = re.compile(r"[a-z][a-z0-9_]*")


def _bilingual(value) -> bool:
    return (
        isinstance(value, dict) and set(value) == {"en", "fr"} and all(isinstance(v, str) and v for v in value.values())
    )


def check_declaration(declaration: dict) -> None:
    """The rules of docs/declaration.md (version 1) that a written declaration must meet."""
    assert declaration["version"] == 1
    assert isinstance(declaration["as_of"], date) and isinstance(declaration["missing_values"], list)
    assert set(declaration) <= {"version", "description", "as_of", "missing_values", "deduplicate", "columns"} | {
        "derived"
    }
    columns = declaration["columns"]
    assert sum(c["type"] == "identifier" for c in columns) == 1
    names = ["customer_id"]
    for spec in [*columns, *declaration.get("derived", [])]:
        assert set(spec) <= COLUMN_KEYS | {"derive"}, spec
        assert spec.get("type", "number") in TYPES
        if spec.get("type") == "identifier":
            continue
        name = spec["name"]
        assert NAME.fullmatch(name) and name not in names, name
        role = spec.get("role")
        assert role in ROLES, spec
        assert spec.get("impute", "median") in IMPUTES
        if role in ("numeric", "ordinal", "categorical"):
            assert spec.get("impute") not in (None, "none"), spec
        if role != "ignored":
            assert _bilingual(spec["label"]), spec
        if "unit" in spec:
            assert _bilingual(spec["unit"])
        if "words" in spec:
            assert set(spec["words"]) == {"high", "low"} and all(_bilingual(w) for w in spec["words"].values())
        if "range" in spec:
            low, high = spec["range"]
            assert low is None or high is None or low <= high
        for level in spec.get("levels", []):
            assert isinstance(level["value"], str) and set(level) <= {"value", "spellings", "en", "fr"}
        if spec.get("ordered"):
            assert spec["type"] == "category" and role == "ordinal"
        if spec.get("type") == "date":
            assert spec["formats"] and all(f.startswith("%") for f in spec["formats"])
        names.append(name)
    for spec in declaration.get("derived", []):
        (kind, argument), *rest = spec["derive"].items()
        assert not rest and kind in DERIVATIONS
        for source in argument if isinstance(argument, list) else [argument]:
            assert source in names[: names.index(spec["name"])], source
    for rule in declaration.get("deduplicate", {}).get("latest_first", []):
        assert rule["column"] in names and rule["order"] in ("asc", "desc")


def _validate_with_project(path: Path) -> None:
    """When the project's own loader exists (segmentation.declaration), it must accept the file too."""
    if importlib.util.find_spec("segmentation.declaration") is None:
        return
    from segmentation.declaration import load_declaration

    load_declaration(path)


EXPECTED = {
    "retail": lambda d, c: (
        c["Year_Birth"]["role"] == "ignored"
        and {"age", "tenure_days", "total_spend", "total_purchases"} <= {x["name"] for x in d["derived"]}
        and c["Complain"]["role"] == "profile"
        and c["Income"]["words"]["high"]["en"] == "affluent"
        and c["Dt_Customer"]["formats"] == ["%Y-%m-%d", "%d/%m/%Y"]
        and d["deduplicate"]["latest_first"][0]["column"] == "dt_customer"
        and d["as_of"].year == 2014
    ),
    "tiny": lambda d, c: [x["type"] for x in d["columns"]] == ["identifier", "category", "number", "integer"],
    "services_fr": lambda d, c: (
        c["Revenu annuel"]["type"] == "number"
        and c["Forfait"]["ordered"] is True
        and c["Âge"]["name"] == "age"
        and c["Engagement"]["type"] == "boolean"
        and c["Ancienneté (mois)"]["unit"] == {"en": "months", "fr": "mois"}
    ),
    "mall": lambda d, c: c["Spending Score (1-100)"]["range"] == [1, 100] and c["Gender"]["type"] == "category",
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_init_on_each_shape_writes_a_declaration_that_follows_the_spec(tmp_path, name):
    data = tmp_path / f"{name}.csv"
    generate_shape(name, data, None, 21)
    output = tmp_path / "declarations" / f"{name}.yml"
    result = run_cli(pipeline_env(tmp_path), "init", str(data), "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "review it, then: make all DATA=" in result.stderr
    # dbt parsed the project generated from it (the first `make all` starts from that parse)
    assert "checking the declaration with dbt parse" in result.stderr
    assert (tmp_path / "dbt_target" / "partial_parse.msgpack").exists()
    declaration = yaml.safe_load(output.read_text("utf-8"))
    check_declaration(declaration)
    columns = {c["column"]: c for c in declaration["columns"]}
    assert EXPECTED[name](declaration, columns)
    _validate_with_project(output)


def test_init_on_the_default_export_and_on_parquet(tmp_path):
    generate(tmp_path / "customers.parquet", rows=3000, seed=4)
    profile = profile_file(tmp_path / "customers.parquet")
    draft = infer_declaration(profile, date(2030, 1, 1))
    check_declaration(draft.declaration)
    roles = [c.get("role") for c in draft.declaration["columns"]]
    assert roles.count("ordinal") == 1 and roles.count("numeric") >= 3
    assert yaml.safe_load(render(draft, "customers.parquet")) == draft.declaration


def test_the_written_yaml_reads_back_as_the_inferred_declaration(tmp_path):
    generate_shape("services_fr", tmp_path / "s.csv", 500, 3)
    draft = infer_declaration(profile_file(tmp_path / "s.csv"), date(2030, 1, 1))
    text = render(draft, "s.csv")
    assert yaml.safe_load(text) == draft.declaration
    assert text.startswith("# Declaration of s.csv") and "# Forfait: " in text


def test_make_init_never_overwrites_a_declaration_without_force(tmp_path):
    data = tmp_path / "tinyshop.csv"
    generate_shape("tiny", data, 200, 2)
    target = ROOT / "dbt_project" / "declarations" / "tinyshop.yml"
    assert not target.exists()
    env = pipeline_env(tmp_path)
    try:
        first = _make(tmp_path, env, data)
        assert first.returncode == 0, first.stderr
        target.write_text("# my edits\n", "utf-8")
        again = _make(tmp_path, env, data)
        assert again.returncode != 0 and "already exists" in again.stderr and "FORCE=1" in again.stderr
        assert target.read_text("utf-8") == "# my edits\n"
        forced = _make(tmp_path, env, data, FORCE="1")
        assert forced.returncode == 0 and "type: identifier" in target.read_text("utf-8")
    finally:
        target.unlink(missing_ok=True)
        if target.parent.exists() and not any(target.parent.iterdir()):
            target.parent.rmdir()


def _make(tmp_path: Path, env: dict, data: Path, **variables: str):
    import subprocess

    command = make_command(tmp_path, "init", DATA=str(data), **variables)
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
