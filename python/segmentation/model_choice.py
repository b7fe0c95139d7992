"""Which model segments the customers, and the evidence for it, written down with the run.

The default is the latent class model (module ``mixture``); K-Means, the seed's method,
is evaluated in every run all the same, and its partition is set beside the mixture's
under one criterion that needs no truth: the classification BIC of each partition under
the mixed-data likelihood (each column by its own distribution, as in ``mixture``), on the
same sample. The run's parameters keep both, with the agreement between the two.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from .config import Settings
from .mixture import LatentClassModel, MixedPreparation, prepare_mixed
from .selection import MixtureSelection, SelectionSettings, evaluate_mixture_k, sample_rows

log = logging.getLogger(__name__)


@dataclass
class MixtureRun:
    selection: MixtureSelection
    preparation: MixedPreparation
    model: LatentClassModel
    probabilities: np.ndarray  # (customers, k) float32
    comparison: dict


def fit_mixture(table: pa.Table, contract, matrix: np.ndarray, kmeans_k: int, settings: Settings) -> MixtureRun:
    """Choose k, fit the latent class model on a sample, score every customer, compare with K-Means."""
    preparation, data = prepare_mixed(table, contract)
    selection = evaluate_mixture_k(
        data,
        SelectionSettings(
            k_min=settings.k_min,
            k_max=settings.k_max,
            fit_sample=settings.mixture_selection_sample,
            stability_sample=settings.stability_sample,
            bootstraps=settings.bootstraps,
        ),
        settings.random_state,
        requested_k=settings.k,
        criterion=settings.k_criterion,
        min_share=settings.min_segment_share,
    )
    model = selection.model
    if len(data) > selection.fit_sample:
        rows = sample_rows(len(data), settings.mixture_fit_sample, settings.random_state)
        log.info("fitting the latent class model with k=%d on %s customers", selection.chosen, f"{len(rows):,}")
        model.set_params(warm_start=True).fit(data.take(rows))  # from the solution k was chosen with
    probabilities = model.predict_proba(data)
    comparison = compare_with_kmeans(data, matrix, model, kmeans_k, settings)
    return MixtureRun(selection, preparation, model, probabilities, comparison)


def compare_with_kmeans(data, matrix: np.ndarray, model: LatentClassModel, kmeans_k: int, settings: Settings) -> dict:
    """Both partitions scored on one sample by the same truth-free criterion (lower is better)."""
    rows = sample_rows(len(data), settings.mixture_selection_sample, settings.random_state)
    sample = data.take(rows)
    kmeans = KMeans(n_clusters=kmeans_k, n_init=4, random_state=settings.random_state).fit(matrix[rows]).labels_
    mixture = model.predict(sample)
    return {
        "criterion": "classification BIC under the mixed-data likelihood (lower is better)",
        "sample": len(rows),
        "kmeans_k": int(kmeans_k),
        "kmeans_classification_bic": round(model.classification_bic(sample, kmeans), 1),
        "mixture_k": int(model.n_components),
        "mixture_classification_bic": round(model.classification_bic(sample, mixture), 1),
        "agreement_ari": round(float(adjusted_rand_score(kmeans, mixture)), 3),
    }


def reason(algorithm: str, comparison: dict | None) -> str:
    """One sentence for the report: which model, and why."""
    if algorithm != "mixture":
        return f"{algorithm} (chosen with ALGO={algorithm}); the default for mixed data is the latent class model."
    text = (
        "latent class model (the default for mixed data: each column by its own distribution, so neither the "
        "encoding nor a yes/no column sets the weights)"
    )
    if comparison:
        better = comparison["mixture_classification_bic"] <= comparison["kmeans_classification_bic"]
        text += (
            f"; K-Means evaluated alongside (k={comparison['kmeans_k']}): classification BIC "
            f"{comparison['mixture_classification_bic']:.0f} against {comparison['kmeans_classification_bic']:.0f} "
            f"for K-Means' partition ({'better' if better else 'worse'}), "
            f"agreement ARI {comparison['agreement_ari']:.2f}"
        )
    return text + "."
