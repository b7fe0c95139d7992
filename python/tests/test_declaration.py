"""The declaration is checked before anything runs: each mistake is one line naming the file and the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, pipeline_env, run_cli

from segmentation import dbt_yaml
from segmentation.declaration import DeclarationError, find_declaration, load_declaration, parse_declaration

DEFAULT = ROOT / "dbt_project" / "declarations" / "default.yml"
BASE = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
X = {"en": "x", "fr": "x"}
AGE = {"en": "age", "fr": "âge"}


def declared(change) -> dict:
    document = copy.deepcopy(BASE)
    change(document)
    return document


def error_of(document: dict) -> str:
    with pytest.raises(DeclarationError) as caught:
        parse_declaration(document, Path("shop.yml"))
    message = str(caught.value)
    assert "\n" not in message and message.startswith("shop.yml: ")
    return message


def test_the_default_declaration_is_the_seed_schema() -> None:
    declaration = load_declaration(DEFAULT)
    assert declaration.file_columns(required=True)[0] == "ID"
    assert len(declaration.file_columns(required=True)) == 10
    assert declaration.file_columns(required=False) == ("Segmentation",)
    roles = {c["name"]: c["role"] for c in declaration.columns}
    assert roles["spending_score"] == "ordinal" and roles["var_1"] == "profile" and roles["known_segment"] == "label"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["columns"][3].update(type="numbr"), r"columns[3] (Age).type: 'numbr' is not a type"),
        (lambda d: d["columns"][3].update(role="numerc"), r"columns[3] (Age).role: 'numerc' is not a role"),
        (lambda d: d["columns"][3]["label"].pop("fr"), r"columns[3] (Age).label.fr: missing"),
        (lambda d: d["columns"][3].pop("label"), r"columns[3] (Age).label: missing"),
        (lambda d: d["columns"][3].update(range=[110, 16]), r"columns[3] (Age).range: min 110 is above max 16"),
        (lambda d: d["columns"][3].update(colour="red"), r"columns[3] (Age).colour: unknown key"),
        (lambda d: d["columns"][1].update(role="numeric"), r"columns[1] (Gender).role: a category column cannot be"),
        (lambda d: d["columns"][3].update(impute="none"), r"columns[3] (Age).impute: a numeric feature needs values"),
        (lambda d: d["columns"][3].update(name="Age!"), r"columns[3] (Age).name: 'Age!' is not a warehouse name"),
        (lambda d: d["columns"][6].update(name="age"), r"columns[6] (Work_Experience).name: 'age' is taken"),
        (lambda d: d["columns"].pop(0), r"columns: declare exactly one column of type identifier"),
        (lambda d: d.update(version=2), r"version: 2 is not a known version"),
        (lambda d: d.update(derived=[{"name": "x", "derive": {"sum": ["age", "nope"]}, "label": X}]),
         r"derived[0] (x).derive.sum: 'nope' is not the name of a declared column"),
        (lambda d: d.update(derived=[{"name": "x", "derive": {"years_since": "age"}, "label": X}]),
         r"as_of: years_since needs a reference date"),
        (lambda d: d["deduplicate"]["latest_first"][0].update(column="height"),
         r"deduplicate.latest_first[0].column: 'height' is not the name of a declared column"),
    ],
)  # fmt: skip
def test_each_mistake_names_the_file_and_the_key(change, expected: str) -> None:
    assert expected in error_of(declared(change))


def test_derived_columns_and_defaults() -> None:
    document = {
        "version": 1,
        "as_of": "2024-01-31",
        "columns": [
            {"column": "Client", "type": "identifier"},
            {"column": "Year Birth", "type": "integer", "role": "ignored"},
            {"column": "Joined", "type": "date", "formats": ["%d/%m/%Y"]},
            {"column": "Wine €", "type": "number", "skewed": True, "label": {"en": "wine", "fr": "vin"}},
            {"column": "Meat", "type": "number", "label": {"en": "meat", "fr": "viande"}},
        ],
        "derived": [
            {"name": "age", "derive": {"years_since": "year_birth"}, "range": [16, 110], "label": AGE},
            {"name": "tenure_days", "derive": {"days_since": "joined"}, "label": {"en": "tenure", "fr": "ancienneté"}},
            {"name": "spend", "derive": {"sum": ["wine", "meat"]}, "label": {"en": "spend", "fr": "dépenses"}},
        ],
    }  # fmt: skip
    declaration = parse_declaration(document, Path("shop.yml"))
    names = [c["name"] for c in declaration.mart_columns()]
    assert names == ["customer_id", "wine", "meat", "age", "tenure_days", "spend"]
    by_name = {c["name"]: c for c in (*declaration.columns, *declaration.derived)}
    assert by_name["age"]["type"] == "integer" and by_name["age"]["impute"] == "median"
    assert by_name["spend"]["type"] == "number" and by_name["wine"]["skewed"]
    assert by_name["joined"]["in_mart"] is False and by_name["year_birth"]["in_mart"] is False
    assert declaration.spec["as_of"] == "2024-01-31"


def test_generated_contract_and_macro(tmp_path: Path) -> None:
    hostile = declared(lambda d: d["columns"][1]["levels"][0].update(value="{% endraw %}{{ 7*7 }}%'\""))
    declaration = parse_declaration(hostile, tmp_path / "hostile.yml")
    properties = yaml.safe_load(dbt_yaml.render(declaration))
    features = next(m for m in properties["models"] if m["name"] == "customer_features")
    assert features["config"]["contract"]["enforced"] is True
    roles = {c["name"]: c.get("config", {}).get("meta", {}).get("role") for c in features["columns"]}
    assert roles["spending_score_level"] == "ordinal" and roles["spending_score"] == "profile"
    # the imputed customers carry the same rules, checked as they are written (customer_features may be their view)
    imputed = next(m for m in properties["models"] if m["name"] == "int_customers_imputed")
    assert imputed["config"]["contract"]["enforced"] is True
    rules = {c["name"]: c.get("constraints") for c in imputed["columns"]}
    behaviour = {c["name"] for c in declaration.behaviour} | {"records_merged"}
    assert all(rules[c["name"]] == c.get("constraints") for c in features["columns"] if c["name"] not in behaviour)
    assert [c["name"] for c in imputed["columns"]][-1] == "spending_score_level"  # the model adds the ranks last
    macro = dbt_yaml.render_macro(declaration)
    assert macro.count("{% raw %}") == 1 and macro.count("{% endraw %}") == 1  # no value closes the raw block


def test_a_run_finds_its_declaration_by_the_files_name(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "declarations").mkdir(parents=True)
    (project / "declarations" / "shop.yml").write_text("version: 1\n", encoding="utf-8")
    assert find_declaration(project, "data/shop.csv") == project / "declarations" / "shop.yml"
    assert find_declaration(project, "data/other.csv.gz") == project / "declarations" / "default.yml"
    assert find_declaration(project, "x.csv", explicit=str(tmp_path / "mine.yml")) == tmp_path / "mine.yml"


def test_the_cli_stops_on_a_broken_declaration_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(declared(lambda d: d["columns"][3].update(role="numerc"))), encoding="utf-8")
    result = run_cli(pipeline_env(tmp_path, DECLARATION=str(broken)), "declare")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {broken}: columns[3] (Age).role: 'numerc' is not a role; "
        "use one of numeric, ordinal, categorical, label, profile, ignored."
    ]
    not_yaml = tmp_path / "not.yml"
    not_yaml.write_text("columns: [\n", encoding="utf-8")
    result = run_cli(pipeline_env(tmp_path, DECLARATION=str(not_yaml)), "declare")
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr
