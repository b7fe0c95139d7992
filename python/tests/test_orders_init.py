"""`make init ORDERS=…`: roles recognised from English and French headers and the values (real
profiling of real files), the written declaration valid, an unresolved role named with its
candidates and the key to set."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from segmentation.declaration import load_declaration
from segmentation.errors import UserError
from segmentation.orders_gen import online_retail
from segmentation.orders_starter import init_orders_declaration
from segmentation.shapes import write_table


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    return path


def test_online_retail_export_is_declared(tmp_path: Path) -> None:
    frame, _ = online_retail(60, seed=3)
    source = tmp_path / "invoices.csv"
    write_table(frame, source)
    output, decisions = init_orders_declaration(source, None, tmp_path / "invoices.yml")
    orders = load_declaration(output).orders
    assert orders["customer"]["column"] == "CustomerID"
    assert orders["order"]["column"] == "InvoiceNo"
    assert orders["date"] == {"column": "InvoiceDate", "formats": ["%m/%d/%Y %H:%M"]}
    assert (orders["quantity"]["column"], orders["price"]["column"]) == ("Quantity", "UnitPrice")
    assert orders["amount"] is None and orders["cancelled_prefix"] == "C"
    assert (orders["product"]["column"], orders["country"]["column"]) == ("StockCode", "Country")
    assert any(d.column == "InvoiceDate" for d in decisions)


def test_french_headers_with_an_amount_and_a_customer_table(tmp_path: Path) -> None:
    lines = [["N° commande", "Code client", "Date commande", "Montant TTC", "Canal"]]
    for n in range(60):
        channel = ["web", "boutique"][n % 2]
        lines.append([f"F{1000 + n}", f"K{n % 17}", f"{1 + n % 28:02d}/03/2024", f"{10 + n},50", channel])
    orders = _write(tmp_path / "commandes.csv", lines)
    customers = _write(
        tmp_path / "clients.csv",
        [
            ["Code client", "Ville", "Revenu"],
            *([f"K{n}", ["Lyon", "Paris"][n % 2], str(1000 + 50 * n)] for n in range(17)),
        ],
    )
    output, _ = init_orders_declaration(orders, customers, tmp_path / "clients.yml")
    declaration = load_declaration(output)
    keys = ("customer", "order", "date", "amount", "channel")
    roles = {key: declaration.orders[key]["column"] for key in keys}
    assert roles == {
        "customer": "Code client", "order": "N° commande", "date": "Date commande", "amount": "Montant TTC",
        "channel": "Canal",
    }  # fmt: skip
    assert {level["feature"] for level in declaration.orders["channels"]} == {"share_web", "share_boutique"}
    assert declaration.columns[0]["column"] == "Code client"  # the customer table is declared too


def test_an_unrecognised_role_names_its_candidates_and_the_key(tmp_path: Path) -> None:
    lines = [["Ref", "Who", "When", "Qty", "Price"]]
    lines += [[f"R{n}", f"P{n % 5}", "2024-01-02", "1", "3.5"] for n in range(30)]
    source = _write(tmp_path / "lines.csv", lines)
    with pytest.raises(UserError) as error:
        init_orders_declaration(source, None, tmp_path / "lines.yml")
    message = str(error.value)
    assert "orders.customer" in message and "candidates: Ref, Who" in message and "\n" not in message
    assert (tmp_path / "lines.yml").is_file()  # written, with the role left to set
    assert "# customer: {column: ...}" in (tmp_path / "lines.yml").read_text(encoding="utf-8")
