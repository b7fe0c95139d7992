"""Seeded customer tables of other shapes than the default export, to try and test `make init`.

The project must work on any customer table, so its tests need tables it was not written
for: a retailer's export (birth year, enrolment date in two formats, skewed amounts and
purchase counts per channel), a tiny three-column table, a French services table
(semicolons, decimal commas, Oui/Non, accented headers) and the classic mall-customers
table. Each has planted segments (written to a separate truth file) and, except the mall
table, the mess of real exports: missing-value tokens, repeated customers, a few
impossible values. Everything is drawn from one seeded generator, so a seed gives the
same bytes.
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shape:
    """A generated table: the export (text cells, None for empty), its truth and how it is written."""

    export: pd.DataFrame
    truth: pd.DataFrame  # one row per distinct customer: the id column and `planted_segment`
    separator: str = ","
    encoding: str = "utf-8"


def _pick(segments: np.ndarray, table: list[float]) -> np.ndarray:
    return np.asarray(table)[segments]


def _text(values: np.ndarray, fmt: str = "{}") -> np.ndarray:
    return np.array([fmt.format(v) for v in values], dtype=object)


def _blank(rng: np.random.Generator, values: np.ndarray, share: float, token: str | None = None) -> np.ndarray:
    """Empty (or `token`) cells in about `share` of the rows."""
    values = values.copy()
    values[rng.random(len(values)) < share] = token
    return values


def _repeat_some(
    rng: np.random.Generator, frame: pd.DataFrame, rows: int, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """Exactly `rows` rows: every customer once, some twice (changed a little), shuffled."""
    extra = rows - len(frame)
    again = change(frame.iloc[rng.choice(len(frame), size=extra, replace=False)].copy()) if extra > 0 else frame[:0]
    both = pd.concat([frame, again], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


def _segments(rng: np.random.Generator, count: int, shares: list[float]) -> np.ndarray:
    return rng.choice(len(shares), size=count, p=np.asarray(shares) / sum(shares))


RETAIL_SEGMENTS = ("affluent_catalogue", "web_young_families", "budget_families", "store_seniors")


def retail(rows: int, seed: int) -> Shape:
    """A retailer's table like the marketing-campaign export: segments carried by income × spend × channel."""
    rng = np.random.default_rng(seed)
    unique = max(8, round(rows / 1.05))
    seg = _segments(rng, unique, [0.25, 0.3, 0.3, 0.15])
    ids = rng.choice(np.arange(1, unique * 5), size=unique, replace=False)
    birth = np.rint(rng.normal(_pick(seg, [1962, 1984, 1976, 1951]), 6)).astype(int)
    income = rng.lognormal(np.log(_pick(seg, [82000, 48000, 27000, 60000])), 0.18)
    kids = rng.poisson(_pick(seg, [0.05, 0.9, 1.1, 0.1])).clip(0, 2)
    teens = rng.poisson(_pick(seg, [0.3, 0.2, 0.8, 0.6])).clip(0, 2)
    spend = rng.gamma(4.0, _pick(seg, [340, 90, 18, 150]) / 4.0)
    mix = rng.dirichlet([6, 1.2, 4, 1.2, 1.2, 1.5], size=unique)
    amounts = np.rint(spend[:, None] * mix * 2.2).astype(int)
    web = rng.poisson(_pick(seg, [4, 7, 2, 2]))
    catalog = rng.poisson(_pick(seg, [6, 1, 0.4, 1.5]))
    store = rng.poisson(_pick(seg, [8, 4, 3, 9]))
    visits = rng.poisson(_pick(seg, [2.5, 7, 7, 3]))
    enrolled = [date(2012, 7, 30) + timedelta(days=int(d)) for d in rng.integers(0, 700, unique)]
    dates = np.array(
        [d.strftime("%d/%m/%Y") if rng.random() < 0.3 else d.isoformat() for d in enrolled],
        dtype=object,
    )
    degrees = np.array(["Graduation", "PhD", "Master", "2n Cycle", "Basic"], dtype=object)
    education = rng.choice(degrees, unique, p=[0.5, 0.22, 0.17, 0.09, 0.02])
    odd = rng.random(unique)
    education[odd < 0.004] = "unknown"
    education[(odd >= 0.004) & (odd < 0.01) & (education == "Graduation")] = "graduation"
    statuses = np.array(["Married", "Together", "Single", "Divorced", "Widow"], dtype=object)
    marital = rng.choice(statuses, unique, p=[0.39, 0.26, 0.21, 0.1, 0.04])
    frame = pd.DataFrame(
        {
            "ID": _text(ids),
            "Year_Birth": _text(birth),
            "Education": education,
            "Marital_Status": marital,
            "Income": _blank(rng, _text(np.rint(income).astype(int)), 0.01),
            "Kidhome": _text(kids),
            "Teenhome": _text(teens),
            "Dt_Customer": dates,
            "Recency": _text(rng.integers(0, 100, unique)),
            **{name: _text(amounts[:, i]) for i, name in enumerate(RETAIL_AMOUNTS)},
            "NumWebPurchases": _text(web),
            "NumCatalogPurchases": _text(catalog),
            "NumStorePurchases": _text(store),
            "NumWebVisitsMonth": _text(visits),
            "AcceptedCmp1": _text((rng.random(unique) < _pick(seg, [0.2, 0.04, 0.01, 0.05])).astype(int)),
            "Complain": _text((rng.random(unique) < 0.009).astype(int)),
            "Response": _text((rng.random(unique) < _pick(seg, [0.3, 0.12, 0.08, 0.1])).astype(int)),
        }
    )
    # a few impossible or odd values, as in the real export
    for column, value in (("Year_Birth", "1893"), ("Year_Birth", "1899"), ("Income", "666666")):
        frame.loc[rng.integers(unique), column] = value
    for value in ("Absurd", "YOLO"):
        frame.loc[rng.integers(unique), "Marital_Status"] = value
    frame.loc[rng.random(unique) < 0.005, "Marital_Status"] = "NA"
    truth = pd.DataFrame({"ID": frame["ID"], "planted_segment": np.asarray(RETAIL_SEGMENTS, dtype=object)[seg]})

    def later(again: pd.DataFrame) -> pd.DataFrame:
        again["Recency"] = _text(rng.integers(0, 100, len(again)))
        again["NumWebVisitsMonth"] = _text(rng.poisson(5, len(again)))
        return again

    return Shape(_repeat_some(rng, frame, rows, later), truth.sort_values("ID").reset_index(drop=True))


RETAIL_AMOUNTS = ("MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts", "MntSweetProducts", "MntGoldProds")
TINY_SEGMENTS = ("big_pro", "light_basic")


def tiny(rows: int, seed: int) -> Shape:
    """An id, one category and two numbers: the smallest table the project should segment."""
    rng = np.random.default_rng(seed)
    seg = _segments(rng, rows, [0.4, 0.6])
    plan = np.where(rng.random(rows) < 0.85, np.asarray(["Pro", "Basic"])[seg], np.asarray(["Basic", "Pro"])[seg])
    spend = rng.normal(_pick(seg, [120.0, 35.0]), _pick(seg, [20.0, 10.0])).clip(1)
    orders = rng.poisson(_pick(seg, [12, 3]))
    frame = pd.DataFrame(
        {
            "customer_id": _text(np.arange(1, rows + 1), "C{:05d}"),
            "plan": plan.astype(object),
            "monthly_spend": _blank(rng, _text(spend, "{:.2f}"), 0.02),
            "orders": _text(orders),
        }
    )
    truth = pd.DataFrame({"customer_id": frame["customer_id"], "planted_segment": np.asarray(TINY_SEGMENTS)[seg]})
    return Shape(frame, truth)


SERVICES_SEGMENTS = ("jeunes_essentiel", "familles_confort", "seniors_premium")
REGIONS = ("Île-de-France", "Auvergne-Rhône-Alpes", "Occitanie", "Nouvelle-Aquitaine", "Hauts-de-France", "Bretagne")


def _comma(values: np.ndarray, decimals: int = 2) -> np.ndarray:
    return np.array([f"{v:.{decimals}f}".replace(".", ",") for v in values], dtype=object)


def services_fr(rows: int, seed: int) -> Shape:
    """A French services table: `;` separator, decimal commas, Oui/Non, accented headers."""
    rng = np.random.default_rng(seed)
    unique = max(6, round(rows / 1.04))
    seg = _segments(rng, unique, [0.35, 0.4, 0.25])
    age = np.rint(rng.normal(_pick(seg, [27, 42, 63]), 5)).astype(int)
    income = rng.lognormal(np.log(_pick(seg, [24000, 41000, 58000])), 0.2)
    tenure = rng.poisson(_pick(seg, [8, 40, 110]))
    plans = np.array(["Essentiel", "Confort", "Premium"], dtype=object)
    plan = plans[np.where(rng.random(unique) < 0.8, seg, rng.integers(0, 3, unique))]
    bill = rng.normal(_pick(seg, [19.9, 34.9, 59.9]), 4).clip(5)
    calls = rng.poisson(_pick(seg, [0.8, 2.5, 1.0]) * rng.gamma(1.0, 1.0, unique))
    frame = pd.DataFrame(
        {
            "Identifiant client": _text(rng.choice(np.arange(10_000, 99_999), unique, replace=False), "CL-{}"),
            "Âge": _blank(rng, _text(age), 0.01),
            "Revenu annuel": _blank(rng, _comma(income), 0.03, "NC"),
            "Ancienneté (mois)": _text(tenure),
            "Forfait": plan,
            "Région": rng.choice(np.array(REGIONS, dtype=object), unique),
            "Facture mensuelle (€)": _comma(bill),
            "Nb appels support": _text(calls),
            "Engagement": np.where(rng.random(unique) < _pick(seg, [0.2, 0.6, 0.8]), "Oui", "Non").astype(object),
        }
    )
    frame.loc[rng.integers(unique), "Âge"] = "142"
    frame.loc[rng.integers(unique), "Âge"] = "3"
    truth = pd.DataFrame(
        {"Identifiant client": frame["Identifiant client"], "planted_segment": np.asarray(SERVICES_SEGMENTS)[seg]}
    )

    def later(again: pd.DataFrame) -> pd.DataFrame:
        again["Nb appels support"] = _text(rng.poisson(1.5, len(again)))
        return again

    shape = _repeat_some(rng, frame, rows, later)
    return Shape(shape, truth.sort_values("Identifiant client").reset_index(drop=True), ";", "utf-8-sig")


MALL_SEGMENTS = ("careful", "standard", "target", "careless", "sensible")
MALL_CENTRES = {  # annual income (k$), spending score: the classic five groups
    "careful": (88, 17),
    "standard": (55, 50),
    "target": (87, 82),
    "careless": (26, 79),
    "sensible": (26, 21),
}


def mall(rows: int, seed: int) -> Shape:
    """The mall-customers table: five income × spending groups; gender carries nothing."""
    rng = np.random.default_rng(seed)
    seg = _segments(rng, rows, [0.18, 0.4, 0.2, 0.11, 0.11])
    centres = np.array([MALL_CENTRES[name] for name in MALL_SEGMENTS], dtype=float)
    income = np.rint(rng.normal(centres[seg, 0], 8)).clip(15, 140).astype(int)
    score = np.rint(rng.normal(centres[seg, 1], 8)).clip(1, 100).astype(int)
    age = np.rint(rng.normal(_pick(seg, [41, 43, 33, 25, 45]), 9)).clip(18, 70).astype(int)
    frame = pd.DataFrame(
        {
            "CustomerID": _text(np.arange(1, rows + 1)),
            "Gender": rng.choice(np.array(["Male", "Female"], dtype=object), rows, p=[0.44, 0.56]),
            "Age": _text(age),
            "Annual Income (k$)": _text(income),
            "Spending Score (1-100)": _text(score),
        }
    )
    truth = pd.DataFrame({"CustomerID": frame["CustomerID"], "planted_segment": np.asarray(MALL_SEGMENTS)[seg]})
    return Shape(frame, truth)


SHAPES: dict[str, Callable[[int, int], Shape]] = {
    "retail": retail,
    "tiny": tiny,
    "services_fr": services_fr,
    "mall": mall,
}
DEFAULT_ROWS = {"retail": 2_240, "tiny": 200, "services_fr": 3_000, "mall": 200}


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_table(frame: pd.DataFrame, path: Path, separator: str = ",", encoding: str = "utf-8") -> None:
    """CSV (empty cells for None, quotes only where needed) or Parquet (text columns), by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = pa.table({name: pa.array(frame[name].tolist(), pa.string()) for name in frame.columns})
        _atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    elif suffix == ".csv":

        def write_csv(tmp: Path) -> None:
            with tmp.open("w", encoding=encoding, newline="") as handle:
                writer = csv.writer(handle, delimiter=separator, lineterminator="\n")
                writer.writerow(frame.columns)
                writer.writerows(["" if v is None else v for v in row] for row in frame.itertuples(index=False))

        _atomic_write(path, write_csv)
    else:
        raise ValueError(f"cannot write {path}: unsupported suffix {path.suffix!r}; use .csv or .parquet")


def generate_shape(name: str, path: Path, rows: int | None, seed: int, truth_path: Path | None = None) -> Shape:
    """Generate the table of shape `name` and write it (and its planted truth) by suffix."""
    rows = DEFAULT_ROWS[name] if rows is None else rows
    if rows < 10:
        raise ValueError(f"the {name} shape needs at least 10 rows, not {rows}")
    shape = SHAPES[name](rows, seed)
    write_table(shape.export, Path(path), shape.separator, shape.encoding)
    log.info("wrote %d rows of the %s shape to %s (seed %d)", len(shape.export), name, path, seed)
    if truth_path is not None:
        write_table(shape.truth, Path(truth_path))
        log.info("wrote the planted segments of %d customers to %s", len(shape.truth), truth_path)
    return shape
