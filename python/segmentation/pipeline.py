"""The clustering step end to end: mart → features → k → segments → views → warehouse.

This is the only place that strings the pure modules together with the warehouse;
each stage logs what it does and how long it took, because at millions of rows a
silent minute looks like a hang.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from . import __version__
from .algorithms import ALGORITHMS
from .clustering import fit_segments, segments_from_probabilities
from .config import Settings
from .contract import FeatureContract, load_contract
from .errors import UserError
from .evidence import sample_rows
from .features import (
    WEIGHTINGS,
    check_features,
    drop_constant_features,
    fit_preprocessors,
    transform,
    units_to_encoded,
)
from .model_choice import MixtureRun, compare_with_kmeans, fit_chosen, reason, select_mixture
from .models_io import load_model, save_model  # noqa: F401 (load_model: also importable from here, as before)
from .projection import Projecting
from .run_tables import build_tables, label_agreement, projection_table
from .selection import (
    RULE_STRENGTH,
    SelectionResult,
    SelectionSettings,
    evaluate_encodings,
)
from .warehouse import RESULTS_SCHEMA, connect, previous_run, read_features, write_results

log = logging.getLogger(__name__)

# Two encodings whose chosen k are this close in stability are a tie, settled by silhouette.
STABILITY_TIE = 0.02


@contextmanager
def stage(name: str, timings: dict[str, float] | None = None, key: str | None = None) -> Iterator[None]:
    """Log a stage's start and duration; add the duration to `timings[key]` (for `make bench`)."""
    log.info("%s …", name)
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    log.info("%s done in %.1f s", name, seconds)
    if timings is not None and key:
        timings[key] = round(timings.get(key, 0.0) + seconds, 3)


def make_run_id(started_at: datetime, ids: pa.Array, parameters: dict) -> str:
    """Readable, sortable and unique: UTC time plus a short hash of the data and settings."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True, default=str).encode())
    digest.update(str(len(ids)).encode())
    digest.update(str(ids.slice(0, 1000).to_pylist()).encode())
    return f"{started_at:%Y%m%dT%H%M%S}-{digest.hexdigest()[:8]}"


def _source_file(con) -> str:
    try:
        return str(con.sql("select source_file from raw.load_metadata").fetchall()[0][0])
    except Exception:  # the mart may have been loaded some other way
        return ""


def pick_weighting(selections: dict[str, SelectionResult]) -> str:
    """The encoding whose k is best founded: the stronger rule, then the more stable k.

    Stability alone would favour k = 2, stable almost by construction; an encoding
    in which the elbow itself is stable is the better description of the market.
    Stabilities within STABILITY_TIE are a tie, settled by the order of WEIGHTINGS.
    """

    def strength(weighting: str) -> tuple[int, float, int]:
        selection = selections[weighting]
        stability = selection.measure("stability", selection.chosen)
        return (RULE_STRENGTH[selection.rule], round(stability / STABILITY_TIE), -WEIGHTINGS.index(weighting))

    return max(selections, key=strength)


def _check_settings(settings: Settings, n_customers: int) -> None:
    if settings.algorithm not in ALGORITHMS:
        raise UserError(f"unknown ALGO={settings.algorithm!r}: use one of {', '.join(ALGORITHMS)}.")
    if settings.weighting not in (*WEIGHTINGS, "auto"):
        raise UserError(f"unknown WEIGHTING={settings.weighting!r}: use auto, {', '.join(WEIGHTINGS)}.")
    if settings.k_criterion not in ("icl", "bic"):
        raise UserError(f"unknown K_CRITERION={settings.k_criterion!r}: use icl or bic.")
    if settings.k is not None and not 2 <= settings.k <= n_customers - 1:
        raise UserError(
            f"K={settings.k} cannot be used with {n_customers} usable customers: choose K between 2 and "
            f"{n_customers - 1}, or leave K unset to choose it on evidence."
        )


def _check_enough(settings: Settings, n_customers: int) -> None:
    """Too little to segment: fewer than MIN_SEGMENT_CUSTOMERS per segment at the smallest k tried."""
    smallest_k = settings.k if settings.k is not None else settings.k_min
    needed = settings.min_segment_customers * max(smallest_k, 2)
    if n_customers < needed:
        raise UserError(
            f"only {n_customers} usable customers: too few to segment (at least {needed}, "
            f"{settings.min_segment_customers} per segment for k={max(smallest_k, 2)}); the previous results are "
            "kept. Load a larger file or lower MIN_SEGMENT_CUSTOMERS; see marts.customer_quarantine for rows set aside."
        )


def choose_kmeans_k(
    samples: dict[str, np.ndarray], selection_settings: SelectionSettings, random_state: int, requested_k: int | None
) -> dict[str, SelectionResult]:
    """K-Means' choice of k for each candidate encoding, on one BLAS thread (as beside the latent
    class model); stability at every k for the weighting picked only (the report draws its curve)."""
    with threadpool_limits(1):
        return evaluate_encodings(
            samples, selection_settings, random_state, requested_k=requested_k, pick=pick_weighting
        )


def run_segmentation(settings: Settings, contract: FeatureContract | None = None) -> str:
    """Cluster the feature mart and write the run's tables, in one transaction; returns the run id.

    The mart's contract is read from dbt's manifest.json unless given (`make all` hands it over
    from the manifest in memory)."""
    return _segment(settings, contract, defer_projection=False).run_id


def segment_before_projection(
    settings: Settings, contract: FeatureContract | None = None, side_pool: Executor | None = None
) -> Projecting:
    """`run_segmentation`, returning while the 2-D maps are still computed: `write_projection`
    writes them, in a transaction of their own (`make all` runs dbt's profiles meanwhile).

    side_pool: a process in which K-Means chooses its k (`choose_kmeans_k`) while this one fits
    the latent class model, each with a core of its own, and which then computes the 2-D maps
    while this one compares the models and writes the tables. Without it, both run on threads
    of this process, where they share Python's lock (the choices of k take a third longer in
    all at ten thousand customers). The results are the same either way.
    """
    return _segment(settings, contract, defer_projection=True, side_pool=side_pool)


def _segment(
    settings: Settings, contract: FeatureContract | None, defer_projection: bool, side_pool: Executor | None = None
) -> Projecting:
    started_at = datetime.now(UTC).replace(microsecond=0)
    timings: dict[str, float] = {}
    contract = contract or load_contract(settings.manifest_path)
    with connect(settings.warehouse) as con, stage(f"reading {contract.relation}", timings, "read"):
        table = read_features(con, contract)
        source_file = _source_file(con)
        previous_run_id, previous_units, largest_id = previous_run(con)
    # The warehouse is released while the CPU work runs: DuckDB's buffer pool would
    # otherwise keep what the read brought in (0.6 GB at ten million customers).
    n_customers = table.num_rows
    _check_settings(settings, n_customers)
    # a table with nothing to cluster on says so first; one of one or no customer is simply too small
    contract, dropped = drop_constant_features(table, contract) if n_customers > 1 else (contract, [])
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

    def mixture_branch(table: pa.Table):
        with stage(f"latent class model: choosing k among {settings.k_min}…{settings.k_max}"):
            preparation, data, mixture_selection = select_mixture(table, contract, settings)
        with stage(f"latent class model: scoring {n_customers:,} customers"):
            model, probabilities = fit_chosen(data, mixture_selection, settings)
        return preparation, data, mixture_selection, model, probabilities

    # The two models' choices of k need nothing from each other: the latent class model's
    # starts on the side thread as soon as the table is read, and K-Means' (its features
    # prepared first) runs beside it on this one; each fit on one BLAS thread (threads
    # share the two cores better than BLAS does when the machine is busy), each seeded, so
    # the results are the same as one after the other. Preparing the K-Means features used
    # one core while the other waited; now the latent class model uses that time.
    # (In `timings`, k_selection is the wall time from the features' end until both models
    # have chosen: the latent class model's head start is counted under "features".)
    check_features(table, contract)  # a table the encoder cannot take says so before work starts beside it
    with (
        threadpool_limits(1),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="latent-class") as side,
    ):
        mixture_future = side.submit(mixture_branch, table) if settings.algorithm == "mixture" else None
        # k is chosen on a uniform sample (SelectionSettings.fit_sample): only those customers
        # are encoded for each candidate weighting, and everyone only once the weighting is
        # chosen, so a single full-size matrix ever exists.
        with stage(f"preparing features ({', '.join(weightings)} weighting)", timings, "features"):
            preprocessors = fit_preprocessors(table, contract, settings.random_state, weightings)
            selection_rows = sample_rows(n_customers, selection_settings.fit_sample, settings.random_state)
            whole_table = len(selection_rows) == n_customers
            selection_table = table if whole_table else table.take(pa.array(selection_rows))
            samples = {w: transform(p, selection_table, contract) for w, p in preprocessors.items()}
        with stage("choosing k (K-Means and the latent class model side by side)", timings, "k_selection"):
            with stage(
                f"choosing k among {settings.k_min}…{settings.k_max} ({', '.join(weightings)} weighting)",
            ):
                arguments = (samples, selection_settings, settings.random_state, settings.k)
                if side_pool is None:
                    selections = choose_kmeans_k(*arguments)
                else:
                    selections = side_pool.submit(choose_kmeans_k, *arguments).result()
            weighting = pick_weighting(selections)
            with stage(f"encoding {n_customers:,} customers ({weighting} weighting)"):
                matrix = samples[weighting] if whole_table else transform(preprocessors[weighting], table, contract)
            samples.clear()
            mixture_parts = mixture_future.result() if mixture_future is not None else None
    preprocessor = preprocessors[weighting]
    log.info("encoded %s customers × %d features (float32)", f"{matrix.shape[0]:,}", matrix.shape[1])
    selection = selections[weighting]
    feature_names = [str(name) for name in preprocessor.get_feature_names_out()]
    log.info(
        "K-Means: k = %d (%s; knee at %d; stability %.2f), categorical weighting: %s",
        selection.chosen,
        selection.rule,
        selection.knee,
        selection.measure("stability", selection.chosen),
        weighting,
    )

    previous_centres = {segment: units_to_encoded(preprocessor, units) for segment, units in previous_units.items()}
    mixture_run = None
    if mixture_parts is not None:
        preparation, data, mixture_selection, model, probabilities = mixture_parts
        with stage(f"assigning {n_customers:,} customers by membership probability", timings, "fit_assign"):
            segmentation = segments_from_probabilities(model, matrix, probabilities, previous_centres, largest_id + 1)
        mixture_run = MixtureRun(mixture_selection, preparation, model, probabilities, {})
        chosen_k, rule = mixture_selection.chosen, mixture_selection.rule
        chosen_stability = mixture_selection.measure("stability", chosen_k)
    else:
        with stage(
            f"fitting {settings.algorithm} with k={selection.chosen} and assigning {n_customers:,} customers",
            timings,
            "fit_assign",
        ):
            segmentation = fit_segments(
                matrix,
                selection.chosen,
                settings.random_state,
                algorithm=settings.algorithm,
                feature_names=feature_names,
                categorical=contract.categorical,
                previous_centres=previous_centres,
                next_id=largest_id + 1,
                fit_sample=settings.final_fit_sample,
            )
        chosen_k, rule = selection.chosen, selection.rule
        chosen_stability = selection.measure("stability", chosen_k)

    # The 2-D maps need the segments only: t-SNE (one thread) runs while the rest is done, and
    # with `defer_projection` on, while this step has returned (`write_projection` writes it).
    projecting = Projecting(matrix, segmentation.labels, settings.tsne_sample, settings.random_state, side_pool)
    if mixture_run is not None:
        with stage("comparing the latent class model with K-Means", timings, "fit_assign"):
            mixture_run.comparison = compare_with_kmeans(
                data, matrix, model, selection.chosen, settings, selection.model, probabilities
            )
        mixture_run.probabilities = probabilities = None  # the chosen probability is kept in the segmentation
        del data
    label_ari, crosstab = label_agreement(table, contract, segmentation.labels)
    pca_xy = tsne_xy = None
    if not defer_projection:
        pca_xy, tsne_xy, timings["projection"] = projecting.result()
    algorithm_reason = reason(settings.algorithm, mixture_run.comparison if mixture_run else None)
    probabilities = segmentation.probabilities
    ambiguous = int(np.sum(probabilities < settings.ambiguous_probability)) if probabilities is not None else 0
    log.info("model: %s", algorithm_reason)
    if probabilities is not None:
        log.info(
            "%s customers (%.1f%%) are ambiguous (membership probability below %.2f)",
            f"{ambiguous:,}",
            100 * ambiguous / max(n_customers, 1),
            settings.ambiguous_probability,
        )

    if label_ari is not None:
        log.info("agreement with the existing %s column: ARI %.3f", contract.label, label_ari)

    parameters = {
        "algorithm": settings.algorithm,
        "algorithm_reason": algorithm_reason,
        "k": chosen_k,
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
            **{k: getattr(selection, k) for k in ("fit_sample", "silhouette_sample", "stability_sample", "bootstraps")},
            "stability_threshold": selection_settings.stability_threshold,
        },
        "features": feature_names,
        "dropped_features": dropped,
        "min_segment_customers": settings.min_segment_customers,
        "ambiguous_probability": settings.ambiguous_probability,
        "version": __version__,
    }
    if mixture_run is not None:
        chosen = mixture_run.selection
        parameters["mixture"] = {
            "criterion": chosen.criterion,
            "rule": chosen.rule,
            "min_segment_share": chosen.min_segment_share,
            "selection_sample": chosen.fit_sample,
            "stability_sample": chosen.stability_sample,
            "fit_sample": int(mixture_run.model.n_rows_fitted_),
            "gaussian_columns": list(mixture_run.preparation.gaussian_),
            "categorical_columns": list(mixture_run.preparation.categorical_),
            "compared_with_kmeans": mixture_run.comparison,
        }
    ids = table.column(contract.id_column).combine_chunks().cast(pa.string())
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
            "algorithm": settings.algorithm,
            # the mixture model scores from its own preparation of the columns; distances are to
            # these encoded centres (per model label), as in the run
            "mixture_preparation": mixture_run.preparation if mixture_run else None,
            "centres": segmentation.centres,
        },
    )
    tables = build_tables(
        run_id=run_id,
        started_at=started_at,
        settings=settings,
        ids=ids,
        selection=selection,
        chosen=(chosen_k, rule, chosen_stability),
        mixture_selection=mixture_run.selection if mixture_run else None,
        ambiguous=ambiguous,
        algorithm_reason=algorithm_reason,
        segmentation=segmentation,
        preprocessor=preprocessor,
        feature_names=feature_names,
        projection=(projecting.rows, pca_xy, tsne_xy),
        parameters=parameters,
        source_file=source_file,
        model_path=model_path,
        previous_run_id=previous_run_id,
        weighting=weighting,
        label=(contract.label, label_ari, crosstab),
        dropped=dropped,
        timings=timings,
    )
    # the encoded matrix and the feature columns are done with: the write needs their room
    del matrix, table, selection_table
    with connect(settings.warehouse) as con:
        with stage("writing results to the warehouse (one transaction)", timings, "write_back"):
            write_results(con, *tables)
        _record_timings(con, run_id, timings)  # the write's own duration can only be recorded after it
    log.info("run %s: %s customers in %d segments", run_id, f"{n_customers:,}", chosen_k)
    projecting.run_id, projecting.ids, projecting.timings = run_id, ids.take(pa.array(projecting.rows)), timings
    return projecting


def write_projection(settings: Settings, projecting: Projecting) -> None:
    """Write the 2-D maps of `segment_before_projection` once computed, in their own transaction."""
    pca_xy, tsne_xy, seconds = projecting.result()
    table = projection_table(projecting.run_id, projecting.ids, projecting.labels, pca_xy, tsne_xy)
    with connect(settings.warehouse) as con, stage("writing the 2-D maps to the warehouse"):
        write_results(con, {"segment_projection": table}, {})
        _record_timings(con, projecting.run_id, {**projecting.timings, "projection": seconds})


def _record_timings(con, run_id: str, timings: dict[str, float]) -> None:
    """The run's stage timings (for make bench), recorded once the stages they time are over."""
    con.execute(
        f"update {RESULTS_SCHEMA}.segmentation_runs set stage_seconds = ? where run_id = ?",
        [json.dumps(timings, sort_keys=True), run_id],
    )
