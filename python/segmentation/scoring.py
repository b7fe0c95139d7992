"""Scoring new customers with the latest run's saved model, without refitting.

The new file goes through the same ingest and dbt cleaning into a separate scoring
warehouse; its feature mart is encoded with the *saved* preprocessor (the training
run's scaling and categories) and assigned with the saved model. A category the
model never saw is encoded as none of the known levels (all of that variable's
one-hot columns 0), so the customer is placed by its other features; such rows are
flagged in `has_unseen_category`. A mixture model (the default) also gives each customer the
probability of the segment it is placed in (`membership_probability`; 1 for K-Means).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .clustering import assign, distances_to
from .config import Settings
from .contract import load_contract
from .errors import UserError
from .features import transform
from .models_io import load_model
from .warehouse import RESULTS_SCHEMA, connect, read_features, table_exists, write_results

log = logging.getLogger(__name__)


def latest_model_path(con) -> tuple[str, Path]:
    """The run whose assignments are current, and its saved model."""
    if not table_exists(con, RESULTS_SCHEMA, "segmentation_runs"):
        raise UserError("the warehouse has no segmentation run yet: run `make all` before `make score`.")
    rows = con.sql(
        f"select runs.run_id, runs.model_path from {RESULTS_SCHEMA}.segmentation_runs as runs "
        f"where runs.run_id = (select any_value(run_id) from {RESULTS_SCHEMA}.segment_assignments)"
    ).fetchall()
    if not rows:
        raise UserError("the warehouse has no segmentation run yet: run `make all` before `make score`.")
    return str(rows[0][0]), Path(rows[0][1])


def unseen_categories(preprocessor, table: pa.Table, categorical: tuple[str, ...]) -> tuple[np.ndarray, dict[str, int]]:
    """Rows holding a category the saved encoder does not know, and how many per column."""
    flags = np.zeros(table.num_rows, dtype=bool)
    counts: dict[str, int] = {}
    for column in categorical:
        encoder = preprocessor.named_transformers_[f"onehot_{column}"]
        known = pa.array(list(encoder.categories_[0]), type=table.column(column).type)
        unknown = pc.invert(pc.is_in(table.column(column), value_set=known)).to_numpy(zero_copy_only=False)
        if unknown.any():
            counts[column] = int(unknown.sum())
            flags |= unknown
    return flags, counts


def score_customers(settings: Settings, features_warehouse: Path, features_manifest: Path) -> int:
    """Assign segments to the customers of `features_warehouse` and write `segment_scores`."""
    contract = load_contract(features_manifest)
    with connect(settings.warehouse) as con:
        run_id, model_path = latest_model_path(con)
        artefact = load_model(model_path)
        trained = artefact["contract"]
        missing = [column for column in trained.features if column not in contract.features + contract.columns]
        if missing or trained.id_column != contract.id_column:
            raise UserError(
                f"the model of run {run_id} needs features {', '.join(missing) or trained.id_column} that the new "
                "file's mart does not provide: score files with the columns the model was trained on."
            )
        with connect(features_warehouse, read_only=True) as source:
            source_file = str(source.sql("select source_file from raw.load_metadata").fetchall()[0][0])
            table = read_features(source, trained)
        if table.num_rows == 0:
            raise UserError(f"no usable customer in {source_file}: see its quarantine in {features_warehouse}.")
        log.info("scoring %s customers with the model of run %s", f"{table.num_rows:,}", run_id)
        flags, counts = unseen_categories(artefact["preprocessor"], table, trained.categorical)
        preparation = artefact.get("mixture_preparation")
        if preparation is not None:  # also levels of few-valued numbers the model never saw
            more_flags, more_counts = preparation.unseen(table)
            flags |= more_flags
            counts = {**more_counts, **counts}
        for column, count in counts.items():
            log.warning("%s customers have a %s the model never saw: placed by their other features", count, column)
        matrix = transform(artefact["preprocessor"], table, trained)
        if preparation is not None:
            probabilities = artefact["model"].predict_proba(preparation.transform(table))
            labels = probabilities.argmax(axis=1)
            probability = probabilities[np.arange(len(labels)), labels]
            distances = distances_to(matrix, np.asarray(artefact["centres"], dtype=np.float64), labels)
        else:
            labels, distances = assign(artefact["model"], matrix)
            probability = np.ones(len(labels), dtype=np.float32)
        scored_at = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
        n = table.num_rows
        scores = pa.table(
            {
                "customer_id": table.column(trained.id_column).combine_chunks().cast(pa.string()),
                "segment_id": pa.array(artefact["segment_ids"][labels], pa.int32()),
                "distance_to_centroid": pa.array(distances.astype(np.float64), pa.float64()),
                "membership_probability": pa.array(probability.astype(np.float64), pa.float64()),
                "has_unseen_category": pa.array(flags, pa.bool_()),
                "run_id": pa.array([run_id] * n, pa.string()),
                "scored_at": pa.array([scored_at] * n, pa.timestamp("s")),
                "source_file": pa.array([source_file] * n, pa.string()),
            }
        )
        write_results(con, {"segment_scores": scores}, {})
    log.info("scored %s customers from %s with run %s", f"{n:,}", source_file, run_id)
    return n
