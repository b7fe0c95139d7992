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
from .evidence import sample_rows
from .mixture import LatentClassModel, MixedData, MixedPreparation, prepare_mixed
from .mixture_selection import MixtureSelection, evaluate_mixture_k
from .selection import SelectionSettings

log = logging.getLogger(__name__)


@dataclass
class MixtureRun:
    selection: MixtureSelection
    preparation: MixedPreparation
    model: LatentClassModel
    probabilities: np.ndarray  # (customers, k) float32
    comparison: dict


def select_mixture(
    table: pa.Table, contract, settings: Settings
) -> tuple[MixedPreparation, MixedData, MixtureSelection]:
    """Prepare every customer for the latent class model and choose its k (on a sample).

    Needs nothing from K-Means, so the pipeline runs it beside K-Means' own choice of k.
    """
    preparation, data = prepare_mixed(table, contract)
    selection = choose_k(data, settings)
    return preparation, data, selection


def choose_k(data, settings: Settings) -> MixtureSelection:
    """The latent class model's k, by the settings' criterion and rule, on its selection sample
    (`data` need only hold the sample's rows: Spark's driver passes those)."""
    return evaluate_mixture_k(
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


def refit_on_sample(data, selection: MixtureSelection, settings: Settings) -> LatentClassModel:
    """The model at the chosen k, refitted on the larger fit sample when there is one (warm, from
    the solution k was chosen with)."""
    model = selection.model
    if len(data) > selection.fit_sample:
        rows = sample_rows(len(data), settings.mixture_fit_sample, settings.random_state)
        log.info("fitting the latent class model with k=%d on %s customers", selection.chosen, f"{len(rows):,}")
        model.set_params(warm_start=True).fit(data.take(rows))
    return model


def fit_chosen(data: MixedData, selection: MixtureSelection, settings: Settings) -> tuple[LatentClassModel, np.ndarray]:
    """The model at the chosen k, refitted on a larger sample when there is one, and every customer's probabilities."""
    model = refit_on_sample(data, selection, settings)
    return model, model.predict_proba(data)


def fit_mixture(
    table: pa.Table, contract, matrix: np.ndarray, kmeans_k: int, settings: Settings, kmeans_model=None
) -> MixtureRun:
    """Choose k, fit the latent class model on a sample, score every customer, compare with K-Means."""
    preparation, data, selection = select_mixture(table, contract, settings)
    model, probabilities = fit_chosen(data, selection, settings)
    comparison = compare_with_kmeans(data, matrix, model, kmeans_k, settings, kmeans_model, probabilities)
    return MixtureRun(selection, preparation, model, probabilities, comparison)


def compare_with_kmeans(
    data: MixedData,
    matrix: np.ndarray,
    model: LatentClassModel,
    kmeans_k: int,
    settings: Settings,
    kmeans_model=None,
    probabilities: np.ndarray | None = None,
) -> dict:
    """Both partitions scored on one sample by the same truth-free criterion (lower is better).

    `kmeans_model`: the K-Means k selection fitted at `kmeans_k` (it labels the sample
    instead of a new fit); `probabilities`: the mixture's for every customer (its labels
    are read from them instead of predicted again).
    """
    rows = sample_rows(len(data), settings.mixture_selection_sample, settings.random_state)
    sample = data.take(rows)
    if kmeans_model is not None and getattr(kmeans_model, "n_clusters", None) == kmeans_k:
        kmeans = kmeans_model.predict(matrix[rows])
    else:
        kmeans = KMeans(n_clusters=kmeans_k, n_init=4, random_state=settings.random_state).fit(matrix[rows]).labels_
    mixture = probabilities[rows].argmax(axis=1) if probabilities is not None else model.predict(sample)
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
