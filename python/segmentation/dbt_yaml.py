"""What a declaration implies for dbt, written as dbt's own files.

Two generated files, never edited: `macros/declared/declaration.sql`, the macro
`declaration()` that returns the normalised declaration (every model that depends on
the user's columns loops over it; a macro works at parse time and in unit tests alike),
and `models/declared/_declared.yml`, the `raw` source and the enforced contracts of the
marts whose columns follow the declaration. Each is rewritten only when its content
changes, so dbt's partial parsing keeps working between runs on the same declaration.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .declaration import ID_NAME, Declaration

GENERATED = Path("models") / "declared" / "_declared.yml"
MACRO = Path("macros") / "declared" / "declaration.sql"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _quoted(name: str) -> str:
    # declared names are plain lower-case identifiers and never keywords (declaration.RESERVED)
    return name


def _contract_columns(declaration: Declaration, constrained: bool) -> list[dict]:
    """The declared columns as the marts hold them: types, meta roles, and their rules as constraints.

    customer_features (`constrained`) carries the label column too; the profiles do not.
    """
    columns: list[dict] = []
    for column in declaration.mart_columns():
        name = column["name"]
        if name == ID_NAME or (column["role"] == "label" and not constrained):
            continue
        meta: dict[str, Any] = {"role": column["role"], "declared_type": column["type"]}
        if column["skewed"]:
            meta["skewed"] = True
        role = column["role"]
        entry: dict[str, Any] = {
            "name": name,
            "data_type": column["mart_type"],
            "description": column["description"],
            "config": {"meta": meta},
        }
        constraints = []
        if constrained and column["impute"] != "none":
            constraints.append({"type": "not_null"})
        if constrained:
            low, high = column["range_min"], column["range_max"]
            bounds = [f"{_quoted(name)} >= {low}"] if low is not None else []
            bounds += [f"{_quoted(name)} <= {high}"] if high is not None else []
            if bounds:
                constraints.append({"type": "check", "expression": " and ".join(bounds)})
            if column["levels"]:
                values = ", ".join(_literal(level["value"]) for level in column["levels"])
                constraints.append({"type": "check", "expression": f"{_quoted(name)} in ({values})"})
        if constraints:
            entry["constraints"] = constraints
        if role == "ordinal" and column["type"] == "category":
            # the labels are profiled; their codes are what the clustering scales
            entry["config"]["meta"] = {**meta, "role": "profile"}
            columns.append(entry)
            level = {
                "name": f"{name}_level",
                "data_type": "integer",
                "description": f"{column['description']} as a rank, 0 = {column['levels'][0]['value']}.",
                "config": {"meta": {"role": "ordinal", "declared_type": "integer"}},
            }
            if constrained:
                level["constraints"] = [
                    {"type": "not_null"},
                    {
                        "type": "check",
                        "expression": f"{_quoted(name + '_level')} between 0 and {len(column['levels']) - 1}",
                    },
                ]
            columns.append(level)
            continue
        columns.append(entry)
    return columns


def _id_column(constrained: bool = True, **extra: Any) -> dict:
    column = {"name": ID_NAME, "data_type": "varchar", "description": "Customer identifier; the grain."}
    if constrained:
        column["constraints"] = [{"type": "not_null"}]
    return {**column, **extra}


def _customer_features(declaration: Declaration) -> dict:
    return {
        "name": "customer_features",
        "description": (
            "One row per customer: cleaned, deduplicated and imputed features, the table the clustering step reads. "
            "Generated from the declaration " + declaration.path.name + "; each column's meta.role is the contract "
            "with Python (numeric and ordinal are scaled, categorical one-hot encoded, profile kept for the report)."
        ),
        "config": {"contract": {"enforced": True}},
        "columns": [
            _id_column(config={"meta": {"role": "id"}}, data_tests=["unique"]),
            *_contract_columns(declaration, constrained=True),
            {
                "name": "records_merged",
                "data_type": "bigint",
                "description": "Input records merged into this customer (1 = exported once, 0 = in the orders only).",
                "constraints": [{"type": "not_null"}, {"type": "check", "expression": "records_merged >= 0"}],
            },
        ],
    }


def _int_customers_imputed(declaration: Declaration) -> dict:
    """The imputed customers, with the attributes' rules as constraints: DuckDB checks them as it
    writes this table, so customer_features can be a view of it (without order lines)."""
    behaviour = {column["name"] for column in declaration.behaviour or []}
    ranks = {
        f"{column['name']}_level"
        for column in declaration.mart_columns()
        if column["role"] == "ordinal" and column["type"] == "category"
    }
    attributes, levels = [], []  # the model adds the ranks last
    for column in _contract_columns(declaration, constrained=True):
        if column["name"] not in behaviour:
            entry = {key: value for key, value in column.items() if key != "config"}
            (levels if column["name"] in ranks else attributes).append(entry)
    flags = [
        {"name": f"is_{column['name']}_imputed", "data_type": "boolean", "description": "The value was filled in."}
        for column in declaration.mart_columns()
        if column["name"] != ID_NAME and column["name"] not in behaviour and column["impute"] != "none"
    ]
    return {
        "name": "int_customers_imputed",
        "description": (
            "One row per customer, gaps filled as each column declares (median, most frequent value with ties to "
            "the alphabetically first, a constant, or none); `is_<name>_imputed` flags say which values were filled "
            "in. A column with no value at all takes its declared fallback, becomes constant, is flagged by "
            "marts.data_quality_columns, and the clustering step leaves it out. Ordered categories get their rank, "
            "`<name>_level`. The declared rules (no missing value where one is imputed, ranges, levels) are its "
            "contract's constraints, checked as the table is written: customer_features reads it as it stands."
        ),
        "config": {"contract": {"enforced": True}},
        "columns": [
            _id_column(),
            *attributes,
            *flags,
            {"name": "records_merged", "data_type": "bigint", "description": "Input records merged into it."},
            {"name": "source_row_number", "data_type": "bigint", "description": "The latest record's row."},
            *levels,
        ],
    }


def _customer_segments(declaration: Declaration) -> dict:
    # A view on DuckDB (customer_segments.sql), which enforces the columns and their types but
    # no constraint: the rules are segment_assignments' own (one row per customer, a segment
    # from 1, a distance, the run), tested once on that source in _sources.yml. Its customers
    # come from customer_features (unique, not null) through an inner join, so those rules are
    # this model's too.
    return {
        "name": "customer_segments",
        "description": (
            "One row per customer of the latest run: its segment, then the features it was profiled on "
            "(customer_features joined with segmentation.segment_assignments, whose rules are tested on the source)."
        ),
        "config": {"contract": {"enforced": True}},
        "columns": [
            _id_column(constrained=False),
            {"name": "segment_id", "data_type": "integer", "description": "Segment number, from 1."},
            {
                "name": "distance_to_centroid",
                "data_type": "double",
                "description": "Distance to the segment centre in the encoded feature space (0 or more).",
            },
            {"name": "run_id", "data_type": "varchar", "description": "The run."},
            *_contract_columns(declaration, constrained=False),
        ],
    }


def _customer_quarantine(declaration: Declaration) -> dict:
    fixed = [
        ("source_row_number", "bigint", "Input row position; the grain.", True),
        ("customer_id", "varchar", "Cleaned identifier, NULL when missing.", False),
        ("quarantine_reason", "varchar", "The first validation rule the row breaks.", True),
        ("rule", "varchar", "empty_row, malformed_row, missing_id, unparseable, out_of_range or unknown_level.", True),
        ("feature", "varchar", "The warehouse column the rule is about (NULL for row rules).", False),
        ("column_name", "varchar", "The file's column whose value broke the rule (NULL for row rules).", False),
        ("source_value", "varchar", "That value exactly as exported (a malformed row's raw text).", False),
        ("source_line_number", "bigint", "For a malformed_row, the line of the file where it starts.", False),
        ("source_line", "varchar", "For a malformed_row, the record's raw text.", False),
    ]
    columns = [
        {
            "name": name,
            "data_type": kind,
            "description": text,
            **({"constraints": [{"type": "not_null"}]} if required else {}),
        }
        for name, kind, text, required in fixed
    ]
    for column in declaration.columns:
        columns.append(
            {
                "name": f"source_{column['name']}",
                "data_type": "varchar",
                "description": f"The row's {column['column']} exactly as read from the file, as text.",
            }
        )
    return {
        "name": "customer_quarantine",
        "description": (
            "One row per input row that cannot be used, with its reason and its values as exported; "
            "the rows of int_customers_validated with a reason, whose grain test covers them, and "
            "their values joined back from stg_customers (the validated table keeps typed values only)."
        ),
        "config": {"contract": {"enforced": True}},
        "columns": columns,
    }


def _raw_source(declaration: Declaration) -> dict:
    # source_row_number is the grain of every raw table; it is tested once per table of the
    # file, after the union of parsed and rejected records (int_customers_validated,
    # int_orders_validated), where one test covers both sources
    columns: list[dict] = [{"name": "source_row_number", "description": "1-based position of the row in the file."}]
    for column in declaration.columns:
        columns.append(
            {"name": column["column"], "description": column.get("description") or column["column"], "quote": True}
        )
    return {
        "name": "raw",
        "schema": "raw",
        "description": "The input file as loaded by `python -m segmentation ingest`, every column as text.",
        "tables": [
            {
                "name": "customers",
                "description": f"One row per row of the input file, declared by {declaration.path.name}.",
                "config": {"meta": {"declaration_file": str(declaration.path)}},
                "columns": columns,
            },
            {
                "name": "customers_rejected",
                "description": "Records of the file that could not be split into the header's fields, as raw text.",
            },
            {"name": "load_metadata", "description": "One row describing the last load."},
            {"name": "load_columns", "description": "One row per column of the input file, in file order."},
            *_orders_tables(declaration),
        ],
    }


def _orders_tables(declaration: Declaration) -> list[dict]:
    """raw.orders (empty when the run has no order lines: the order models then give no rows)."""
    orders = declaration.orders or {}
    columns: list[dict] = [{"name": "source_row_number"}]
    columns += [
        {"name": orders[key]["column"], "description": f"The order line's {key}.", "quote": True}
        for key in ("customer", "order", "date", "amount", "quantity", "price", "category", "channel", "country",
                    "product")
        if orders.get(key)
    ]  # fmt: skip
    return [
        {"name": "orders", "description": "One row per order line of ORDERS=, every column as text.",
         "columns": columns},
        {"name": "orders_rejected", "description": "Order lines that could not be split into the header's fields."},
        {"name": "orders_load_metadata", "description": "One row describing the last load of order lines."},
    ]  # fmt: skip


def render(declaration: Declaration) -> str:
    document = {
        "version": 2,
        "sources": [_raw_source(declaration)],
        "models": [
            _int_customers_imputed(declaration),
            _customer_features(declaration),
            _customer_segments(declaration),
            _customer_quarantine(declaration),
        ],
    }
    header = (
        f"# Generated from {declaration.path} by `python -m segmentation declare`: do not edit.\n"
        "# Edit the declaration instead; docs/declaration.md describes it.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def render_macro(declaration: Declaration) -> str:
    """The macro returning the declaration. Its JSON sits in a raw block, so no text from the
    user's file is ever read as Jinja; a '%' inside a string is escaped so that no value can
    close that block."""
    text = json.dumps(declaration.spec, ensure_ascii=False, sort_keys=True).replace("%", "\\u0025")
    name = re.sub(r"[^\w.-]", "_", declaration.path.name)
    return (
        f"{{#- Generated from {name} by `python -m segmentation declare`: do not edit. -#}}\n"
        "{% macro declaration() -%}\n"
        "    {%- set text -%}{% raw %}" + text + "{% endraw %}{%- endset -%}\n"
        "    {{ return(fromjson(text)) }}\n"
        "{%- endmacro %}\n"
    )


def _replace(target: Path, text: str) -> None:
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, target)


def write(declaration: Declaration, project_dir: Path) -> Path:
    """Write the generated macro and properties file; each untouched when its content is the same."""
    _replace(project_dir / MACRO, render_macro(declaration))
    target = project_dir / GENERATED
    _replace(target, render(declaration))
    return target
