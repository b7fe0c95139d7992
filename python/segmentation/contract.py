"""The dbt ↔ Python contract, read from dbt's own artefacts.

The mart's YAML gives each column a `meta.role`; dbt compiles it into
`target/manifest.json`. Reading roles from there (never from column names written
in Python) means a new feature is added in dbt alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

ROLES = ("id", "numeric", "ordinal", "categorical", "label", "profile")
FEATURE_MART = "customer_features"
# dbt_project.yml's tag of the order-line models and checks: a run given no order lines builds none
# of them (`--exclude tag:order_lines`) and drops what an earlier run built of them
ORDER_LINES = "order_lines"
EXCLUDE_ORDER_LINES = ("--exclude", f"tag:{ORDER_LINES}")  # dbt build's arguments for a run without them


@dataclass(frozen=True)
class FeatureContract:
    """Which mart column plays which part in the clustering."""

    relation: str
    id_column: str
    numeric: tuple[str, ...]
    ordinal: tuple[str, ...]
    categorical: tuple[str, ...]
    label: str | None = None
    skewed: tuple[str, ...] = ()  # numeric features log-transformed (log1p) before scaling

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.ordinal + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns to read: the id first, then every feature (and the label if any)."""
        extra = (self.label,) if self.label else ()
        return (self.id_column, *self.features, *extra)


def _column_meta(column: dict) -> dict:
    # dbt ≥ 1.10 keeps column meta under `config`; older manifests at top level.
    return {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}


def load_contract(manifest_path: Path, model_name: str = FEATURE_MART) -> FeatureContract:
    """Read the feature roles of `model_name` from a compiled dbt manifest."""
    if not manifest_path.exists():
        raise UserError(f"{manifest_path} not found: run the dbt step first (make mart).")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    nodes = [n for n in manifest["nodes"].values() if n.get("resource_type") == "model" and n["name"] == model_name]
    return contract_of(nodes[0] if nodes else None, model_name)


def contract_from_manifest(manifest: Any, model_name: str = FEATURE_MART) -> FeatureContract:
    """The same contract from dbt's manifest in memory (`make all` runs dbt in its own process:
    the segment step need not wait for manifest.json to be written and read back)."""
    nodes = [n for n in manifest.nodes.values() if str(n.resource_type) == "model" and n.name == model_name]
    return contract_of(nodes[0].to_dict(omit_none=True) if nodes else None, model_name)


def contract_of(node: dict | None, model_name: str = FEATURE_MART) -> FeatureContract:
    """The feature roles of one model node (as manifest.json holds it)."""
    if node is None:
        raise UserError(f"the dbt manifest has no model named {model_name!r}: check dbt_project/models/marts.")
    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    skewed: list[str] = []
    for name, column in node["columns"].items():
        meta = _column_meta(column)
        role = meta.get("role")
        if meta.get("skewed") and role in ("numeric", "ordinal"):
            skewed.append(name)
        if role is None:
            continue
        if role not in ROLES:
            raise UserError(f"column {name!r} of {model_name} has meta role {role!r}; use one of {', '.join(ROLES)}.")
        roles[role].append(name)
    if len(roles["id"]) != 1:
        raise UserError(f"{model_name} must declare exactly one column with meta role 'id' (found {roles['id']}).")
    if len(roles["label"]) > 1:
        raise UserError(f"{model_name} declares several 'label' columns ({roles['label']}); keep one.")
    if not (roles["numeric"] or roles["ordinal"] or roles["categorical"]):
        raise UserError(f"{model_name} declares no feature column (meta role numeric, ordinal or categorical).")
    relation = f"{node['schema']}.{node.get('alias') or node['name']}"
    return FeatureContract(
        relation=relation,
        id_column=roles["id"][0],
        numeric=tuple(roles["numeric"]),
        ordinal=tuple(roles["ordinal"]),
        categorical=tuple(roles["categorical"]),
        label=roles["label"][0] if roles["label"] else None,
        skewed=tuple(skewed),
    )


def tagged_models(nodes: Any, tag: str = ORDER_LINES) -> list[tuple[str, str]]:
    """(schema, name) of the models carrying `tag`: nodes as manifest.json holds them, or dbt's in memory."""
    found = []
    for node in nodes:
        fields = node if isinstance(node, dict) else vars(node)
        if fields["resource_type"] == "model" and tag in fields["tags"]:
            found.append((fields["schema"], fields["alias"]))
    return found


def order_line_relations(manifest_path: Path) -> list[tuple[str, str]]:
    """(schema, name) of the order-line models, from dbt's manifest.json."""
    return tagged_models(json.loads(manifest_path.read_text(encoding="utf-8"))["nodes"].values())
