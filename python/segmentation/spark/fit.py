"""The segment step on Spark: the same choices as on DuckDB, on a driver sample; every customer on Spark.

What is shared with the DuckDB engine, unchanged: the feature contract, the encoding
(scikit-learn's preprocessor, applied by Spark as column expressions, see `encode`), the
choice of k and of the categorical weighting (scikit-learn on the same sample as on DuckDB),
segment identities across runs, the run's tables and the saved model. The default model,
the latent class model, is prepared, chosen and fitted on the driver exactly as on DuckDB
and scores every customer on the executors (`latent_class`); ALGO=kmeans fits Spark MLlib's
K-Means on every customer (`kmeans`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from .. import __version__
from ..clustering import name_segments
from ..config import Settings
from ..contract import FeatureContract, load_contract
from ..errors import UserError
from ..evidence import sample_rows
from ..features import WEIGHTINGS, _to_frame, build_preprocessor, transform, units_to_encoded, without_features
from ..model_choice import reason
from ..models_io import save_model
from ..pipeline import _check_enough, _check_settings, _source_file, make_run_id, pick_weighting
from ..pipeline import stage as timed
from ..projection import project
from ..run_tables import build_tables, label_agreement
from ..selection import SelectionSettings, evaluate_encodings
from ..warehouse import RESULTS_SCHEMA, connect, previous_run, write_results
from .encode import collect_sorted
from .kmeans import MAX_ITER, CentresModel, fit_kmeans_on_spark
from .latent_class import SampledRows, driver_positions, fit_mixture_on_spark

log = logging.getLogger(__name__)

SPARK_ALGORITHMS = ("mixture", "kmeans")


def _algorithm(settings: Settings) -> str:
    """The latent class model (the default) or K-Means; k-prototypes and mini-batch have no Spark form here."""
    if settings.algorithm not in SPARK_ALGORITHMS:
        raise UserError(
            f"ALGO={settings.algorithm} is not available with ENGINE=spark: leave ALGO unset (latent class model), "
            "use ALGO=kmeans (Spark MLlib), or use ENGINE=duckdb for that model."
        )
    return settings.algorithm


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


def run_segmentation_on_spark(spark, settings: Settings) -> str:
    """Cluster marts.customer_features on Spark; write the run to DuckDB and the labels to Spark."""
    from pyspark.sql import functions as F

    started_at = datetime.now(UTC).replace(microsecond=0)
    timings: dict[str, float] = {}
    contract = load_contract(settings.manifest_path)
    with connect(settings.warehouse) as con:
        source_file = _source_file(con)
        previous_run_id, previous_units, largest_id = previous_run(con)
    with timed(f"reading {contract.relation} on Spark", timings, "read"):
        frame = spark.table(contract.relation).select(*contract.columns).cache()
        ids_table = collect_sorted(frame.select(contract.id_column), contract.id_column)
    ids = ids_table.column(contract.id_column).combine_chunks().cast(pa.string())
    n_customers = len(ids)
    _check_settings(settings, n_customers)
    algorithm = _algorithm(settings)
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
    with timed("preparing features: levels and weights on Spark, the samples on the driver", timings, "features"):
        levels, balanced = _levels_and_weights(frame, contract)
        # the customers the DuckDB engine samples (the same positions in id order), collected once
        positions = driver_positions(n_customers, settings, mixture=algorithm == "mixture")
        if len(positions) == n_customers:
            driver = collect_sorted(frame, contract.id_column)
        else:
            wanted = spark.createDataFrame(
                [(v,) for v in ids_table.column(contract.id_column).take(pa.array(positions)).to_pylist()],
                [contract.id_column],
            )
            driver = collect_sorted(frame.join(F.broadcast(wanted), contract.id_column), contract.id_column)
        selection_rows = sample_rows(n_customers, selection_settings.fit_sample, settings.random_state)
        sample = SampledRows(n_customers, positions, driver).take(selection_rows)
        fit_frame = _to_frame(sample, contract)
        preprocessors = {
            w: build_preprocessor(contract, levels, balanced if w == "balanced" else None).fit(fit_frame)
            for w in weightings
        }
        samples = {w: transform(p, sample, contract) for w, p in preprocessors.items()}
    with timed(
        f"choosing k among {settings.k_min}…{settings.k_max} on {len(selection_rows):,} customers",
        timings,
        "k_selection",
    ):
        selections = evaluate_encodings(samples, selection_settings, settings.random_state, requested_k=settings.k)
    weighting = pick_weighting(selections)
    preprocessor, selection = preprocessors[weighting], selections[weighting]
    sample_matrix = samples[weighting]
    feature_names = [str(name) for name in preprocessor.get_feature_names_out()]
    log.info("K-Means: k = %d (%s; knee at %d), categorical weighting: %s", selection.chosen, selection.rule,
             selection.knee, weighting)  # fmt: skip

    mixture = None
    if algorithm == "mixture":
        with timed(
            f"latent class model: k chosen and fitted on the driver, {n_customers:,} customers scored on Spark",
            timings,
            "fit_assign",
        ):
            mixture = fit_mixture_on_spark(
                frame, contract, driver, positions, n_customers, levels, preprocessor, selection.chosen, settings
            )
        labels, distances, centres = mixture.labels, mixture.distances, mixture.centres
        model, scored, probabilities = mixture.model, mixture.scored, mixture.probabilities
        k, rule = mixture.selection.chosen, mixture.selection.rule
        stability = mixture.selection.measure("stability", k)
        algorithm_reason = reason("mixture", mixture.comparison) + (
            " Fitted on the driver, every customer scored by Spark (ENGINE=spark)."
        )
    else:
        k, rule, stability = selection.chosen, selection.rule, selection.measure("stability", selection.chosen)
        with timed(f"Spark MLlib K-Means (k-means||) with k={k} on {n_customers:,} customers", timings, "fit_assign"):
            labels, distances, centres, _, scored = fit_kmeans_on_spark(
                frame, contract, preprocessor, k, settings.random_state
            )
        model, probabilities = CentresModel(centres), None
        scored = scored.withColumn("probability", F.lit(1.0))
        algorithm_reason = (
            "K-Means fitted by Spark MLlib on every customer (ENGINE=spark: k-means|| initialisation, the best of "
            f"four seeded runs, seed {settings.random_state}); k chosen on a sample with scikit-learn, as on DuckDB."
        )
    previous_centres = {s: units_to_encoded(preprocessor, units) for s, units in previous_units.items()}
    segmentation = name_segments(
        model, None, labels, k, distances, previous_centres, largest_id + 1, probabilities, centres
    )
    ambiguous = int(np.sum(probabilities < settings.ambiguous_probability)) if probabilities is not None else 0
    log.info("model: %s", algorithm_reason)
    with timed("projecting the sample to 2-D (PCA, t-SNE)", timings, "projection"):
        sample_labels = segmentation.labels[selection_rows]
        rows, pca_xy, tsne_xy = project(sample_matrix, sample_labels, settings.tsne_sample, settings.random_state)
        rows = selection_rows[rows]
    # the existing segmentation column, if declared: all rows' labels come to the driver (one column)
    label_table = (
        collect_sorted(frame.select(contract.id_column, contract.label), contract.id_column)
        if contract.label
        else sample
    )
    label_ari, crosstab = label_agreement(label_table, contract, segmentation.labels)

    parameters = {
        "algorithm": algorithm,
        "algorithm_reason": algorithm_reason,
        "engine": "spark",
        "spark_version": spark.version,
        "k": k,
        "k_rule": rule,
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
        "min_segment_customers": settings.min_segment_customers,
        "ambiguous_probability": settings.ambiguous_probability,
        "version": __version__,
    }
    if mixture is not None:
        parameters["mixture"] = {
            "criterion": mixture.selection.criterion,
            "rule": mixture.selection.rule,
            "min_segment_share": mixture.selection.min_segment_share,
            "selection_sample": mixture.selection.fit_sample,
            "stability_sample": mixture.selection.stability_sample,
            "fit_sample": int(mixture.model.n_rows_fitted_),
            "gaussian_columns": list(mixture.preparation.gaussian_),
            "categorical_columns": list(mixture.preparation.categorical_),
            "compared_with_kmeans": mixture.comparison,
            "scored_on": "spark executors (mapInArrow)",
        }
    else:
        parameters.update({"spark_init": "k-means||", "spark_max_iter": MAX_ITER})
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
            "mixture_preparation": mixture.preparation if mixture else None,
            "centres": centres,
        },
    )
    tables = build_tables(
        run_id=run_id,
        started_at=started_at,
        settings=replace(settings, algorithm=algorithm),
        ids=ids,
        selection=selection,
        chosen=(k, rule, stability),
        mixture_selection=mixture.selection if mixture else None,
        ambiguous=ambiguous,
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
        segment_of_label = F.array(*[F.lit(int(s)) for s in segmentation.segment_ids])
        spark.sql(f"create database if not exists {RESULTS_SCHEMA}")
        scored.select(
            F.col(contract.id_column).cast("string").alias("customer_id"),
            F.element_at(segment_of_label, F.col("label") + 1).cast("int").alias("segment_id"),
            F.col("distance").cast("double").alias("distance_to_centroid"),
            F.col("probability").cast("double").alias("membership_probability"),
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
    log.info("run %s on Spark: %s customers in %d segments", run_id, f"{n_customers:,}", k)
    return run_id
