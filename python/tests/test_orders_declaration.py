"""The `orders:` section of a declaration: behaviour columns, defaults, one-line errors, the run's
view of it (no ORDERS=, AS_OF=), and what dbt's generated YAML gets from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from segmentation import dbt_yaml
from segmentation.declaration import DeclarationError, parse_declaration
from segmentation.orders_ingest import for_run

ORDERS = {
    "customer": "CustomerID",
    "order": "InvoiceNo",
    "date": {"column": "InvoiceDate", "formats": ["%m/%d/%Y %H:%M"]},
    "quantity": "Quantity",
    "price": "UnitPrice",
}
COLUMNS = [
    {"column": "CustomerID", "type": "identifier"},
    {"column": "Region", "type": "category", "label": {"en": "region", "fr": "région"}},
]


def parse(orders: dict | None = None, columns: list | None = None, **top):
    document = {"version": 1, **top}
    if orders is not None:
        document["orders"] = orders
    if columns is not None:
        document["columns"] = columns
    return parse_declaration(document, Path("shop.yml"))


def test_orders_alone_give_the_behaviour_columns_and_the_customer_id() -> None:
    declaration = parse(ORDERS)
    names = [c["name"] for c in declaration.mart_columns()]
    assert names[0] == "customer_id" and declaration.columns[0]["column"] == "CustomerID"
    assert names[1:] == ["recency_days", "frequency", "monetary", "tenure_days", "average_order_value", "return_rate"]
    skewed = {c["name"] for c in declaration.behaviour if c["skewed"]}
    assert skewed == {"frequency", "monetary", "average_order_value"}
    recency = declaration.behaviour[0]
    assert (recency["high_en"], recency["low_en"], recency["low_fr"]) == ("lapsed", "recent", "récents")
    assert all(c["label_en"] and c["label_fr"] and c["role"] == "numeric" for c in declaration.behaviour)
    assert declaration.orders["cancelled_prefix"] == "C" and declaration.orders["as_of"] is None


def test_declared_levels_become_shares_and_overrides_apply() -> None:
    orders = {
        **ORDERS,
        "category": "Family",
        "categories": ["Home & garden", "Toys"],
        "product": "StockCode",
        "country": "Country",
        "features": {"monetary": {"skewed": False}, "return_rate": {"role": "ignored"}},
    }
    declaration = parse(orders, COLUMNS)
    by_name = {c["name"]: c for c in declaration.behaviour}
    assert {"share_home_garden", "share_toys", "distinct_products", "main_country"} <= set(by_name)
    assert by_name["share_toys"]["range_min"] == 0 and by_name["share_toys"]["range_max"] == 1
    assert by_name["main_country"]["role"] == "profile"
    assert not by_name["monetary"]["skewed"]
    assert "return_rate" not in by_name  # ignored: out of the marts
    assert [c["name"] for c in declaration.mart_columns()][:2] == ["customer_id", "region"]


@pytest.mark.parametrize(
    ("orders", "key"),
    [
        ({k: v for k, v in ORDERS.items() if k != "order"}, "orders.order: missing"),
        ({**ORDERS, "amount": "Total"}, "orders.price: give either amount"),
        ({k: v for k, v in ORDERS.items() if k != "price"}, "orders.amount: give either amount"),
        ({**ORDERS, "categories": ["a"]}, "orders.categories: shares of categories need the category column"),
        ({**ORDERS, "colour": "x"}, "orders.colour: unknown key"),
        ({**ORDERS, "as_of": "yesterday"}, "orders.as_of: 'yesterday' is not a date"),
        ({**ORDERS, "features": {"loyalty": {}}}, "orders.features.loyalty: not a behaviour column"),
        ({**ORDERS, "order": "CustomerID"}, "orders.order.column: 'CustomerID' is already the customer column"),
        ({**ORDERS, "features": {"frequency": {"when_no_orders": "x"}}}, "orders.features.frequency.when_no_orders"),
    ],
)
def test_mistakes_end_in_one_line_naming_the_key(orders: dict, key: str) -> None:
    with pytest.raises(DeclarationError) as error:
        parse(orders)
    message = str(error.value)
    assert message.startswith("shop.yml: " + key) and "\n" not in message


def test_a_declared_column_may_not_take_a_behaviour_name() -> None:
    columns = [*COLUMNS, {"column": "Frequency", "type": "number", "label": {"en": "f", "fr": "f"}}]
    with pytest.raises(DeclarationError, match=r"orders.features.frequency .*taken"):
        parse(ORDERS, columns)


def test_the_run_drops_orders_without_orders_file_and_takes_as_of() -> None:
    both = parse(ORDERS, COLUMNS)
    assert for_run(both, None).mart_columns() == [c for c in both.mart_columns() if not c.get("behaviour")]
    with pytest.raises(DeclarationError, match="declares order lines only"):
        for_run(parse(ORDERS), None)
    with pytest.raises(DeclarationError, match=r"make init ORDERS=lines\.csv"):
        for_run(parse(None, [*COLUMNS, {"column": "Age", "type": "integer", "label": {"en": "a", "fr": "a"}}]),
                "lines.csv")  # fmt: skip
    assert for_run(both, "lines.csv", "2024-01-31").orders["as_of"] == "2024-01-31"
    with pytest.raises(DeclarationError, match="AS_OF='31/01/2024' is not a date"):
        for_run(both, "lines.csv", "31/01/2024")


def test_generated_yaml_declares_the_order_source_and_the_behaviour_contract() -> None:
    document = yaml.safe_load(dbt_yaml.render(parse(ORDERS, COLUMNS)))
    tables = {t["name"]: t for t in document["sources"][0]["tables"]}
    assert {"orders", "orders_rejected", "orders_load_metadata"} <= set(tables)
    assert [c["name"] for c in tables["orders"]["columns"]][1:] == [
        "CustomerID", "InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice"
    ]  # fmt: skip
    features = next(m for m in document["models"] if m["name"] == "customer_features")
    columns = {c["name"]: c for c in features["columns"]}
    assert columns["monetary"]["config"]["meta"] == {"role": "numeric", "declared_type": "number", "skewed": True}
    assert columns["recency_days"]["data_type"] == "bigint"
    assert {"type": "not_null"} in columns["frequency"]["constraints"]
    imputed = next(m for m in document["models"] if m["name"] == "int_customers_imputed")
    assert not {"frequency", "monetary", "recency_days"} & {c["name"] for c in imputed["columns"]}
