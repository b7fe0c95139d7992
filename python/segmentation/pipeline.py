"""The clustering step end to end: mart → features → k → segments → views → warehouse.

This is the only place that strings the pure modules together with the warehouse;
each stage logs what it does and how long it took, because at millions of rows a
silent minute looks like a hang.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pyarrow as pa

from . import __version__
from .clustering import fit_segments
from .config import Settings
from .contract import load_contract
from .errors import UserError
from .features import prepare_features
from .projection import project
from .selection import evaluate_k
from .warehouse import connect, read_features, write_results

log = logging.getLogger(__name__)


@contextmanager
def stage(name: str):
    """Log a stage's start and duration."""
    log.info("%s …", name)
    started = time.perf_counter()
    yield
    log.info("%s done in %.1f s", name, time.perf_counter() - started)


def make_run_id(started_at: datetime, ids: pa.Array, parameters: dict) -> str:
    """Readable, sortable and unique: UTC time plus a short hash of the data and settings."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode())
    digest.update(str(len(ids)).encode())
    digest.update(str(ids.slice(0, 1000).to_pylist()).encode())
    return f"{started_at:%Y%m%dT%H%M%S}-{digest.hexdigest()[:8]}"


def save_model(path: Path, artefact: dict) -> None:
    """Write the fitted preprocessing + model atomically (a killed run leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    joblib.dump(artefact, temporary)
    os.replace(temporary, path)


def load_model(path: Path) -> dict:
    """Reload a saved run: {'run_id', 'contract', 'preprocessor', 'model', 'segment_ids', …}."""
    if not path.exists():
        raise UserError(f"no saved model at {path}: run `make all` first.")
    return joblib.load(path)


def _source_file(con) -> str:
    try:
        return str(con.sql("select source_file from raw.load_metadata").fetchall()[0][0])
    except Exception:  # the mart may have been loaded some other way
        return ""


def run_segmentation(settings: Settings) -> str:
    """Cluster the feature mart and write the run's tables; returns the run id."""
    started_at = datetime.now(UTC).replace(microsecond=0)
    contract = load_contract(settings.manifest_path)
    with connect(settings.warehouse) as con:
        with stage(f"reading {contract.relation}"):
            table = read_features(con, contract)
            source_file = _source_file(con)
        n_customers = table.num_rows
        if settings.k is not None and not 2 <= settings.k <= max(2, n_customers - 1):
            raise UserError(
                f"K={settings.k} cannot be used with {n_customers} customers: choose K between 2 and "
                f"{max(2, n_customers - 1)}, or leave K unset to choose it by the elbow method."
            )
        if n_customers < settings.k_min + 1:
            raise UserError(
                f"only {n_customers} usable customers: at least {settings.k_min + 1} are needed to form segments. "
                "See marts.customer_quarantine for the rows set aside."
            )

        with stage("preparing features"):
            preprocessor, matrix = prepare_features(table, contract, settings.random_state)
        feature_names = [str(name) for name in preprocessor.get_feature_names_out()]

        with stage(f"choosing k among {settings.k_min}…{settings.k_max}"):
            selection = evaluate_k(
                matrix,
                settings.k_min,
                settings.k_max,
                settings.random_state,
                fit_sample=settings.selection_sample,
                silhouette_sample=settings.silhouette_sample,
                requested_k=settings.k,
            )
        log.info("k = %d (%s; elbow knee at %d)", selection.chosen, selection.source, selection.knee)

        with stage(f"fitting K-Means with k={selection.chosen} and assigning {n_customers:,} customers"):
            segmentation = fit_segments(matrix, selection.chosen, settings.random_state)

        with stage("projecting to 2-D (PCA, t-SNE)"):
            rows, pca_xy, tsne_xy = project(matrix, segmentation.labels, settings.tsne_sample, settings.random_state)

        parameters = {
            "algorithm": "kmeans",
            "init": "k-means++",
            "n_init": 4,
            "k": selection.chosen,
            "k_range": [settings.k_min, settings.k_max],
            "random_state": settings.random_state,
            "selection_fit_sample": selection.fit_sample,
            "features": feature_names,
            "version": __version__,
        }
        ids = table.column(contract.id_column).combine_chunks()
        run_id = make_run_id(started_at, ids, parameters)
        model_path = settings.models_dir / f"{run_id}.joblib"
        save_model(
            model_path,
            {
                "run_id": run_id,
                "contract": contract,
                "preprocessor": preprocessor,
                "model": segmentation.model,
                "segment_ids": segmentation.segment_ids,
                "feature_names": feature_names,
            },
        )

        centroid_rows = [
            (run_id, int(segmentation.segment_ids[label]), feature, float(value))
            for label, centre in enumerate(segmentation.model.cluster_centers_)
            for feature, value in zip(feature_names, centre, strict=True)
        ]
        finished_at = datetime.now(UTC).replace(microsecond=0)
        tables_replace = {
            "segment_assignments": pa.table(
                {
                    "customer_id": ids.cast(pa.string()),
                    "segment_id": pa.array(segmentation.labels, pa.int32()),
                    "distance_to_centroid": pa.array(segmentation.distances.astype(np.float64), pa.float64()),
                    "run_id": pa.array(np.full(n_customers, run_id, dtype=object), pa.string()),
                }
            ),
            "segment_projection": pa.table(
                {
                    "run_id": pa.array([run_id] * len(rows), pa.string()),
                    "customer_id": ids.take(pa.array(rows)).cast(pa.string()),
                    "segment_id": pa.array(segmentation.labels[rows], pa.int32()),
                    "pca_x": pa.array(pca_xy[:, 0], pa.float32()),
                    "pca_y": pa.array(pca_xy[:, 1], pa.float32()),
                    "tsne_x": pa.array(tsne_xy[:, 0], pa.float32()),
                    "tsne_y": pa.array(tsne_xy[:, 1], pa.float32()),
                }
            ),
        }
        tables_append = {
            "segment_model_selection": pa.table(
                {
                    "run_id": pa.array([run_id] * len(selection.ks), pa.string()),
                    "k": pa.array(selection.ks, pa.int32()),
                    "inertia": pa.array(selection.inertia, pa.float64()),
                    "silhouette": pa.array(selection.silhouette, pa.float64()),
                    "is_chosen": pa.array([k == selection.chosen for k in selection.ks], pa.bool_()),
                    "is_knee": pa.array([k == selection.knee for k in selection.ks], pa.bool_()),
                }
            ),
            "segment_centroids": pa.table(
                {
                    "run_id": pa.array([row[0] for row in centroid_rows], pa.string()),
                    "segment_id": pa.array([row[1] for row in centroid_rows], pa.int32()),
                    "feature": pa.array([row[2] for row in centroid_rows], pa.string()),
                    "value": pa.array([row[3] for row in centroid_rows], pa.float64()),
                }
            ),
            "segmentation_runs": pa.table(
                {
                    "run_id": [run_id],
                    "started_at": pa.array([started_at.replace(tzinfo=None)], pa.timestamp("s")),
                    "finished_at": pa.array([finished_at.replace(tzinfo=None)], pa.timestamp("s")),
                    "k": pa.array([selection.chosen], pa.int32()),
                    "k_source": [selection.source],
                    "knee_k": pa.array([selection.knee], pa.int32()),
                    "algorithm": ["kmeans"],
                    "random_state": pa.array([settings.random_state], pa.int32()),
                    "parameters": [json.dumps(parameters, sort_keys=True)],
                    "customers": pa.array([n_customers], pa.int64()),
                    "features": pa.array([len(feature_names)], pa.int32()),
                    "selection_sample": pa.array([selection.fit_sample], pa.int32()),
                    "silhouette_sample": pa.array([selection.silhouette_sample], pa.int32()),
                    "tsne_sample": pa.array([len(rows)], pa.int32()),
                    "source_file": [source_file],
                    "model_path": [str(model_path)],
                }
            ),
        }
        with stage("writing results to the warehouse (one transaction)"):
            write_results(con, tables_replace, tables_append)
    log.info("run %s: %s customers in %d segments", run_id, f"{n_customers:,}", selection.chosen)
    return run_id
