"""A segmentation run's results as Arrow tables, ready for one transaction in the warehouse.

Three kinds: tables replaced each run (the current assignments and what the report draws from
them), tables appended to (the history of runs, their evidence for k and their centres), and
tables derived in SQL from the previous run's and this run's (customer migration).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.metrics import adjusted_rand_score

from .clustering import Segmentation
from .config import Settings
from .contract import FeatureContract
from .features import centres_to_units
from .mixture_selection import MixtureSelection
from .selection import SelectionResult
from .warehouse import RESULTS_SCHEMA


def mixture_columns(ks: tuple[int, ...], mixture: MixtureSelection | None) -> dict[str, pa.Array]:
    """The latent class model's evidence per k, beside K-Means' (null where it was not fitted)."""

    def column(name: str) -> pa.Array:
        if mixture is None:
            return pa.nulls(len(ks), pa.float64())
        values = dict(zip(mixture.ks, getattr(mixture, name), strict=True))
        return pa.array([None if np.isnan(values.get(k, np.nan)) else float(values[k]) for k in ks], pa.float64())

    return {
        "bic": column("bic"),
        "icl": column("icl"),
        "log_likelihood": column("log_likelihood"),
        "mixture_stability": column("stability"),
        "smallest_segment_share": column("smallest_share"),
    }


def label_agreement(table: pa.Table, contract: FeatureContract, labels: np.ndarray) -> tuple[float | None, pa.Table]:
    """ARI and crosstab between found segments and an existing segmentation column, if declared."""
    empty = pa.table(
        {
            "segment_id": pa.array([], pa.int32()),
            "label": pa.array([], pa.string()),
            "customers": pa.array([], pa.int64()),
        }
    )
    if not contract.label:
        return None, empty
    known = table.column(contract.label).cast(pa.string())
    present = pc.is_valid(known).to_numpy(zero_copy_only=False)
    if not present.any():
        return None, empty
    values = np.asarray(known.filter(pa.array(present)).to_pylist(), dtype=object)
    ari = float(adjusted_rand_score(values, labels[present]))
    crosstab = (
        pa.table({"segment_id": pa.array(labels[present], pa.int32()), "label": pa.array(values.tolist(), pa.string())})
        .group_by(["segment_id", "label"])
        .aggregate([("segment_id", "count")])
        .rename_columns(["segment_id", "label", "customers"])
    )
    return ari, crosstab.cast(empty.schema).sort_by([("segment_id", "ascending"), ("label", "ascending")])


def constant(value: str, n: int) -> pa.Array:
    """`value` n times, as a string column (built from one dictionary entry)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value])).cast(pa.string())


def projection_table(
    run_id: str, ids: pa.Array, labels: np.ndarray, pca_xy: np.ndarray, tsne_xy: np.ndarray
) -> pa.Table:
    """The plotted customers' 2-D coordinates (`segment_projection`): their ids and segments, row for row."""
    return pa.table(
        {
            "run_id": constant(run_id, len(ids)),
            "customer_id": ids,
            "segment_id": pa.array(labels, pa.int32()),
            "pca_x": pa.array(pca_xy[:, 0], pa.float32()),
            "pca_y": pa.array(pca_xy[:, 1], pa.float32()),
            "tsne_x": pa.array(tsne_xy[:, 0], pa.float32()),
            "tsne_y": pa.array(tsne_xy[:, 1], pa.float32()),
        }
    )


def build_tables(
    *,
    run_id: str,
    started_at: datetime,
    settings: Settings,
    ids: pa.Array,
    selection: SelectionResult,
    chosen: tuple[int, str, float],
    mixture_selection: MixtureSelection | None,
    ambiguous: int,
    algorithm_reason: str,
    segmentation: Segmentation,
    preprocessor,
    feature_names: list[str],
    projection: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
    parameters: dict,
    source_file: str,
    model_path: Path,
    previous_run_id: str | None,
    weighting: str,
    label: tuple[str | None, float | None, pa.Table],
    dropped: list[str],
    timings: dict[str, float],
) -> tuple[dict[str, pa.Table], dict[str, pa.Table], dict[str, str]]:
    """The run's tables as Arrow: (replaced each run, appended to history, derived in SQL)."""
    n_customers = len(ids)
    rows, pca_xy, tsne_xy = projection
    label_column, label_ari, crosstab = label
    units = centres_to_units(preprocessor, segmentation.centres)
    order = np.argsort(segmentation.segment_ids)
    centroid_segments = np.repeat(segmentation.segment_ids[order], len(feature_names))
    finished_at = datetime.now(UTC).replace(microsecond=0)
    chosen_k, rule, chosen_stability = chosen
    probabilities = (
        segmentation.probabilities if segmentation.probabilities is not None else np.ones(n_customers, np.float32)
    )

    replace = {
        "segment_assignments": pa.table(
            {
                "customer_id": ids,
                "segment_id": pa.array(segmentation.labels, pa.int32()),
                "distance_to_centroid": pa.array(segmentation.distances.astype(np.float64), pa.float64()),
                "membership_probability": pa.array(probabilities.astype(np.float64), pa.float64()),
                "run_id": constant(run_id, n_customers),
            }
        ),
        "segment_label_crosstab": crosstab.append_column("run_id", constant(run_id, crosstab.num_rows)),
        "segment_lineage": pa.table(
            {
                "run_id": constant(run_id, segmentation.k + len(segmentation.vanished)),
                "segment_id": pa.array(
                    [int(s) for s in sorted(segmentation.segment_ids)] + segmentation.vanished, pa.int32()
                ),
                "status": pa.array(
                    [segmentation.status.get(int(s), "new") for s in sorted(segmentation.segment_ids)]
                    + ["vanished"] * len(segmentation.vanished),
                    pa.string(),
                ),
                "customers": pa.array(
                    [
                        int(segmentation.sizes[np.flatnonzero(segmentation.segment_ids == s)[0]])
                        for s in sorted(segmentation.segment_ids)
                    ]
                    + [0] * len(segmentation.vanished),
                    pa.int64(),
                ),
            }
        ),
    }
    append = {
        "segment_model_selection": pa.table(
            {
                "run_id": constant(run_id, len(selection.ks)),
                "k": pa.array(selection.ks, pa.int32()),
                "inertia": pa.array(selection.inertia, pa.float64()),
                "silhouette": pa.array(selection.silhouette, pa.float64()),
                "calinski_harabasz": pa.array(selection.calinski_harabasz, pa.float64()),
                "davies_bouldin": pa.array(selection.davies_bouldin, pa.float64()),
                "stability": pa.array(selection.stability, pa.float64()),
                "is_knee": pa.array([k == selection.knee for k in selection.ks], pa.bool_()),
                "is_chosen": pa.array([k == chosen_k for k in selection.ks], pa.bool_()),
                **mixture_columns(selection.ks, mixture_selection),
            }
        ),
        "segment_centroids": pa.table(
            {
                "run_id": constant(run_id, len(centroid_segments)),
                "segment_id": pa.array(centroid_segments, pa.int32()),
                "feature": pa.array(feature_names * segmentation.k, pa.string()),
                "value": pa.array(units[order].ravel(), pa.float64()),
            }
        ),
        "segmentation_runs": pa.table(
            {
                "run_id": [run_id],
                "started_at": pa.array([started_at.replace(tzinfo=None)], pa.timestamp("s")),
                "finished_at": pa.array([finished_at.replace(tzinfo=None)], pa.timestamp("s")),
                "k": pa.array([chosen_k], pa.int32()),
                "k_source": [
                    "user" if rule == "user" else (mixture_selection.criterion if mixture_selection else "elbow")
                ],
                "selection_rule": [rule],
                "knee_k": pa.array([selection.knee], pa.int32()),
                "chosen_stability": pa.array([chosen_stability], pa.float64()),
                "algorithm": [settings.algorithm],
                "algorithm_reason": [algorithm_reason],
                "kmeans_k": pa.array([selection.chosen], pa.int32()),
                "ambiguous_customers": pa.array([ambiguous], pa.int64()),
                "ambiguous_probability": pa.array([settings.ambiguous_probability], pa.float64()),
                "categorical_weighting": [weighting],
                "random_state": pa.array([settings.random_state], pa.int32()),
                "parameters": [json.dumps(parameters, sort_keys=True, default=str)],
                "customers": pa.array([n_customers], pa.int64()),
                "features": pa.array([len(feature_names)], pa.int32()),
                "dropped_features": [", ".join(dropped)],
                "selection_sample": pa.array([selection.fit_sample], pa.int32()),
                "silhouette_sample": pa.array([selection.silhouette_sample], pa.int32()),
                "stability_sample": pa.array([selection.stability_sample], pa.int32()),
                "bootstraps": pa.array([selection.bootstraps], pa.int32()),
                "tsne_sample": pa.array([len(rows)], pa.int32()),
                "source_file": [source_file],
                "model_path": [str(model_path)],
                "previous_run_id": pa.array([previous_run_id], pa.string()),
                "label_column": pa.array([label_column if label_ari is not None else None], pa.string()),
                "label_ari": pa.array([label_ari], pa.float64()),
                "stage_seconds": [json.dumps(timings, sort_keys=True)],
            }
        ),
    }
    if pca_xy is not None:  # else written on its own once computed (`pipeline.write_projection`)
        plotted = ids.take(pa.array(rows))
        replace["segment_projection"] = projection_table(run_id, plotted, segmentation.labels[rows], pca_xy, tsne_xy)
    if previous_run_id:
        migration = f"""
            select
                '{run_id}' as run_id,
                '{previous_run_id}' as previous_run_id,
                previous.segment_id as previous_segment_id,
                current.segment_id as segment_id,
                count(*) as customers
            from {RESULTS_SCHEMA}.segment_assignments as previous
            full outer join incoming_segment_assignments as current
                on previous.customer_id = current.customer_id
            group by all
            order by previous_segment_id nulls last, segment_id nulls last
        """
    else:
        migration = f"""
            select '{run_id}' as run_id, null::varchar as previous_run_id, null::integer as previous_segment_id,
                segment_id, count(*) as customers
            from incoming_segment_assignments group by all order by segment_id
        """
    return replace, append, {"segment_migration": migration}
