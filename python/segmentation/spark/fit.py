"""The segment step on Spark: k chosen on a driver sample by the DuckDB path's own code, the
final K-Means fitted by Spark MLlib on every customer, labels written back as a Spark table.

What is shared with the DuckDB engine, unchanged: the feature contract, the encoding
(scikit-learn's preprocessor, whose fitted means, scales, levels and weights Spark applies
as column expressions before pyspark.ml's VectorAssembler, so both engines encode a
customer identically), the choice of k and of the categorical weighting (scikit-learn on a
sample of at most SELECTION_SAMPLE customers, the same rows as on DuckDB), segment identities
across runs, the run's tables and the saved model. What differs: the final fit is MLlib's
K-Means (k-means|| initialisation, fixed seed) on all rows instead of scikit-learn's
(k-means++, several initialisations) on at most a million.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from .. import __version__
from ..clustering import Segmentation, match_segments
from ..config import Settings
from ..contract import FeatureContract, load_contract
from ..errors import UserError
from ..features import (
    WEIGHTINGS,
    _blocks,
    _to_frame,
    build_preprocessor,
    transform,
    units_to_encoded,
    without_features,
)
from ..models_io import save_model
from ..pipeline import _check_enough, _check_settings, _label_agreement, _source_file, make_run_id, pick_weighting
from ..pipeline import stage as timed
from ..projection import project
from ..run_tables import build_tables
from ..selection import SelectionSettings, evaluate_encodings, sample_rows
from ..warehouse import RESULTS_SCHEMA, connect, previous_run, write_results

log = logging.getLogger(__name__)

SPARK_ALGORITHMS = ("kmeans",)
MAX_ITER = 300
TOLERANCE = 1e-6


class CentresModel:
    """MLlib's fitted centres as a picklable nearest-centre model (the saved model `make score` uses)."""

    def __init__(self, centres: np.ndarray):
        self.cluster_centers_ = np.asarray(centres, dtype=np.float64)

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        diff = np.asarray(matrix, dtype=np.float64)[:, None, :] - self.cluster_centers_[None, :, :]
        return np.sqrt((diff * diff).sum(axis=2))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.transform(matrix).argmin(axis=1)


def _algorithm(settings: Settings) -> str:
    """K-Means on Spark; the mixture model and k-prototypes have no distributed fit here."""
    import os

    asked = os.environ.get("ALGO", "").strip()
    if asked and asked not in SPARK_ALGORITHMS:
        raise UserError(
            f"ALGO={asked} is not available with ENGINE=spark (Spark MLlib fits K-Means): "
            "leave ALGO unset, or use ENGINE=duckdb for that model."
        )
    return "kmeans"


def _levels_and_weights(frame, contract: FeatureContract) -> tuple[dict[str, list], dict[str, float]]:
    """Sorted levels of each categorical column over all rows, and its balanced weight
    (features.balanced_weights' formula, from Spark's counts)."""
    levels: dict[str, list] = {}
    weights: dict[str, float] = {}
    for column in contract.categorical:
        counts = {row[0]: row[1] for row in frame.groupBy(column).count().collect() if row[0] is not None}
        levels[column] = sorted(counts, key=lambda value: (str(type(value)), value))
        shares = np.array(list(counts.values()), dtype=float) / max(sum(counts.values()), 1)
        spread = 2.0 * shares[0] * shares[1] if len(shares) == 2 else 2.0 * (1.0 - float(np.sum(shares**2)))
        weights[column] = float(np.sqrt(2.0 / spread)) if spread > 0 else 1.0
    return levels, weights


def _drop_constant(frame, contract: FeatureContract) -> tuple[FeatureContract, list[str]]:
    from pyspark.sql import functions as F

    row = frame.agg(*[F.countDistinct(F.col(c)).alias(c) for c in contract.features]).collect()[0]
    return without_features(contract, [c for c in contract.features if row[c] <= 1])


def encoded_columns(preprocessor, contract: FeatureContract) -> list:
    """The preprocessor's output as Spark columns, in its order: features.transform, column for column."""
    from pyspark.sql import functions as F

    columns = []
    for name, _, weight in _blocks(preprocessor):
        fitted = preprocessor.named_transformers_[name]
        if name == "scaled":
            for position, column in enumerate(fitted.feature_names_in_):
                value = F.col(str(column)).cast("double")
                if column in contract.skewed:
                    value = F.signum(value) * F.log1p(F.abs(value))
                mean, scale = float(fitted.mean_[position]), float(fitted.scale_[position])
                columns.append((value - F.lit(mean)) / F.lit(scale) * F.lit(weight))
            continue
        (column,) = fitted.feature_names_in_
        levels = fitted.categories_[0]
        dropped = fitted.drop_idx_[0] if fitted.drop_idx_ is not None else None
        for index, level in enumerate(levels):
            if index != dropped:
                level_value = level.item() if hasattr(level, "item") else level
                columns.append(F.when(F.col(str(column)) == F.lit(level_value), F.lit(weight)).otherwise(F.lit(0.0)))
    return columns


def _collect_sorted(frame, id_column: str) -> pa.Table:
    return frame.orderBy(id_column).toArrow()


def run_segmentation_on_spark(spark, settings: Settings) -> str:
    """Cluster marts.customer_features on Spark; write the run to DuckDB and the labels to Spark."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    started_at = datetime.now(UTC).replace(microsecond=0)
    timings: dict[str, float] = {}
    algorithm = _algorithm(settings)
    contract = load_contract(settings.manifest_path)
    with connect(settings.warehouse) as con:
        source_file = _source_file(con)
        previous_run_id, previous_units, largest_id = previous_run(con)
    with timed(f"reading {contract.relation} on Spark", timings, "read"):
        frame = spark.table(contract.relation).select(*contract.columns).cache()
        ids_table = _collect_sorted(frame.select(contract.id_column), contract.id_column)
    ids = ids_table.column(contract.id_column).combine_chunks().cast(pa.string())
    n_customers = len(ids)
    _check_settings(settings, n_customers)
    contract, dropped = _drop_constant(frame, contract) if n_customers > 1 else (contract, [])
    _check_enough(settings, n_customers)

    weightings = list(WEIGHTINGS) if settings.weighting == "auto" else [settings.weighting]
    selection_settings = SelectionSettings(
        k_min=settings.k_min,
        k_max=settings.k_max,
        fit_sample=settings.selection_sample,
        silhouette_sample=settings.silhouette_sample,
        stability_sample=settings.stability_sample,
        bootstraps=settings.bootstraps,
    )
    with timed("preparing features: levels and weights on Spark, the sample on the driver", timings, "features"):
        levels, balanced = _levels_and_weights(frame, contract)
        positions = sample_rows(n_customers, selection_settings.fit_sample, settings.random_state)
        if len(positions) == n_customers:
            sample = _collect_sorted(frame, contract.id_column)
        else:
            wanted = spark.createDataFrame(
                [(v,) for v in ids.take(pa.array(positions)).to_pylist()], [contract.id_column]
            )
            sample = _collect_sorted(frame.join(F.broadcast(wanted), contract.id_column), contract.id_column)
        fit_frame = _to_frame(sample, contract)
        preprocessors = {
            w: build_preprocessor(contract, levels, balanced if w == "balanced" else None).fit(fit_frame)
            for w in weightings
        }
        samples = {w: transform(p, sample, contract) for w, p in preprocessors.items()}
    with timed(
        f"choosing k among {settings.k_min}…{settings.k_max} on {len(positions):,} customers", timings, "k_selection"
    ):
        selections = evaluate_encodings(samples, selection_settings, settings.random_state, requested_k=settings.k)
    weighting = pick_weighting(selections)
    preprocessor, selection = preprocessors[weighting], selections[weighting]
    sample_matrix = samples[weighting]
    feature_names = [str(name) for name in preprocessor.get_feature_names_out()]
    k = selection.chosen
    log.info("k = %d (%s; knee at %d), categorical weighting: %s", k, selection.rule, selection.knee, weighting)

    with timed(f"Spark MLlib K-Means (k-means||) with k={k} on {n_customers:,} customers", timings, "fit_assign"):
        encoded = frame.select(
            F.col(contract.id_column),
            *[c.alias(f"_x{j}") for j, c in enumerate(encoded_columns(preprocessor, contract))],
        )
        assembler = VectorAssembler(inputCols=[f"_x{j}" for j in range(len(feature_names))], outputCol="features")
        vectors = assembler.transform(encoded).select(contract.id_column, "features").cache()
        kmeans = KMeans(
            k=k,
            seed=settings.random_state,
            initMode="k-means||",
            maxIter=MAX_ITER,
            tol=TOLERANCE,
            featuresCol="features",
        )
        model = kmeans.fit(vectors)
        centres = np.vstack([np.asarray(c, dtype=np.float64) for c in model.clusterCenters()])
        centre_arrays = F.array(*[F.array(*[F.lit(float(v)) for v in centre]) for centre in centres])
        predicted = model.transform(vectors).select(
            contract.id_column,
            F.col("prediction").cast("int").alias("label"),
            F.sqrt(
                F.aggregate(
                    F.zip_with(
                        vector_to_array("features"),
                        F.element_at(centre_arrays, F.col("prediction") + 1),
                        lambda x, c: (x - c) * (x - c),
                    ),
                    F.lit(0.0),
                    lambda total, value: total + value,
                )
            ).alias("distance"),
        )
        result = _collect_sorted(predicted, contract.id_column)
        labels = result.column("label").to_numpy().astype(np.int32)
        distances = result.column("distance").to_numpy().astype(np.float32)
        sizes = np.bincount(labels, minlength=k)
        previous_centres = {s: units_to_encoded(preprocessor, units) for s, units in previous_units.items()}
        segment_ids, status, vanished = match_segments(
            centres, sizes, previous_centres, float(np.mean(distances)), largest_id + 1
        )
        segmentation = Segmentation(
            model=CentresModel(centres),
            segment_ids=segment_ids,
            labels=segment_ids[labels],
            distances=distances,
            centres=centres,
            sizes=sizes,
            status=status,
            vanished=vanished,
        )
    with timed("projecting the sample to 2-D (PCA, t-SNE)", timings, "projection"):
        sample_labels = segmentation.labels[positions]
        rows, pca_xy, tsne_xy = project(sample_matrix, sample_labels, settings.tsne_sample, settings.random_state)
        rows = positions[rows]
    # the existing segmentation column, if declared: all rows' labels come to the driver (one column)
    label_table = (
        _collect_sorted(frame.select(contract.id_column, contract.label), contract.id_column)
        if contract.label
        else sample
    )
    label_ari, crosstab = _label_agreement(label_table, contract, segmentation.labels)

    algorithm_reason = (
        "K-Means fitted by Spark MLlib on every customer (ENGINE=spark: k-means|| initialisation, one run, "
        f"seed {settings.random_state}); k chosen on a sample with scikit-learn, as on DuckDB."
    )
    parameters = {
        "algorithm": algorithm,
        "algorithm_reason": algorithm_reason,
        "engine": "spark",
        "spark_version": spark.version,
        "spark_init": "k-means||",
        "spark_max_iter": MAX_ITER,
        "k": k,
        "k_rule": selection.rule,
        "kmeans": {"k": selection.chosen, "rule": selection.rule, "knee": selection.knee},
        "k_range": [settings.k_min, settings.k_max],
        "random_state": settings.random_state,
        "categorical_weighting": weighting,
        "weighting_compared": {
            w: {"k": s.chosen, "rule": s.rule, "stability": s.measure("stability", s.chosen)}
            for w, s in selections.items()
        },
        "selection": {
            "fit_sample": selection.fit_sample,
            "stability_threshold": selection_settings.stability_threshold,
        },
        "features": feature_names,
        "dropped_features": dropped,
        "version": __version__,
    }
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
            "algorithm": algorithm,
            "engine": "spark",
            "mixture_preparation": None,
            "centres": centres,
        },
    )
    stability = selection.measure("stability", k)
    tables = build_tables(
        run_id=run_id,
        started_at=started_at,
        settings=replace(settings, algorithm=algorithm),
        ids=ids,
        selection=selection,
        chosen=(k, selection.rule, stability),
        mixture_selection=None,
        ambiguous=0,
        algorithm_reason=algorithm_reason,
        segmentation=segmentation,
        preprocessor=preprocessor,
        feature_names=feature_names,
        projection=(rows, pca_xy, tsne_xy),
        parameters=parameters,
        source_file=source_file,
        model_path=model_path,
        previous_run_id=previous_run_id,
        weighting=weighting,
        label=(contract.label, label_ari, crosstab),
        dropped=dropped,
        timings=timings,
    )
    with timed("writing the labels to Spark (segmentation.segment_assignments)", timings, "write_back"):
        segment_of_label = F.array(*[F.lit(int(s)) for s in segment_ids])
        spark.sql(f"create database if not exists {RESULTS_SCHEMA}")
        predicted.select(
            F.col(contract.id_column).cast("string").alias("customer_id"),
            F.element_at(segment_of_label, F.col("label") + 1).cast("int").alias("segment_id"),
            F.col("distance").alias("distance_to_centroid"),
            F.lit(run_id).alias("run_id"),
        ).write.format("parquet").mode("overwrite").saveAsTable(f"{RESULTS_SCHEMA}.segment_assignments")
    with connect(settings.warehouse) as con:
        with timed("writing results to the warehouse (one transaction)", timings, "write_back"):
            write_results(con, *tables)
        con.execute(
            f"update {RESULTS_SCHEMA}.segmentation_runs set stage_seconds = ? where run_id = ?",
            [json.dumps(timings, sort_keys=True), run_id],
        )
    frame.unpersist()
    vectors.unpersist()
    log.info("run %s on Spark: %s customers in %d segments", run_id, f"{n_customers:,}", k)
    return run_id
