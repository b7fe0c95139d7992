"""The `orders:` section of a declaration: which columns of an order-lines file are the
customer, the order, its date and its value, and the behaviour columns they give.

Validated with the same one-line errors as the rest of the declaration. The behaviour
columns (recency, frequency, monetary value…) are full column dicts, like derived ones,
so that contracts, the feature catalog, the traits and the report follow them with no
further code. Their labels and words come from the small vocabulary below; a
declaration may override any of them under `orders.features.<name>`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from .declaration import BUILTIN_MISSING, _spellings, snake_case

ROLE_KEYS = ("customer", "order", "date", "amount", "quantity", "price", "category", "channel", "country", "product")
ORDERS_KEYS = {*ROLE_KEYS, "categories", "channels", "cancelled_prefix", "missing_values", "as_of", "features"}
FEATURE_KEYS = {"role", "skewed", "label", "unit", "words", "description", "when_no_orders", "range"}
MAX_SHARE_LEVELS = 8


def _words(high_en: str, high_fr: str, low_en: str, low_fr: str) -> dict:
    return {"high": {"en": high_en, "fr": high_fr}, "low": {"en": low_en, "fr": low_fr}}


# name: (type, skewed, label, unit, words, value for a customer without orders: a number, or "max" / "median"
# of the customers with orders; a customer who never ordered is not "new", so tenure takes the median)
BEHAVIOUR: dict[str, tuple] = {
    "recency_days": (
        "integer", False, {"en": "days since the last order", "fr": "jours depuis la dernière commande"},
        {"en": "days", "fr": "jours"}, _words("lapsed", "inactifs", "recent", "récents"), "max",
    ),
    "frequency": (
        "integer", True, {"en": "orders", "fr": "commandes"}, {"en": "orders", "fr": "commandes"},
        _words("frequent", "fidèles", "one-time", "occasionnels"), 0,
    ),
    "monetary": (
        "number", True, {"en": "net spend", "fr": "dépense nette"}, None,
        _words("big spenders", "gros acheteurs", "small spenders", "petits acheteurs"), 0,
    ),
    "tenure_days": (
        "integer", False, {"en": "days since the first order", "fr": "jours depuis la première commande"},
        {"en": "days", "fr": "jours"}, _words("long-standing", "anciens", "new", "nouveaux"), "median",
    ),
    "average_order_value": (
        "number", True, {"en": "average order value", "fr": "panier moyen"}, None,
        _words("large baskets", "gros paniers", "small baskets", "petits paniers"), 0,
    ),
    "return_rate": (
        "number", False, {"en": "share of spend returned", "fr": "part des achats retournée"}, None,
        _words("returners", "retourneurs", "rarely returning", "retournant peu"), 0,
    ),
}  # fmt: skip


def _role_column(check: Any, node: Any, key: str) -> dict | None:
    """`customer: CustomerID` or `customer: {column: CustomerID}` (dates also take `formats`)."""
    if node is None:
        return None
    if not isinstance(node, Mapping):
        node = {"column": node}
    allowed = {"column", "formats"} if key.endswith(".date") else {"column"}
    check.keys(node, allowed, key)
    out = {"column": check.text(node.get("column"), f"{key}.column")}
    if key.endswith(".date"):
        formats = node.get("formats", ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d"])
        out["formats"] = [check.text(f, f"{key}.formats") for f in check.sequence(formats, f"{key}.formats")]
    return out


def _share_levels(check: Any, value: Any, key: str) -> list[dict]:
    levels = []
    for index, item in enumerate(check.sequence(value or [], key)):
        text = check.text(item, f"{key}[{index}]")
        levels.append({"value": text, "key": " ".join(text.split()).lower(), "name": snake_case(text)})
    if len(levels) > MAX_SHARE_LEVELS:
        check.fail(key, f"{len(levels)} levels; keep at most {MAX_SHARE_LEVELS} (the rest count as other).")
    return levels


def _share_entry(level: dict, kind: str) -> dict:
    en, fr = level["value"], level["value"]
    label = (
        {"en": f"share of spend on {en}", "fr": f"part des dépenses en {fr}"}
        if kind == "category"
        else {"en": f"share of spend via {en}", "fr": f"part des dépenses via {fr}"}
    )
    words = _words(f"{en} buyers", f"acheteurs {fr}", f"rarely {en}", f"peu {fr}")
    return {"type": "number", "skewed": False, "label": label, "words": words, "range": [0, 1], "when_no_orders": 0}


def parse_orders(
    check: Any, node: Any, extra_missing: list[str], common: Callable[[Any, Mapping, str, dict], None]
) -> tuple[dict, list[dict]]:
    """The normalised `orders` spec and its behaviour columns (full column dicts)."""
    node = check.mapping(node, "orders")
    check.keys(node, ORDERS_KEYS, "orders")
    spec: dict[str, Any] = {key: _role_column(check, node.get(key), f"orders.{key}") for key in ROLE_KEYS}
    for key in ("customer", "order", "date"):
        if spec[key] is None:
            check.fail(f"orders.{key}", f"missing; name the file's {key} column, e.g. {key}: {{column: ...}}.")
    if spec["amount"] is None and (spec["quantity"] is None or spec["price"] is None):
        check.fail("orders.amount", "give either amount (the line's value) or both quantity and price.")
    if spec["amount"] is not None and spec["price"] is not None:
        check.fail("orders.price", "give either amount or quantity and price, not both.")
    headers: dict[str, str] = {}
    for key in ROLE_KEYS:
        if spec[key] is None:
            continue
        folded = spec[key]["column"].replace(" ", "").replace("_", "").casefold()
        if folded in headers:
            check.fail(f"orders.{key}.column", f"{spec[key]['column']!r} is already the {headers[folded]} column.")
        headers[folded] = key
    spec["categories"] = _share_levels(check, node.get("categories"), "orders.categories")
    spec["channels"] = _share_levels(check, node.get("channels"), "orders.channels")
    if spec["categories"] and spec["category"] is None:
        check.fail("orders.categories", "shares of categories need the category column: set orders.category.")
    if spec["channels"] and spec["channel"] is None:
        check.fail("orders.channels", "shares of channels need the channel column: set orders.channel.")
    prefix = node.get("cancelled_prefix", "C")
    spec["cancelled_prefix"] = "" if prefix in (None, "", False) else check.text(prefix, "orders.cancelled_prefix")
    spec["missing"] = sorted(
        {*BUILTIN_MISSING, *extra_missing, *_spellings(check, node.get("missing_values", []), "orders.missing_values")}
    )
    as_of = node.get("as_of")
    if as_of is not None:
        try:
            as_of = (as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))).isoformat()
        except ValueError:
            check.fail("orders.as_of", f"{as_of!r} is not a date; write it as YYYY-MM-DD.")
    spec["as_of"] = as_of
    overrides = check.mapping(node.get("features", {}) or {}, "orders.features")
    entries: dict[str, dict] = {}
    for name, (kind, skewed, label, unit, words, when_none) in BEHAVIOUR.items():
        entries[name] = {"type": kind, "skewed": skewed, "label": label, "words": words, "when_no_orders": when_none}
        if unit:
            entries[name]["unit"] = unit
        if name == "return_rate":
            entries[name]["range"] = [0, 1]
    for kind, levels in (("category", spec["categories"]), ("channel", spec["channels"])):
        for index, level in enumerate(levels):
            name = f"share_{level['name']}"[:63]
            if name in entries:
                check.fail(f"orders.{kind}s[{index}]", f"{level['value']!r} gives {name}, which is taken.")
            entries[name] = _share_entry(level, kind)
            level["feature"] = name
    if spec["product"] is not None:
        entries["distinct_products"] = {
            "type": "integer", "skewed": True, "label": {"en": "distinct products", "fr": "produits différents"},
            "words": _words("varied buyers", "acheteurs variés", "single-product buyers", "mono-produit"),
            "when_no_orders": 0,
        }  # fmt: skip
    if spec["country"] is not None:
        entries["main_country"] = {
            "type": "category", "role": "profile", "label": {"en": "country", "fr": "pays"},
            "when_no_orders": "Unknown",
        }  # fmt: skip
    for name in overrides:
        if name not in entries:
            check.fail(f"orders.features.{name}", f"not a behaviour column; they are {', '.join(entries)}.")
        override = check.mapping(overrides[name], f"orders.features.{name}")
        check.keys(override, FEATURE_KEYS, f"orders.features.{name}")
        entries[name] = {**entries[name], **override}
    behaviour = []
    for name, entry in entries.items():
        where = f"orders.features.{name}"
        column: dict[str, Any] = {"name": name, "column": None, "type": entry["type"], "derive": None, "levels": [],
                                  "ordered": False, "required": True, "behaviour": True}  # fmt: skip
        common_entry = {k: v for k, v in entry.items() if k != "when_no_orders"}
        common_entry.setdefault("role", "numeric")
        common_entry["impute"] = "constant"
        common_entry["value"] = "Unknown" if entry["type"] == "category" else 0
        common(check, common_entry, where, column)
        when_none = entry.get("when_no_orders", 0)
        numeric = not isinstance(when_none, bool) and isinstance(when_none, (int, float))
        if when_none not in ("max", "median") and not numeric and entry["type"] != "category":
            check.fail(f"{where}.when_no_orders", f"{when_none!r}: give a number, max or median (of the buyers).")
        column["when_no_orders"] = when_none
        if column["in_mart"]:
            behaviour.append(column)
    return spec, behaviour
