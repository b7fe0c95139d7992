"""Seeded order lines with planted behaviour, for trying and testing the order models.

Two shapes:

- `default`: the order lines of the customers of `generate.py`'s default export (same rows
  and seed give the same customers), each persona with its own order rate, basket size,
  recency, returns, category and channel; some customers never order and a few order
  lines name customers missing from the export;
- `online_retail`: a stand-alone export shaped like the well-known online-retail invoice
  table (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
  Country), with four planted RFM groups.

Both carry realistic mess: lines without a customer, cancelled invoices (`C…`, negative
quantities), exact duplicate lines, a few unreadable dates and zero or unreadable prices.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

END = dt.datetime(2024, 12, 31, 18, 0)
CATEGORIES = ("grocery", "fashion", "home", "electronics")
CATEGORY_PRICE = (4.0, 35.0, 20.0, 120.0)
CHANNELS = ("web", "store", "app")


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How often a planted group orders, how much, how lately, and what."""

    orders_mean: float  # orders over the two years (Poisson, at least one)
    lines_mean: float  # lines per order
    quantity_mean: float
    last_order_days: tuple[int, int]  # the last order is this many days before the end (uniform)
    return_rate: float  # share of orders later cancelled in part
    categories: tuple[float, ...]
    channels: tuple[float, ...]
    no_orders: float = 0.05  # share of the group that never ordered


BEHAVIOURS = {
    "core_professionals": Behaviour(6, 3, 2, (0, 120), 0.05, (0.3, 0.3, 0.3, 0.1), (0.4, 0.5, 0.1)),
    "young_healthcare_singles": Behaviour(12, 2, 1.5, (0, 30), 0.15, (0.4, 0.4, 0.1, 0.1), (0.3, 0.1, 0.6)),
    "senior_lawyers": Behaviour(4, 4, 3, (0, 90), 0.02, (0.1, 0.2, 0.3, 0.4), (0.5, 0.5, 0.0)),
    "homemakers": Behaviour(2, 2, 2, (300, 700), 0.05, (0.7, 0.1, 0.2, 0.0), (0.1, 0.9, 0.0), 0.15),
    "noise": Behaviour(3, 2, 2, (0, 700), 0.05, (0.25, 0.25, 0.25, 0.25), (0.34, 0.33, 0.33), 0.10),
}
RETAIL_GROUPS = {  # online_retail: champions, loyal, new, lapsed
    "champions": Behaviour(25, 8, 12, (0, 15), 0.05, (0.25,) * 4, (1.0, 0.0, 0.0), 0.0),
    "loyal": Behaviour(6, 5, 6, (0, 60), 0.05, (0.25,) * 4, (1.0, 0.0, 0.0), 0.0),
    "new": Behaviour(1, 4, 4, (0, 45), 0.02, (0.25,) * 4, (1.0, 0.0, 0.0), 0.0),
    "lapsed": Behaviour(1.5, 3, 2, (200, 370), 0.05, (0.25,) * 4, (1.0, 0.0, 0.0), 0.0),
}
RETAIL_SHARES = (0.12, 0.3, 0.18, 0.4)
COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands")
COUNTRY_SHARES = (0.85, 0.04, 0.04, 0.03, 0.02, 0.02)


def _lines(rng: np.random.Generator, customers: np.ndarray, groups: np.ndarray, table: dict, span: int) -> pd.DataFrame:
    """One row per order line of the given customers (ids as text, group names per customer)."""
    rows: list[pd.DataFrame] = []
    for name, behaviour in table.items():
        ids = customers[groups == name]
        ids = ids[rng.random(len(ids)) >= behaviour.no_orders]
        if not len(ids):
            continue
        orders = np.maximum(1, rng.poisson(behaviour.orders_mean, len(ids)))
        last = rng.integers(behaviour.last_order_days[0], behaviour.last_order_days[1] + 1, len(ids))
        owner = np.repeat(np.arange(len(ids)), orders)
        # order dates spread from the customer's last order back over the period (the last one exact)
        back = rng.integers(0, span, len(owner))
        first_of_customer = np.r_[0, np.cumsum(orders)[:-1]]
        back[first_of_customer] = 0
        days = np.minimum(last[owner] + back, span + 60)
        seconds = rng.integers(8 * 3600, 20 * 3600, len(owner))
        lines = np.maximum(1, rng.poisson(behaviour.lines_mean, len(owner)))
        order_of_line = np.repeat(np.arange(len(owner)), lines)
        category = rng.choice(len(CATEGORIES), len(order_of_line), p=behaviour.categories)
        channel = rng.choice(len(CHANNELS), len(owner), p=behaviour.channels)[order_of_line]
        price = np.round(np.array(CATEGORY_PRICE)[category] * rng.lognormal(0, 0.4, len(order_of_line)), 2)
        rows.append(
            pd.DataFrame({
                "customer": ids[owner][order_of_line],
                "group": name,
                "order_key": rng.random(len(owner))[order_of_line],
                "order_local": order_of_line,
                "days": days[order_of_line],
                "seconds": seconds[order_of_line],
                "category": category,
                "channel": channel,
                "quantity": np.maximum(1, rng.poisson(behaviour.quantity_mean, len(order_of_line))),
                "price": price,
                "returned": (rng.random(len(owner)) < behaviour.return_rate)[order_of_line],
            })
        )  # fmt: skip
    frame = pd.concat(rows, ignore_index=True)
    # one invoice number per (group, order), numbered by date
    frame["order_uid"] = frame["group"] + ":" + frame["order_local"].astype(str)
    frame["when"] = END - pd.to_timedelta(frame["days"], unit="D") + pd.to_timedelta(frame["seconds"] - 64800, unit="s")
    firsts = frame.groupby("order_uid")["when"].first().sort_values(kind="stable")
    number = pd.Series(np.arange(len(firsts)), index=firsts.index)
    frame["invoice"] = 500000 + frame["order_uid"].map(number).to_numpy()
    return frame.sort_values(["invoice", "order_local"], kind="stable").reset_index(drop=True)


def _cancellations(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """Returned orders get a cancellation invoice C<n> taking back some of their lines."""
    returned = frame[frame["returned"] & (rng.random(len(frame)) < 0.6)].copy()
    returned["quantity"] = -np.maximum(1, (returned["quantity"] * rng.random(len(returned))).round().astype(int))
    returned["when"] = returned["when"] + pd.to_timedelta(rng.integers(1, 20, len(returned)), unit="D")
    returned["when"] = returned["when"].where(returned["when"] <= END, END)
    returned["cancelled"] = True
    frame = frame.assign(cancelled=False)
    return pd.concat([frame, returned], ignore_index=True)


def _mess(rng: np.random.Generator, out: pd.DataFrame, date_column: str, price_column: str, id_column: str):
    """Lines without customer, duplicates, bad dates and prices (share of lines each)."""
    out = out.copy()
    blank = rng.random(len(out)) < 0.03
    out.loc[blank, id_column] = ""
    bad_date = rng.choice(len(out), max(1, len(out) // 800), replace=False)
    out.loc[out.index[bad_date], date_column] = "31/02/2024 25:61"
    bad_price = rng.choice(len(out), max(1, len(out) // 800), replace=False)
    out.loc[out.index[bad_price], price_column] = rng.choice(["0", "n.a.", "-1.00"], len(bad_price))
    duplicated = out.iloc[rng.choice(len(out), max(1, len(out) // 100), replace=False)]
    out = pd.concat([out, duplicated]).sort_index(kind="stable").reset_index(drop=True)
    return out


def default_orders(rows: int = 10_000, seed: int = 42) -> pd.DataFrame:
    """Order lines of the customers of `generate.generate_customers(rows, seed)`."""
    from .generate import generate_customers

    _, truth = generate_customers(rows=rows, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    customers = np.array(truth.column("ID").to_pylist(), dtype=object)
    groups = np.array(truth.column("planted_segment").to_pylist(), dtype=object)
    groups = np.where(np.isin(groups, list(BEHAVIOURS)), groups, "noise")
    # a few buyers the customer export does not know (guest accounts, other systems)
    strangers = np.array([f"9{n:07d}" for n in range(max(1, len(customers) // 50))], dtype=object)
    customers = np.r_[customers, strangers]
    groups = np.r_[groups, np.full(len(strangers), "noise", dtype=object)]
    frame = _cancellations(rng, _lines(rng, customers, groups, BEHAVIOURS, 700))
    frame = frame.sort_values(["when", "invoice"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame({
        "order_id": np.where(frame["cancelled"], "C", "") + frame["invoice"].astype(str),
        "customer_id": frame["customer"].astype(str),
        "order_date": frame["when"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "product_category": np.array(CATEGORIES)[frame["category"]],
        "channel": np.array(CHANNELS)[frame["channel"]],
        "quantity": frame["quantity"].astype(str),
        "unit_price": frame["price"].map("{:.2f}".format),
    })  # fmt: skip
    return _mess(rng, out, "order_date", "unit_price", "customer_id")


def online_retail(customers: int = 1_000, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An online-retail-like invoice export and its planted truth (CustomerID, planted_group)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{12346 + 3 * n}" for n in range(customers)], dtype=object)
    groups = np.array(list(RETAIL_GROUPS), dtype=object)[rng.choice(4, customers, p=RETAIL_SHARES)]
    frame = _cancellations(rng, _lines(rng, ids, groups, RETAIL_GROUPS, 370))
    frame = frame.sort_values(["when", "invoice"], kind="stable").reset_index(drop=True)
    country = pd.Series(rng.choice(COUNTRIES, customers, p=COUNTRY_SHARES), index=ids)
    stock = 84000 + frame["category"] * 100 + (frame["price"] * 7).astype(int) % 97
    when = frame["when"]
    out = pd.DataFrame({
        "InvoiceNo": np.where(frame["cancelled"], "C", "") + frame["invoice"].astype(str),
        "StockCode": stock.astype(str),
        "Description": np.array(["TEA LIGHTS", "SCARF", "CUSHION COVER", "LAMP"])[frame["category"]],
        "Quantity": frame["quantity"].astype(str),
        "InvoiceDate": when.dt.month.astype(str) + "/" + when.dt.day.astype(str) + "/" + when.dt.strftime("%Y %H:%M"),
        "UnitPrice": frame["price"].map("{:.2f}".format),
        "CustomerID": frame["customer"].astype(str) + ".0",
        "Country": country.reindex(frame["customer"]).to_numpy(),
    })  # fmt: skip
    out = _mess(rng, out, "InvoiceDate", "UnitPrice", "CustomerID")
    truth = pd.DataFrame({"CustomerID": ids, "planted_group": groups})
    return out, truth


def write_orders(path: Path, rows: int | None, seed: int, shape: str = "default", truth: Path | None = None) -> int:
    """Write a shape's order lines (CSV or Parquet, by suffix); returns the lines written."""
    from .shapes import write_table

    if shape == "online_retail":
        frame, planted = online_retail(rows or 1_000, seed)
        if truth is not None:
            write_table(planted, Path(truth))
    else:
        frame = default_orders(10_000 if rows is None else rows, seed)
    write_table(frame, Path(path))
    log.info("wrote %s order lines (%s shape, seed %d) to %s", f"{len(frame):,}", shape, seed, path)
    return len(frame)
