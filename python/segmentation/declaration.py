"""The table declaration: one YAML file says what each column of the user's file is.

It is validated here, before anything runs, so that a mistake ends in one line that
names the file and the key; the normalised form (every default filled in) is what the
dbt macros read, from the `meta` of the `raw.customers` source that `dbt_yaml` writes.
The format is documented in docs/declaration.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

TYPES = ("identifier", "number", "integer", "boolean", "category", "date", "text")
ROLES = ("numeric", "ordinal", "categorical", "label", "profile", "ignored")
FEATURE_ROLES = ("numeric", "ordinal", "categorical")
IMPUTES = ("median", "most_frequent", "constant", "none")
DERIVATIONS = ("years_since", "days_since", "sum", "ratio", "difference")
LANGUAGES = ("en", "fr")
BUILTIN_MISSING = ("", "na", "n/a", "n.a.", "nan", "null", "none", "-", "?", "#n/a")
TRUE_SPELLINGS = ("yes", "y", "oui", "o", "true", "t", "1", "1.0", "vrai")
FALSE_SPELLINGS = ("no", "n", "non", "false", "f", "0", "0.0", "faux")
ID_NAME = "customer_id"
# names the generated models use themselves; a declared column may not take them
RESERVED = {
    "source_row_number", "source_line_number", "source_line", "records_merged", "quarantine_reason", "rule",
    "feature", "column_name", "source_value", "recency_rank", "segment_id", "distance_to_centroid", "run_id",
    "select", "from", "where", "group", "order", "by", "table", "case", "when", "end", "and", "or", "not",
    "null", "true", "false", "in", "is", "as", "on", "join", "limit", "union", "all", "distinct", "having",
}  # fmt: skip
ROLES_BY_TYPE = {
    "number": ("numeric", "profile", "ignored"),
    "integer": ("numeric", "ordinal", "profile", "ignored"),
    "boolean": ("categorical", "profile", "label", "ignored"),
    "category": ("categorical", "ordinal", "profile", "label", "ignored"),
    "date": ("ignored",),
    "text": ("label", "ignored"),
}
MART_TYPES = {"number": "double", "integer": "bigint", "boolean": "boolean", "category": "varchar", "text": "varchar"}
TOP_KEYS = {"version", "description", "as_of", "missing_values", "deduplicate", "columns", "derived", "orders"}
COLUMN_KEYS = {
    "column", "name", "type", "role", "required", "missing", "range", "levels", "ordered", "true", "false",
    "formats", "impute", "value", "fallback", "skewed", "label", "unit", "words", "description",
}  # fmt: skip
DERIVED_KEYS = (COLUMN_KEYS - {"column", "required", "missing", "levels", "ordered", "true", "false", "formats"}) | {
    "derive"
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class DeclarationError(UserError):
    """A declaration that cannot be used, with the file and the key at fault."""


@dataclass(frozen=True)
class Declaration:
    path: Path
    spec: dict[str, Any]  # the normalised declaration, JSON-able

    @property
    def columns(self) -> list[dict]:
        return self.spec["columns"]

    @property
    def derived(self) -> list[dict]:
        return self.spec["derived"]

    @property
    def orders(self) -> dict | None:
        """The `orders:` section (normalised), None when the run has no order lines."""
        return self.spec.get("orders")

    @property
    def behaviour(self) -> list[dict]:
        return self.spec.get("behaviour", [])

    def without_orders(self) -> Declaration:
        """The same declaration for a run given no order lines (ORDERS= unset)."""
        if self.orders is None:
            return self
        if not self.spec.get("customer_table", True):
            raise DeclarationError(f"{self.path} declares order lines only: give their file, e.g. ORDERS=orders.csv.")
        return Declaration(self.path, {**self.spec, "orders": None, "behaviour": []})

    def file_columns(self, required: bool) -> tuple[str, ...]:
        """Headers of the file's declared columns that must (or may) be present."""
        return tuple(c["column"] for c in self.columns if c["required"] is required)

    def mart_columns(self) -> list[dict]:
        """Declared, derived and behaviour columns that reach the marts, in declaration order."""
        return [c for c in (*self.columns, *self.derived, *self.behaviour) if c["in_mart"]]


def snake_case(header: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", header.strip())
    text = re.sub(r"[^0-9a-zA-Z]+", "_", _ascii(text)).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text or not text[0].isalpha():
        text = "c_" + text
    return text[:63]


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


class _Checker:
    """Walks the YAML and raises the first problem as '<file>: <key>: <problem>; <fix>'."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> None:
        raise DeclarationError(f"{self.path}: {key}: {problem}")

    def mapping(self, value: Any, key: str) -> Mapping:
        if not isinstance(value, Mapping):
            self.fail(key, f"expected a mapping (key: value), found {type(value).__name__}.")
        return value

    def sequence(self, value: Any, key: str) -> Sequence:
        if not isinstance(value, list):
            self.fail(key, f"expected a list, found {type(value).__name__}.")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value).strip() == "":
            self.fail(key, "expected a non-empty text.")
        return str(value).strip()

    def flag(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, found {value!r}.")
        return value

    def number(self, value: Any, key: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number or null, found {value!r}.")
        return value

    def keys(self, node: Mapping, allowed: set[str], key: str) -> None:
        unknown = sorted(set(map(str, node)) - allowed)
        if unknown:
            self.fail(f"{key}.{unknown[0]}", f"unknown key; the keys are {', '.join(sorted(allowed))}.")

    def languages(self, value: Any, key: str, required: bool) -> dict[str, str | None]:
        if value is None:
            if required:
                self.fail(
                    key, f"missing; give it in every language, e.g. {{en: ..., fr: ...}} ({', '.join(LANGUAGES)})."
                )
            return dict.fromkeys(LANGUAGES)
        if isinstance(value, str):
            self.fail(key, f"give it in every language as a mapping, e.g. {{en: {value}, fr: {value}}}.")
        node = self.mapping(value, key)
        self.keys(node, set(LANGUAGES), key)
        for lang in LANGUAGES:
            if node.get(lang) is None or str(node.get(lang)).strip() == "":
                self.fail(f"{key}.{lang}", f"missing; every language ({', '.join(LANGUAGES)}) needs its text.")
        return {lang: str(node[lang]).strip() for lang in LANGUAGES}


def _where(index: int, entry: Mapping, section: str) -> str:
    name = entry.get("column") or entry.get("name") if isinstance(entry, Mapping) else None
    return f"{section}[{index}]" + (f" ({name})" if name else "")


def _common(check: _Checker, entry: Mapping, where: str, column: dict) -> None:
    """Keys shared by declared and derived columns: role, ranges, imputation, words."""
    kind = column["type"]
    role_default = {"number": "numeric", "integer": "numeric", "boolean": "categorical", "date": "ignored"}.get(
        kind, "ordinal" if column.get("ordered") else "categorical" if kind == "category" else "ignored"
    )
    role = entry.get("role", role_default)
    if role not in ROLES:
        check.fail(f"{where}.role", f"{role!r} is not a role; use one of {', '.join(ROLES)}.")
    if role not in ROLES_BY_TYPE[kind]:
        check.fail(f"{where}.role", f"a {kind} column cannot be {role}; use one of {', '.join(ROLES_BY_TYPE[kind])}.")
    if role == "ordinal" and kind == "category" and not column.get("ordered"):
        check.fail(f"{where}.role", "an ordinal category needs `ordered: true` and its levels from low to high.")
    column["role"] = role
    low = high = None
    if "range" in entry:
        bounds = check.sequence(entry["range"], f"{where}.range")
        if len(bounds) != 2 or kind not in ("number", "integer"):
            check.fail(f"{where}.range", "a range is [min, max] on a number or integer column (either may be null).")
        low, high = (check.number(b, f"{where}.range") for b in bounds)
        if low is not None and high is not None and low > high:
            check.fail(f"{where}.range", f"min {low} is above max {high}.")
    column["range_min"], column["range_max"] = low, high
    default_impute = (
        "none" if role in ("label", "ignored") else "median" if kind in ("number", "integer") else "most_frequent"
    )
    impute = entry.get("impute", default_impute)
    if impute not in IMPUTES:
        check.fail(f"{where}.impute", f"{impute!r} is not an imputation; use one of {', '.join(IMPUTES)}.")
    if impute == "median" and kind not in ("number", "integer"):
        check.fail(f"{where}.impute", "median needs a number or integer column; use most_frequent or constant.")
    if impute == "none" and role in FEATURE_ROLES:
        check.fail(
            f"{where}.impute",
            f"a {role} feature needs values for every customer; use median, most_frequent or constant.",
        )
    if impute == "constant" and "value" not in entry:
        check.fail(f"{where}.value", "impute: constant needs the value to fill in, e.g. value: 0.")
    column["impute"] = impute
    column["impute_value"] = _typed(check, entry.get("value"), kind, f"{where}.value", column)
    fallback = entry.get("fallback")
    if fallback is None:
        fallback = {"number": low if (low or 0) > 0 else 0, "integer": low if (low or 0) > 0 else 0}.get(kind)
        if kind == "boolean":
            fallback = False
        if kind == "category":
            fallback = column["levels"][0]["value"] if column.get("levels") else "Unknown"
    column["fallback"] = _typed(check, fallback, kind, f"{where}.fallback", column)
    for key in ("impute_value", "fallback"):
        value = column[key]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and ((low is not None and value < low) or (high is not None and value > high)):
            check.fail(f"{where}.{'value' if key == 'impute_value' else key}", f"{value} lies outside the range.")
    column["skewed"] = check.flag(entry.get("skewed", False), f"{where}.skewed")
    if column["skewed"] and kind not in ("number", "integer"):
        check.fail(f"{where}.skewed", "only number and integer columns can be skewed (log before scaling).")
    needs_words = role not in ("ignored",)
    label = check.languages(entry.get("label"), f"{where}.label", required=needs_words)
    unit = check.languages(entry.get("unit"), f"{where}.unit", required=False)
    words = check.mapping(entry.get("words", {}), f"{where}.words")
    check.keys(words, {"high", "low"}, f"{where}.words")
    high_words = check.languages(words.get("high"), f"{where}.words.high", required=False)
    low_words = check.languages(words.get("low"), f"{where}.words.low", required=False)
    for lang in LANGUAGES:
        column[f"label_{lang}"] = label[lang]
        column[f"unit_{lang}"] = unit[lang]
        column[f"high_{lang}"] = high_words[lang]
        column[f"low_{lang}"] = low_words[lang]
    column["description"] = str(entry.get("description") or label["en"] or column["name"]).strip()
    column["in_mart"] = role != "ignored" and kind not in ("date",)
    column["mart_type"] = MART_TYPES.get(kind)


def _typed(check: _Checker, value: Any, kind: str, key: str, column: Mapping) -> Any:
    """A constant (imputation value, fallback) checked against the column's type."""
    if value is None:
        return None
    if kind in ("number", "integer"):
        number = check.number(value, key)
        return int(number) if kind == "integer" and float(number).is_integer() else number
    if kind == "boolean":
        return check.flag(value, key)
    text = check.text(value, key)
    levels = [level["value"] for level in column.get("levels") or []]
    if levels and text not in levels and key.endswith(".value"):
        check.fail(key, f"{text!r} is not one of the declared levels ({', '.join(levels)}).")
    return text


def _levels(check: _Checker, value: Any, where: str) -> list[dict]:
    levels: list[dict] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(check.sequence(value, where)):
        key = f"{where}[{index}]"
        node = {"value": item} if not isinstance(item, Mapping) else item
        check.keys(node, {"value", "spellings", *LANGUAGES}, key)
        label = check.text(node.get("value"), f"{key}.value")
        spellings = [label] + [
            check.text(s, f"{key}.spellings") for s in check.sequence(node.get("spellings", []), f"{key}.spellings")
        ]
        keys = []
        for spelling in spellings:
            folded = " ".join(spelling.split()).lower()
            if folded in seen and seen[folded] != label:
                check.fail(f"{key}.spellings", f"{spelling!r} is already a spelling of {seen[folded]!r}.")
            seen[folded] = label
            if folded not in keys:
                keys.append(folded)
        levels.append({
            "value": label,
            "keys": keys,
            **{f"label_{lang}": str(node.get(lang) or label) for lang in LANGUAGES},
        })  # fmt: skip
    if not levels:
        check.fail(where, "declare at least one level, or leave `levels` out to accept any value.")
    if len({level["value"] for level in levels}) != len(levels):
        check.fail(where, "a level is declared twice.")
    return levels


def _spellings(check: _Checker, value: Any, key: str) -> list[str]:
    return [" ".join(check.text(v, key).split()).lower() for v in check.sequence(value, key)]


def _column(check: _Checker, index: int, entry: Any, extra_missing: list[str]) -> dict:
    where = _where(index, entry, "columns")
    entry = check.mapping(entry, where)
    check.keys(entry, COLUMN_KEYS, where)
    header = check.text(entry.get("column"), f"{where}.column")
    kind = entry.get("type")
    if kind not in TYPES:
        check.fail(f"{where}.type", f"{kind!r} is not a type; use one of {', '.join(TYPES)}.")
    column: dict[str, Any] = {"column": header, "type": kind, "derive": None}
    column["required"] = check.flag(entry.get("required", True), f"{where}.required")
    column["missing"] = sorted(
        {*BUILTIN_MISSING, *extra_missing, *_spellings(check, entry.get("missing", []), f"{where}.missing")}
    )
    if kind == "identifier":
        if "name" in entry and entry["name"] != ID_NAME:
            check.fail(
                f"{where}.name", f"the identifier is always called {ID_NAME} in the warehouse; leave `name` out."
            )
        extra = set(map(str, entry)) - {"column", "type", "missing", "description"}
        if extra:
            check.fail(f"{where}.{sorted(extra)[0]}", "the identifier takes only column, type and missing.")
        column.update(name=ID_NAME, role="id", in_mart=True, mart_type="varchar", impute="none", skewed=False,
                      description=str(entry.get("description") or "Customer identifier").strip())  # fmt: skip
        return column
    name = entry.get("name", snake_case(header))
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        check.fail(
            f"{where}.name",
            f"{name!r} is not a warehouse name; use lower-case letters, digits and _ (e.g. {snake_case(str(name))}).",
        )
    column["name"] = name
    if kind == "category" and "levels" in entry:
        column["levels"] = _levels(check, entry["levels"], f"{where}.levels")
    else:
        column["levels"] = []
        if "levels" in entry:
            check.fail(f"{where}.levels", f"only category columns have levels ({header} is {kind}).")
    column["ordered"] = check.flag(entry.get("ordered", False), f"{where}.ordered")
    if column["ordered"] and not column["levels"]:
        check.fail(f"{where}.ordered", "an ordered category needs its levels listed from low to high.")
    if ("true" in entry or "false" in entry) and kind != "boolean":
        check.fail(f"{where}.true", "true/false spellings are for boolean columns.")
    column["true_keys"] = sorted({*TRUE_SPELLINGS, *_spellings(check, entry.get("true", []), f"{where}.true")})
    column["false_keys"] = sorted({*FALSE_SPELLINGS, *_spellings(check, entry.get("false", []), f"{where}.false")})
    if set(column["true_keys"]) & set(column["false_keys"]):
        check.fail(f"{where}.true", "a spelling cannot mean both true and false.")
    formats = entry.get("formats", ["%Y-%m-%d"])
    column["formats"] = [check.text(f, f"{where}.formats") for f in check.sequence(formats, f"{where}.formats")]
    if "formats" in entry and kind != "date":
        check.fail(f"{where}.formats", "formats are for date columns.")
    _common(check, entry, where, column)
    if column["role"] == "label":
        column["impute"] = "none"
    return column


def _derived(check: _Checker, index: int, entry: Any, declared: dict[str, dict]) -> dict:
    where = _where(index, entry, "derived")
    entry = check.mapping(entry, where)
    check.keys(entry, DERIVED_KEYS, where)
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        check.fail(f"{where}.name", f"{name!r} is not a warehouse name; use lower-case letters, digits and _.")
    derive = check.mapping(entry.get("derive"), f"{where}.derive")
    if len(derive) != 1 or next(iter(derive)) not in DERIVATIONS:
        check.fail(
            f"{where}.derive",
            f"give exactly one of {', '.join(DERIVATIONS)}, e.g. derive: {{years_since: year_birth}}.",
        )
    kind, argument = next(iter(derive.items()))
    names = (
        [argument]
        if kind in ("years_since", "days_since")
        else list(check.sequence(argument, f"{where}.derive.{kind}"))
    )
    wanted = {"years_since": 1, "days_since": 1, "ratio": 2, "difference": 2}.get(kind)
    if (wanted and len(names) != wanted) or (kind == "sum" and len(names) < 2):
        check.fail(f"{where}.derive.{kind}", f"{kind} takes {wanted or 'two or more'} column name(s).")
    types = []
    for used in names:
        source = declared.get(str(used))
        if source is None:
            check.fail(
                f"{where}.derive.{kind}",
                f"{used!r} is not the name of a declared column (names: {', '.join(declared)}).",
            )
        allowed = ("date",) if kind == "days_since" else ("number", "integer")
        if source["type"] not in allowed:
            check.fail(
                f"{where}.derive.{kind}", f"{used} is {source['type']}; {kind} needs {' or '.join(allowed)} columns."
            )
        types.append(source["type"])
    result = (
        "integer"
        if kind in ("years_since", "days_since") or (kind in ("sum", "difference") and set(types) == {"integer"})
        else "number"
    )
    if "type" in entry:
        if entry["type"] not in ("number", "integer"):
            check.fail(f"{where}.type", f"{entry['type']!r}: a derived column is a number or an integer.")
        result = entry["type"]
    column: dict[str, Any] = {
        "name": name,
        "column": None,
        "type": result,
        "derive": {"kind": kind, "columns": [str(n) for n in names]},
        "levels": [],
        "ordered": False,
        "required": True,
    }
    _common(check, entry, where, column)
    return column


def parse_declaration(document: Any, path: Path) -> Declaration:
    check = _Checker(path)
    document = check.mapping(document, "top level")
    check.keys(document, TOP_KEYS, "top level")
    if document.get("version") != 1:
        check.fail("version", f"{document.get('version')!r} is not a known version; write version: 1.")
    extra_missing = _spellings(check, document.get("missing_values", []), "missing_values")
    orders, behaviour = None, []
    if document.get("orders") is not None:  # order lines (docs/declaration.md, "Order lines")
        from .orders_declaration import parse_orders

        orders, behaviour = parse_orders(check, document["orders"], extra_missing, _common)
    has_columns = document.get("columns") is not None or orders is None
    identifier = {"column": orders["customer"]["column"], "type": "identifier"} if orders else {}
    entries = document.get("columns") if has_columns else [identifier]
    columns = [_column(check, i, entry, extra_missing) for i, entry in enumerate(check.sequence(entries, "columns"))]
    identifiers = [c for c in columns if c["type"] == "identifier"]
    if len(identifiers) != 1:
        check.fail("columns", f"declare exactly one column of type identifier (found {len(identifiers)}).")
    by_name: dict[str, dict] = {}
    headers: set[str] = set()
    for index, column in enumerate(columns):
        key = re.sub(r"[\s_]+", "", column["column"]).casefold()
        if key in headers:
            check.fail(f"columns[{index}].column", f"{column['column']!r} is declared twice.")
        headers.add(key)
        _claim(check, by_name, column, f"columns[{index}] ({column['column']}).name")
    derived = [
        _derived(check, i, e, dict(by_name))
        for i, e in enumerate(check.sequence(document.get("derived", []) or [], "derived"))
    ]
    for index, column in enumerate(derived):
        _claim(check, by_name, column, f"derived[{index}] ({column['name']}).name")
    for column in behaviour:
        _claim(check, by_name, column, f"orders.features.{column['name']} (a behaviour column of the orders)")
    labels = [c for c in columns if c["role"] == "label"]
    if len(labels) > 1:
        check.fail("columns", f"only one column can have role label (found {', '.join(c['column'] for c in labels)}).")
    if not any(c["role"] in FEATURE_ROLES for c in (*columns, *derived, *behaviour)):
        check.fail("columns", "no column has a clustering role (numeric, ordinal or categorical): give at least one.")
    as_of = document.get("as_of")
    if as_of is not None:
        try:
            as_of = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))
        except ValueError:
            check.fail("as_of", f"{as_of!r} is not a date; write it as YYYY-MM-DD.")
        as_of = as_of.isoformat()
    dates = [c["name"] for c in columns if c["type"] == "date"]
    if as_of is None and any(d["derive"]["kind"] in ("years_since", "days_since") for d in derived) and not dates:
        check.fail(
            "as_of", "years_since needs a reference date and the file declares no date column: set as_of: YYYY-MM-DD."
        )
    order = []
    dedupe = check.mapping(document.get("deduplicate", {}) or {}, "deduplicate")
    check.keys(dedupe, {"latest_first"}, "deduplicate")
    for index, item in enumerate(check.sequence(dedupe.get("latest_first", []) or [], "deduplicate.latest_first")):
        key = f"deduplicate.latest_first[{index}]"
        node = check.mapping(item, key)
        check.keys(node, {"column", "order"}, key)
        used = node.get("column")
        if used not in by_name or used == ID_NAME:
            check.fail(f"{key}.column", f"{used!r} is not the name of a declared column.")
        direction = node.get("order", "desc")
        if direction not in ("asc", "desc"):
            check.fail(f"{key}.order", f"{direction!r}: use asc or desc.")
        order.append({"name": used, "order": direction})
    spec = {
        "version": 1,
        "description": str(document.get("description") or "").strip(),
        "as_of": as_of,
        "date_columns": dates,
        "latest_first": order,
        "columns": columns,
        "derived": derived,
        "customer_table": has_columns,
        "orders": orders,
        "behaviour": behaviour,
    }
    return Declaration(path=path, spec=spec)


def _claim(check: _Checker, by_name: dict[str, dict], column: dict, key: str) -> None:
    name = column["name"]
    clashes = name in by_name or (name.endswith("_level") and name[: -len("_level")] in by_name)
    clashes = clashes or (name == ID_NAME and column["type"] != "identifier")
    generated = name.startswith("source_") or (name.startswith("is_") and name.endswith("_imputed")) or "__" in name
    if clashes or name in RESERVED or generated:
        check.fail(key, f"{name!r} is taken (by another column or by the generated models); choose another name.")
    by_name[name] = column
    if column.get("ordered"):
        by_name[f"{name}_level"] = column


def load_declaration(path: Path) -> Declaration:
    """Read and validate a declaration file."""
    path = Path(path)
    if not path.is_file():
        raise DeclarationError(f"{path}: no such declaration; write one with `make init DATA=<your file>`.")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "the file"
        raise DeclarationError(
            f"{path}: {where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax."
        ) from None
    return parse_declaration(document, path)


def find_declaration(project_dir: Path, data: str | None, explicit: str | None = None) -> Path:
    """The declaration a run uses: DECLARATION=, else <data stem>.yml if it exists, else default.yml."""
    if explicit:
        return Path(explicit).resolve()
    folder = project_dir / "declarations"
    if data:
        name = Path(data).name
        for suffix in (".gz", ".csv", ".parquet", ".tsv", ".txt"):
            name = name.removesuffix(suffix)
        own = folder / f"{name}.yml"
        if own.is_file():
            return own
    return folder / "default.yml"


def declaration_of(warehouse: Path) -> str:
    """The declaration the data of a published warehouse were loaded with (for `make score`)."""
    import duckdb

    if not Path(warehouse).is_file():
        raise DeclarationError(f"{warehouse} does not exist: run `make all` first, then score new files.")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select declaration from raw.load_metadata").fetchall()
    if not rows or not rows[0][0]:
        raise DeclarationError(f"{warehouse} records no declaration: run `make all` again, then score.")
    return str(rows[0][0])
