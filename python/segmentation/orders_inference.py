"""From the profile of an order-lines file to its `orders:` section: which column plays which role.

Pure, like `inference`: headers are recognised by the words they are made of (English
and French: customer/client, order/invoice/commande, date, amount/montant,
quantity/qty/quantité, price/prix…), then checked against what the values look like
(a date column must read as dates, a quantity as numbers). A required role that cannot
be told is left out, with the candidate columns named, so that one line can say which
key to set.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from .inference import Decision, _date_formats
from .profiles import ColumnProfile, TableProfile

# role: header words, most telling first (compared on lower-case ASCII letters and digits)
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "date": ("invoicedate", "orderdate", "datecommande", "datefacture", "purchasedate", "transactiondate",
             "timestamp", "createdat", "date", "datetime", "time"),
    "customer": ("customerid", "clientid", "idclient", "customerno", "numeroclient", "codeclient", "custid",
                 "customer", "client", "memberid", "accountid", "userid", "buyer", "acheteur"),
    "order": ("invoiceno", "invoiceid", "invoice", "orderid", "orderno", "ordernumber", "order", "numcommande",
              "idcommande", "commande", "numfacture", "facture", "transactionid", "transaction", "receipt", "ticket",
              "basket", "panier"),
    "quantity": ("quantity", "quantite", "qty", "qte", "units", "nbarticles", "quant"),
    "price": ("unitprice", "prixunitaire", "price", "prix", "pu", "unitcost"),
    "amount": ("lineamount", "linetotal", "totalprice", "amount", "montant", "total", "revenue", "sales", "ca",
               "chiffredaffaires", "value", "valeur"),
    "product": ("stockcode", "productid", "sku", "productcode", "codearticle", "article", "product", "produit",
                "itemid", "item", "reference", "ref"),
    "category": ("productcategory", "category", "categorie", "famille", "rayon", "department", "univers"),
    "channel": ("saleschannel", "channel", "canal", "source", "device"),
    "country": ("country", "pays", "countrycode"),
}  # fmt: skip
REQUIRED = ("customer", "order", "date")
MAX_LEVELS = 8
MIN_LEVEL_SHARE = 0.03


def _key(header: str) -> str:
    text = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _score(role: str, header: str) -> int:
    """How well a header names a role: 0 not at all, higher is better (exact beats contained)."""
    key = _key(header)
    words = ROLE_WORDS[role]
    for rank, word in enumerate(words):
        if key == word:
            return 200 - rank
        if len(word) >= 4 and word in key:
            return 100 - rank
    return 0


def _fits(role: str, profile: ColumnProfile) -> bool:
    """Do the values look like the role's?"""
    if role == "date":
        return bool(_date_formats(profile))
    if role in ("quantity", "price", "amount"):
        return profile.share_number >= 0.95
    if role in ("customer", "order", "product"):
        return not _date_formats(profile)
    if role in ("category", "channel", "country"):
        return profile.share_number < 0.5 and 1 < profile.distinct <= 300
    return True


@dataclass
class OrdersDraft:
    """The `orders:` section, the decisions behind it, and the required roles left unset."""

    orders: dict
    decisions: list[Decision]
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # role -> candidate columns


def _levels(profile: ColumnProfile) -> list[str]:
    present = profile.present or 1
    return [value for value, count in profile.top[:MAX_LEVELS] if count / present >= MIN_LEVEL_SHARE]


def infer_orders(profile: TableProfile) -> OrdersDraft:
    """Which column plays each role of the order lines."""
    taken: set[str] = set()
    roles: dict[str, ColumnProfile] = {}
    decisions: list[Decision] = []
    unresolved: dict[str, list[str]] = {}
    for role in ("date", "customer", "order", "quantity", "price", "amount", "product", "category", "channel",
                 "country"):  # fmt: skip
        scored = sorted(
            ((_score(role, c.name), -c.position, c) for c in profile.columns if c.name not in taken),
            key=lambda item: (item[0], item[1]),
            reverse=True,
        )
        named = [c for score, _, c in scored if score > 0]
        fitting = [c for c in named if _fits(role, c)]
        if role == "date" and not fitting:  # a date is recognised by its values too
            fitting = [c for c in profile.columns if c.name not in taken and _date_formats(c)]
        if fitting:
            roles[role] = fitting[0]
            taken.add(fitting[0].name)
        elif role in REQUIRED:
            unresolved[role] = [c.name for c in named] or [c.name for c in profile.columns if c.name not in taken]
    if "quantity" in roles and "price" in roles:
        roles.pop("amount", None)
    elif "amount" not in roles:
        if "quantity" in roles and "price" not in roles:
            unresolved["price"] = [c.name for c in profile.columns if c.share_number >= 0.95 and c.name not in taken]
        else:
            unresolved["amount"] = [c.name for c in profile.columns if c.share_number >= 0.95 and c.name not in taken]
        roles.pop("quantity", None) if "price" not in roles else None
    orders: dict = {}
    for role in ("customer", "order", "date", "amount", "quantity", "price", "category", "channel", "country",
                 "product"):  # fmt: skip
        column = roles.get(role)
        if column is None:
            continue
        if role == "date":
            formats = _date_formats(column)
            orders[role] = {"column": column.name, "formats": formats}
            decisions.append(Decision(column.name, f"the order date (read as {' or '.join(formats)})"))
        else:
            orders[role] = column.name
            decisions.append(Decision(column.name, f"the {role} of each order line"))
    for role, plural in (("category", "categories"), ("channel", "channels")):
        if role in roles:
            levels = _levels(roles[role])
            if levels:
                orders[plural] = levels
                decisions.append(
                    Decision(plural, f"share of spend on each of {', '.join(levels)} (the rest counts as other)")
                )
    order = roles.get("order")
    if order is not None:
        cancelled = [v for v, _ in order.top if v[:1].upper() == "C" and v[1:].isdigit()]
        if cancelled or order.share_integer < 1:
            orders["cancelled_prefix"] = "C"
    return OrdersDraft(orders, decisions, unresolved)


def unresolved_message(draft: OrdersDraft, source: str) -> str:
    """One line naming the first role that could not be told, its candidates and the key to set."""
    role, candidates = next(iter(draft.unresolved.items()))
    listed = ", ".join(candidates[:6]) or "none"
    what = {"amount": "the line's amount (or quantity and unit price)"}.get(role, f"the {role}")
    return (
        f"cannot tell which column of {source} is {what} (candidates: {listed}): set orders.{role}: "
        "{column: <its header>} in the declaration written, then run make all."
    )
