"""Small real DuckDB warehouses with the tables the report reads (marts.md), for three declared schemas.

Customers are simulated per segment from a schema (each feature's declaration and its
distribution in every segment); the marts are then computed from those customers as dbt
computes them (segment_traits long, feature_catalog, …), so every figure on the page can
be checked against the warehouse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


@dataclass
class Feat:
    name: str
    data_type: str  # number | integer | boolean | category
    label: tuple[str, str]
    sim: dict  # segment -> (mean, sd) | p | {level: p}
    role: str = "numeric"
    unit: tuple[str, str] | None = None
    high: tuple[str, str] | None = None
    low: tuple[str, str] | None = None
    levels: list[tuple[str, str, str]] = field(default_factory=list)  # value, en, fr
    is_ordered: bool = False
    is_skewed: bool = False


@dataclass
class Schema:
    name: str
    sizes: dict[int, int]
    features: list[Feat]
    quarantine: dict[str, tuple[str, str | None, str | None, str | None]]  # reason -> rule, feature, column, value
    source_file: str = "data/raw/customers.csv"


def _levels(names, fr=None):
    return [(n, n, (fr or {}).get(n, n)) for n in names]


SEED = Schema(
    name="seed",
    sizes={1: 300, 2: 200, 3: 130, 4: 110},
    features=[
        Feat(
            "gender",
            "category",
            ("gender", "genre"),
            {1: {"Male": 0.55}, 2: {"Male": 0.6}, 3: {"Male": 0.55}, 4: {"Male": 0.1}},
            role="categorical",
            levels=[("Male", "Men", "Hommes"), ("Female", "Women", "Femmes")],
        ),
        Feat(
            "is_married",
            "boolean",
            ("married", "mariés"),
            {1: 0.8, 2: 0.08, 3: 0.92, 4: 0.85},
            role="categorical",
            high=("married", "mariés"),
            low=("single", "célibataires"),
        ),
        Feat(
            "age",
            "integer",
            ("age", "âge"),
            {1: (47, 6), 2: (27, 4), 3: (76, 6), 4: (38, 5)},
            unit=("years", "ans"),
            high=("older", "plus âgés"),
            low=("young", "jeunes"),
        ),
        Feat(
            "has_degree",
            "boolean",
            ("graduates", "diplômés"),
            {1: 0.8, 2: 0.25, 3: 0.6, 4: 0.5},
            role="categorical",
            high=("graduates", "diplômés"),
            low=("non-graduates", "non diplômés"),
        ),
        Feat(
            "profession",
            "category",
            ("profession", "profession"),
            {
                1: {"Artist": 0.45, "Engineer": 0.2, "Executive": 0.2, "Doctor": 0.15},
                2: {"Healthcare": 0.6, "Artist": 0.2, "Doctor": 0.2},
                3: {"Lawyer": 1.0},
                4: {"Homemaker": 1.0},
            },
            role="categorical",
            levels=_levels(
                ["Artist", "Doctor", "Engineer", "Executive", "Healthcare", "Homemaker", "Lawyer"],
                {"Artist": "Artiste", "Lawyer": "Avocat", "Homemaker": "Au foyer", "Healthcare": "Santé"},
            ),
        ),
        Feat(
            "work_experience",
            "number",
            ("work experience", "expérience professionnelle"),
            {s: (2.5, 2) for s in (1, 2, 3, 4)},
            unit=("years", "ans"),
        ),
        Feat(
            "spending_score",
            "category",
            ("spending", "dépenses"),
            {
                1: {"Low": 0.2, "Average": 0.65, "High": 0.15},
                2: {"Low": 0.93, "Average": 0.05, "High": 0.02},
                3: {"Low": 0.15, "Average": 0.15, "High": 0.7},
                4: {"Low": 0.6, "Average": 0.3, "High": 0.1},
            },
            role="ordinal",
            levels=[("Low", "low", "faibles"), ("Average", "average", "moyennes"), ("High", "high", "élevées")],
            is_ordered=True,
        ),
        Feat(
            "family_size",
            "integer",
            ("family size", "taille du foyer"),
            {1: (2.6, 1), 2: (4.4, 1), 3: (2.0, 0.8), 4: (2.6, 1)},
            unit=("people", "personnes"),
            high=("large families", "familles nombreuses"),
            low=("small households", "petits foyers"),
        ),
        Feat(
            "var_1",
            "category",
            ("customer category", "catégorie client"),
            {s: {"Cat_4": 0.5, "Cat_6": 0.5} for s in (1, 2, 3, 4)},
            role="categorical",
        ),
    ],
    quarantine={
        "age_out_of_range": ("out_of_range", "age", "Age", "212"),
        "unknown_profession": ("unknown_level", "profession", "Profession", "Astronaut"),
        "missing_customer_id": ("missing_id", None, None, None),
        "unparseable_work_experience": ("unparseable", "work_experience", "Work_Experience", "two"),
    },
)

RETAIL = Schema(
    name="retail",
    sizes={1: 260, 2: 240, 3: 180},
    features=[
        Feat(
            "age",
            "integer",
            ("age", "âge"),
            {1: (55, 8), 2: (38, 8), 3: (46, 10)},
            unit=("years", "ans"),
            high=("older", "plus âgés"),
            low=("younger", "plus jeunes"),
        ),
        Feat(
            "education",
            "category",
            ("education", "études"),
            {
                1: {"PhD": 0.5, "Master": 0.3, "Graduation": 0.2},
                2: {"Graduation": 0.5, "Basic": 0.3, "Master": 0.2},
                3: {"Graduation": 0.6, "Master": 0.2, "PhD": 0.2},
            },
            role="categorical",
            levels=[
                ("Basic", "basic", "base"),
                ("Graduation", "graduate", "licence"),
                ("Master", "master's", "master"),
                ("PhD", "doctorate", "doctorat"),
            ],
        ),
        Feat(
            "income",
            "number",
            ("income", "revenu"),
            {1: (82000, 9000), 2: (31000, 8000), 3: (56000, 9000)},
            unit=("€", "€"),
            high=("affluent", "aisés"),
            low=("modest", "modestes"),
            is_skewed=True,
        ),
        Feat(
            "kidhome",
            "integer",
            ("children at home", "enfants au foyer"),
            {1: (0.1, 0.3), 2: (1.4, 0.6), 3: (0.6, 0.5)},
            high=("with children", "avec enfants"),
            low=("no children", "sans enfants"),
        ),
        Feat(
            "mnt_wines",
            "number",
            ("wine spend", "dépenses en vin"),
            {1: (900, 200), 2: (60, 40), 3: (300, 100)},
            unit=("€", "€"),
            is_skewed=True,
        ),
        Feat(
            "num_catalog_purchases",
            "integer",
            ("catalogue purchases", "achats sur catalogue"),
            {1: (6, 2), 2: (0.5, 0.5), 3: (2, 1)},
            high=("catalogue buyers", "acheteurs catalogue"),
            low=("rare catalogue buyers", "acheteurs catalogue rares"),
        ),
        Feat("num_web_purchases", "integer", ("web purchases", "achats en ligne"), {1: (5, 2), 2: (2, 1), 3: (7, 2)}),
        Feat(
            "recency",
            "integer",
            ("days since last purchase", "jours depuis le dernier achat"),
            {1: (48, 25), 2: (50, 25), 3: (49, 25)},
            unit=("days", "jours"),
        ),
        Feat(
            "response",
            "boolean",
            ("responded to the last campaign", "a répondu à la dernière campagne"),
            {1: 0.3, 2: 0.05, 3: 0.12},
            role="profile",
            high=("campaign responders", "répondants aux campagnes"),
        ),
    ],
    quarantine={
        "income_out_of_range": ("out_of_range", "income", "Income", "666666"),
        "unparseable_income": ("unparseable", "income", "Income", "n/a€"),
        "unknown_education": ("unknown_level", "education", "Education", "2n Cycle"),
    },
    source_file="data/raw/marketing_campaign.csv",
)

TINY = Schema(
    name="tiny",
    sizes={1: 90, 2: 70},
    features=[
        Feat(
            "region",
            "category",
            ("region", "région"),
            {1: {"North": 0.8, "South": 0.2}, 2: {"North": 0.25, "South": 0.75}},
            role="categorical",
        ),
        Feat("spend", "number", ("spend", "dépense"), {1: (120, 30), 2: (40, 15)}, unit=("€", "€")),
        Feat("visits", "integer", ("visits", "visites"), {1: (3, 1), 2: (9, 2)}),
    ],
    quarantine={},
    source_file="data/raw/tiny.csv",
)

SCHEMAS = {s.name: s for s in (SEED, RETAIL, TINY)}


def simulate(schema: Schema, seed: int = 0, rename: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """One row per customer: id, segment, one column per feature (and `<name>_level` of ordered ones)."""
    rng = np.random.default_rng(seed)
    frames = []
    for segment, n in schema.sizes.items():
        frame = {"customer_id": [f"{schema.name[0].upper()}{segment}{i:05d}" for i in range(n)], "segment_id": segment}
        for f in schema.features:
            sim = f.sim[segment]
            if f.data_type in ("number", "integer"):
                values = np.clip(rng.normal(sim[0], sim[1], n), 0, None)
                frame[f.name] = values.round() if f.data_type == "integer" else values.round(2)
            elif f.data_type == "boolean":
                frame[f.name] = rng.random(n) < sim
            else:
                names = [lv[0] for lv in f.levels] or sorted({k for s in f.sim.values() for k in s})
                p = np.array([sim.get(k, 0.0) for k in names])
                rest = [i for i, k in enumerate(names) if k not in sim]
                if rest and p.sum() < 1:  # the rest spread over the other levels
                    p[rest] = (1 - p.sum()) / len(rest)
                frame[f.name] = rng.choice(names, n, p=p / p.sum())
        frames.append(pd.DataFrame(frame))
    customers = pd.concat(frames, ignore_index=True)
    for f in schema.features:
        if f.is_ordered:
            customers[f"{f.name}_level"] = (
                customers[f.name].map({lv[0]: i for i, lv in enumerate(f.levels)}).astype(float)
            )
    for feature, mapping in (rename or {}).items():
        customers[feature] = customers[feature].replace(mapping)
    return customers


def catalog_frames(schema: Schema, relabel: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """feature_catalog and feature_levels; relabel: feature -> label (both languages), e.g. hostile text."""
    rows, levels = [], []
    for position, f in enumerate(schema.features, start=1):
        en, fr = (relabel or {}).get(f.name, f.label[0]), (relabel or {}).get(f.name, f.label[1])
        word = lambda pair, i: pair[i] if pair else None  # noqa: E731
        rows.append(
            dict(
                feature=f.name,
                position=position,
                data_type=f.data_type,
                role=f.role,
                is_ordered=f.is_ordered,
                is_skewed=f.is_skewed,
                is_derived=False,
                source_column=f.name.title(),
                label_en=en,
                label_fr=fr,
                unit_en=word(f.unit, 0),
                unit_fr=word(f.unit, 1),
                high_en=word(f.high, 0),
                high_fr=word(f.high, 1),
                low_en=word(f.low, 0),
                low_fr=word(f.low, 1),
            )
        )
        for i, (value, len_, lfr) in enumerate(f.levels):
            levels.append(dict(feature=f.name, level=value, position=i, label_en=len_, label_fr=lfr))
        if f.is_ordered:
            rows.append(
                dict(
                    rows[-1],
                    feature=f"{f.name}_level",
                    data_type="integer",
                    role="ordinal",
                    is_ordered=False,
                    high_en=f"high {en}",
                    high_fr=f"{fr} élevées",
                    low_en=f"low {en}",
                    low_fr=f"{fr} faibles",
                )
            )
    return pd.DataFrame(rows), pd.DataFrame(levels, columns=["feature", "level", "position", "label_en", "label_fr"])


def traits_frame(customers: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """marts.segment_traits, long: (segment, feature, level) with segment and base values, lift, std_diff."""
    out = []
    for row in catalog.itertuples():
        column = customers[row.feature]
        if row.data_type in ("number", "integer"):
            series = {None: column.astype(float)}
            kind = "mean"
        elif row.data_type == "boolean":
            series = {None: column.astype(float)}
            kind = "share"
        else:
            series = {str(level): (column == level).astype(float) for level in sorted(column.unique())}
            kind = "share"
        for level, values in series.items():
            base = float(values.mean())
            base_sd = float(values.std(ddof=0)) if kind == "mean" else float(np.sqrt(base * (1 - base)))
            for segment, seg in values.groupby(customers["segment_id"]):
                value = float(seg.mean())
                out.append(
                    dict(
                        segment_id=segment,
                        feature=row.feature,
                        level=level,
                        kind=kind,
                        segment_customers=len(seg),
                        segment_value=value,
                        base_value=base,
                        base_sd=base_sd,
                        lift=value / base if base else None,
                        std_diff=(value - base) / base_sd if base_sd else None,
                    )
                )
    return pd.DataFrame(out)


def build(
    path: Path,
    schema: Schema | str,
    seed: int = 0,
    *,
    rename=None,
    relabel=None,
    bic: bool = False,
    previous_run: bool = False,
    reason: str | None = None,
) -> Path:
    """Write a warehouse for `schema` at `path`; returns the path.

    rename: feature -> {value: new value} (hostile levels); relabel: feature -> label;
    bic: the selection table has bic/icl columns (a mixture run); previous_run: migration rows.
    """
    schema = SCHEMAS[schema] if isinstance(schema, str) else schema
    customers = simulate(schema, seed, rename)
    catalog, levels = catalog_frames(schema, relabel)
    traits = traits_frame(customers, catalog)
    total = len(customers)
    profiles = customers.groupby("segment_id").size().rename("customers").reset_index()
    profiles["share_of_customers"] = profiles["customers"] / total
    profiles["mean_distance_to_centroid"] = 1.0 + profiles["segment_id"] / 10

    merged = 21
    quarantined = {reason: 3 + i * 2 for i, reason in enumerate(schema.quarantine)}
    imputed = [f.name for f in schema.features if f.data_type != "category"][:3]
    quality = pd.DataFrame(
        [
            ("accounting", "rows_read", total + merged + sum(quarantined.values()), 1),
            ("accounting", "customers_kept", total, 2),
            ("accounting", "duplicate_records_merged", merged, 3),
            ("accounting", "rows_quarantined", sum(quarantined.values()), 4),
            *(("quarantine", r, n, 10 + i) for i, (r, n) in enumerate(quarantined.items())),
            *(("imputation", f, 7 * (i + 1), 20 + i) for i, f in enumerate(imputed)),
        ],
        columns=["section", "item", "rows", "display_order"],
    )
    examples = pd.DataFrame(
        [
            (r, rule, feat, col, val, 1, False, quarantined[r], 5)
            for r, (rule, feat, col, val) in schema.quarantine.items()
        ],
        columns=[
            "quarantine_reason",
            "rule",
            "feature",
            "column_name",
            "source_value",
            "example_rank",
            "is_truncated",
            "rows",
            "first_source_row_number",
        ],
    )
    columns = pd.DataFrame(
        [
            (i + 1, f.name.title(), "varchar", f.name.title(), True, total, 5, False, False)
            for i, f in enumerate(schema.features)
        ]
        + [(len(schema.features) + 1, "Notes", "varchar", None, False, 0, 0, True, False)],
        columns=[
            "column_position",
            "column_name",
            "loaded_as",
            "required_column",
            "is_required",
            "values_present",
            "distinct_values",
            "is_empty",
            "is_constant",
        ],
    )

    parameters = {"algorithm": "mixture" if bic else "kmeans", "selection": {"stability_threshold": 0.8}}
    if reason:
        parameters["reason"] = reason
    k = len(schema.sizes)
    runs = pd.DataFrame(
        {
            "run_id": ["old-run", "run-2024-b"],
            "started_at": [datetime(2024, 1, 1, 9), datetime(2024, 3, 14, 9)],
            "finished_at": [datetime(2024, 1, 1, 9, 5), datetime(2024, 3, 14, 9, 6)],
            "k": [k + 1, k],
            "k_source": ["user", "auto"],
            "selection_rule": ["user", "stable_near_elbow"],
            "knee_k": [k, k + 1],
            "chosen_stability": [0.7, 0.93],
            "algorithm": [parameters["algorithm"]] * 2,
            "categorical_weighting": ["balanced"] * 2,
            "random_state": [42, 42],
            "parameters": [json.dumps(parameters)] * 2,
            "customers": [total, total],
            "features": [17, 17],
            "silhouette_sample": [10_000, 10_000],
            "tsne_sample": [400, 400],
            "source_file": [schema.source_file] * 2,
            "previous_run_id": [None, "old-run" if previous_run else None],
            "label_column": [None, None],
            "label_ari": [None, None],
        }
    )
    ks = np.arange(2, 8)
    selection = pd.DataFrame(
        {
            "run_id": "run-2024-b",
            "k": ks,
            "inertia": 6000 * ks**-0.7,
            "silhouette": 0.2 + 0.1 * (ks == k),
            "calinski_harabasz": 2400 - 150 * ks,
            "davies_bouldin": 1.9 - 0.06 * ks,
            "stability": np.where(ks == k, 0.93, 0.71),
            "is_knee": ks == k + 1,
            "is_chosen": ks == k,
        }
    )
    if bic:
        selection["bic"] = 50_000 - 3_000 * np.minimum(ks, k) + 500 * ks
        selection["icl"] = selection["bic"] + 800
    rng = np.random.default_rng(seed)
    sample = customers.sample(n=min(400, total), random_state=seed)
    angle = sample["segment_id"].to_numpy() * 2 * np.pi / k
    projection = pd.DataFrame(
        {
            "run_id": "run-2024-b",
            "customer_id": sample["customer_id"].to_numpy(),
            "segment_id": sample["segment_id"].to_numpy(),
            "pca_x": 3 * np.cos(angle) + rng.normal(0, 1, len(sample)),
            "pca_y": 3 * np.sin(angle) + rng.normal(0, 1, len(sample)),
            "tsne_x": 20 * np.cos(angle) + rng.normal(0, 3, len(sample)),
            "tsne_y": 20 * np.sin(angle) + rng.normal(0, 3, len(sample)),
        }
    )
    migration = pd.DataFrame(columns=["run_id", "previous_run_id", "previous_segment_id", "segment_id", "customers"])
    if previous_run:
        moved = customers.assign(previous=(customers["segment_id"] % k) + 1)
        migration = moved.groupby(["previous", "segment_id"]).size().rename("customers").reset_index()
        migration = migration.rename(columns={"previous": "previous_segment_id"}).assign(
            run_id="run-2024-b", previous_run_id="old-run"
        )
    segments = customers.assign(run_id="run-2024-b", distance_to_centroid=1.0)
    tables = {
        "marts.segment_profiles": (profiles, "segment_id::integer as segment_id, customers::bigint as customers"),
        "marts.segment_traits": (
            traits,
            "segment_id::integer as segment_id, level::varchar as level,"
            " segment_customers::bigint as segment_customers",
        ),
        "marts.feature_catalog": (catalog, "position::integer as position"),
        "marts.feature_levels": (levels, "level::varchar as level, position::integer as position"),
        "marts.data_quality_summary": (quality, "rows::bigint as rows, display_order::integer as display_order"),
        "marts.quarantine_examples": (examples, "rows::bigint as rows, example_rank::integer as example_rank"),
        "marts.data_quality_columns": (columns, "column_position::integer as column_position"),
        "marts.customer_segments": (segments, "segment_id::integer as segment_id"),
        "segmentation.segmentation_runs": (
            runs,
            "k::integer as k, previous_run_id::varchar as previous_run_id,"
            " label_column::varchar as label_column, label_ari::double as label_ari",
        ),
        "segmentation.segment_model_selection": (selection, "k::integer as k"),
        "segmentation.segment_projection": (projection, "segment_id::integer as segment_id"),
        "segmentation.segment_migration": (
            migration,
            "previous_segment_id::integer as previous_segment_id, segment_id::integer as segment_id,"
            " customers::bigint as customers, run_id::varchar as run_id",
        ),
        "segmentation.segment_label_crosstab": (
            pd.DataFrame({"run_id": [], "label": [], "segment_id": [], "customers": []}, dtype=object),
            "run_id::varchar as run_id, label::varchar as label, segment_id::integer as segment_id,"
            " customers::bigint as customers",
        ),
    }
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts; create schema segmentation")
        for name, (frame, casts) in tables.items():
            con.register("frame", frame)
            con.execute(f"create table {name} as select * replace ({casts}) from frame")
            con.unregister("frame")
    return path
