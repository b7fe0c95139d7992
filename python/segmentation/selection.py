"""Choosing k on evidence: elbow, silhouette, Calinski–Harabasz, Davies–Bouldin, stability.

Every candidate k is fitted on a uniform sample when the table is large (the curves,
hence the choice, are stable well before 100 000 customers); silhouette, quadratic
in the points, on a smaller sample. Stability is the mean adjusted Rand index between
K-Means fits on bootstrap resamples, each with its own seed, compared on a common
sample: a k whose segments move when the data or the seed move is not one to plan
campaigns on.

The rule that combines them (``choose_k``), in order:

1. ``K=`` given: that k (``user``).
2. The knee of the inertia curve (Kneedle) if its stability is at least the threshold
   (``elbow_stable``).
3. Otherwise the most stable k within one of the knee, if stable enough
   (``stable_near_elbow``).
4. Otherwise, among all stable k, the best silhouette (``best_silhouette_stable``).
5. Otherwise the knee, flagged as unstable (``elbow``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
)
from threadpoolctl import threadpool_limits

from .config import BOOTSTRAPS, SELECTION_SAMPLE, SILHOUETTE_SAMPLE, STABILITY_SAMPLE

log = logging.getLogger(__name__)

STABILITY_THRESHOLD = 0.8
# Below this many rows one thread fits K-Means faster than two (and is immune to the
# spin-waiting that makes OpenMP crawl when another process holds the other core).
SINGLE_THREAD_ROWS = 50_000
MAX_FIT_THREADS = 4  # the latent class model's candidate k fitted side by side, at most this many at once


@dataclass(frozen=True)
class SelectionSettings:
    k_min: int = 2
    k_max: int = 10
    fit_sample: int = SELECTION_SAMPLE
    silhouette_sample: int = SILHOUETTE_SAMPLE
    stability_sample: int = STABILITY_SAMPLE
    bootstraps: int = BOOTSTRAPS
    n_init: int = 4
    stability_threshold: float = STABILITY_THRESHOLD


@dataclass(frozen=True)
class SelectionResult:
    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    calinski_harabasz: tuple[float, ...]
    davies_bouldin: tuple[float, ...]
    stability: tuple[float, ...]
    knee: int
    chosen: int
    rule: str  # user, elbow_stable, stable_near_elbow, best_silhouette_stable, elbow
    fit_sample: int
    silhouette_sample: int
    stability_sample: int
    bootstraps: int
    extra: dict = field(default_factory=dict)
    # the K-Means fitted on the sample at the chosen k (reused by later steps rather than refitted)
    model: object = field(repr=False, compare=False, default=None)

    @property
    def source(self) -> str:
        return "user" if self.rule == "user" else "elbow"

    def measure(self, name: str, k: int) -> float:
        return float(getattr(self, name)[self.ks.index(k)])


def find_knee(ks: np.ndarray, inertia: np.ndarray) -> int:
    """Kneedle (Satopää et al., 2011) for a decreasing, convex curve.

    Both axes are scaled to [0, 1]; the knee is the k whose point lies furthest
    below the chord from the first to the last k: where adding a cluster stops paying.
    """
    ks = np.asarray(ks, dtype=float)
    inertia = np.asarray(inertia, dtype=float)
    if len(ks) < 3 or np.ptp(inertia) == 0:
        return int(ks[0])
    x = (ks - ks.min()) / np.ptp(ks)
    y = (inertia - inertia.min()) / np.ptp(inertia)
    distance = (1.0 - x) - y  # the chord from (0, 1) to (1, 0) is y = 1 - x
    return int(ks[int(np.argmax(distance))])


def sample_rows(n_rows: int, size: int, random_state: int) -> np.ndarray:
    """Sorted indices of a uniform sample (all rows when the table is small)."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(random_state).choice(n_rows, size=size, replace=False))


def silhouette_from_distances(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a precomputed distance matrix: scikit-learn's definition.

    The same formula as ``silhouette_score(..., metric="precomputed")`` (a point alone in
    its cluster scores 0), with the per-cluster distance sums as one matrix product
    instead of a Python loop over rows: ten times faster, and free of the GIL, so the
    two encodings' evaluations really run side by side.
    """
    rows = np.arange(labels.shape[0])
    clusters, labels = np.unique(labels, return_inverse=True)
    if len(clusters) < 2:
        return float("nan")
    members = np.zeros((labels.shape[0], len(clusters)), dtype=distances.dtype)
    members[rows, labels] = 1
    sums = distances @ members  # distance from each point to all members of each cluster
    sizes = members.sum(axis=0)
    own_size = sizes[labels]
    within = sums[rows, labels] / np.maximum(own_size - 1, 1)
    means = sums / sizes
    means[rows, labels] = np.inf
    nearest = means.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (nearest - within) / np.maximum(within, nearest)
    scores[own_size == 1] = 0
    return float(np.mean(np.nan_to_num(scores)))


def adjusted_rand(first: np.ndarray, second: np.ndarray) -> float:
    """scikit-learn's adjusted Rand index of two labellings by small non-negative integers.

    The same pair counts and formula as ``adjusted_rand_score``, from one ``bincount``
    instead of its input checks and sparse contingency table: a tenth of the time,
    which counts when stability compares ten pairs of labellings for every k.
    """
    n = np.int64(first.shape[0])
    rows, columns = int(first.max()) + 1, int(second.max()) + 1
    contingency = np.bincount(first.astype(np.int64) * columns + second, minlength=rows * columns)
    contingency = contingency.reshape(rows, columns).astype(np.int64)
    n_c, n_k = contingency.sum(axis=1), contingency.sum(axis=0)
    sum_squares = int((contingency**2).sum())
    tp = sum_squares - int(n)
    fp = int((contingency @ n_k).sum()) - sum_squares
    fn = int((contingency.T @ n_c).sum()) - sum_squares
    tn = int(n) ** 2 - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def bootstrap_stability(
    points: np.ndarray,
    k: int,
    random_state: int,
    bootstraps: int,
    fit: Callable[[np.ndarray, int, int], object] | None = None,
    pool: Executor | None = None,
) -> float:
    """Mean adjusted Rand index between fits on bootstrap resamples, each with its own seed.

    Each fit labels the same `points`, so fits are compared customer by customer. With a
    `pool`, the fits run side by side: the resamples are drawn first, in order, so the
    result is the same.
    """
    if bootstraps < 2:
        return float("nan")
    fit = fit or (lambda data, n, seed: KMeans(n_clusters=n, init="k-means++", n_init=1, random_state=seed).fit(data))
    rng = np.random.default_rng(random_state)
    resamples = [rng.integers(0, len(points), size=len(points)) for _ in range(bootstraps)]

    def labelling(b: int) -> np.ndarray:
        return fit(points[resamples[b]], k, random_state + 1000 * (b + 1)).predict(points)

    labelings = list((pool.map if pool is not None else map)(labelling, range(bootstraps)))
    scores = [adjusted_rand(a, b) for a, b in combinations(labelings, 2)]
    return float(np.mean(scores))


def choose_k(
    ks: tuple[int, ...],
    knee: int,
    silhouette: tuple[float, ...],
    stability: tuple[float, ...],
    threshold: float,
    requested_k: int | None = None,
) -> tuple[int, str]:
    """Apply the documented rule (module docstring) and return (k, rule code)."""
    if requested_k is not None:
        return requested_k, "user"
    by_k = dict(zip(ks, stability, strict=True))
    if by_k.get(knee, float("nan")) >= threshold:
        return knee, "elbow_stable"
    near = [k for k in (knee - 1, knee, knee + 1) if k in by_k and by_k[k] >= threshold]
    if near:
        return max(near, key=lambda k: (by_k[k], -abs(k - knee), -k)), "stable_near_elbow"
    stable = [k for k in ks if by_k[k] >= threshold]
    if stable:
        sil = dict(zip(ks, silhouette, strict=True))
        return max(stable, key=lambda k: (sil[k], -k)), "best_silhouette_stable"
    return knee, "elbow"


def evaluate_k(
    matrix: np.ndarray,
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
) -> SelectionResult:
    """Fit every candidate k and record all the measures, then apply the rule."""
    n_rows = matrix.shape[0]
    k_max = min(settings.k_max, n_rows - 1)
    if k_max < settings.k_min:
        raise ValueError(f"{n_rows} customers are too few for k = {settings.k_min}…")
    sample = matrix[sample_rows(n_rows, settings.fit_sample, random_state)]
    if not np.isfinite(sample).all():
        raise ValueError("the feature matrix holds NaN or infinite values")
    silhouette_rows = sample_rows(sample.shape[0], settings.silhouette_sample, random_state + 1)
    stability_points = sample[sample_rows(sample.shape[0], settings.stability_sample, random_state + 2)]
    ks = tuple(range(settings.k_min, k_max + 1))
    # The silhouette sample's distances once for every k, not once per k (silhouette is
    # all pairwise distances; the labels are all that changes between candidates).
    silhouette_distances = pairwise_distances(sample[silhouette_rows])
    inertia, silhouette, calinski, davies, stability, models = [], [], [], [], [], []
    fit_threads = 1 if sample.shape[0] <= SINGLE_THREAD_ROWS else None
    stability_threads = 1 if stability_points.shape[0] <= SINGLE_THREAD_ROWS else None
    # About 200 small fits and predictions at 10 thousand rows: scikit-learn's checks of
    # arguments and finiteness on each call cost a tenth of the time, and are done once
    # above. (The setting is per thread: each encoding's thread sets its own.)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for k in ks:
            with threadpool_limits(fit_threads):
                model = KMeans(n_clusters=k, init="k-means++", n_init=settings.n_init, random_state=random_state)
                model.fit(sample)
            models.append(model)
            labels = model.labels_
            distinct = len(np.unique(labels))
            inertia.append(float(model.inertia_))
            silhouette.append(silhouette_from_distances(silhouette_distances, labels[silhouette_rows]))
            calinski.append(float(calinski_harabasz_score(sample, labels)) if distinct > 1 else float("nan"))
            davies.append(float(davies_bouldin_score(sample, labels)) if distinct > 1 else float("nan"))
            with threadpool_limits(stability_threads):
                stability.append(bootstrap_stability(stability_points, k, random_state, settings.bootstraps))
            log.info(
                "k=%2d  inertia=%.4g  silhouette=%.3f  CH=%.0f  DB=%.2f  stability=%.2f",
                k, inertia[-1], silhouette[-1], calinski[-1], davies[-1], stability[-1],
            )  # fmt: skip
    knee = find_knee(np.array(ks), np.array(inertia))
    chosen, rule = choose_k(ks, knee, tuple(silhouette), tuple(stability), settings.stability_threshold, requested_k)
    return SelectionResult(
        ks=ks,
        inertia=tuple(inertia),
        silhouette=tuple(silhouette),
        calinski_harabasz=tuple(calinski),
        davies_bouldin=tuple(davies),
        stability=tuple(stability),
        knee=knee,
        chosen=chosen,
        rule=rule,
        fit_sample=int(sample.shape[0]),
        silhouette_sample=len(silhouette_rows),
        stability_sample=int(stability_points.shape[0]),
        bootstraps=settings.bootstraps,
        model=models[ks.index(chosen)] if chosen in ks else None,
    )


def evaluate_encodings(
    matrices: dict[str, np.ndarray],
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
) -> dict[str, SelectionResult]:
    """`evaluate_k` for each candidate encoding of the same customers.

    When every fit is small enough to run on one thread (the default data), the
    encodings are evaluated side by side, one per core: K-Means and the distance
    computations release the GIL, so two threads take about two thirds of the time of
    one after the other. The results are the same either way: each evaluation has its own
    seeds and runs single-threaded (BLAS limits are process-wide, so they are set here
    once, around both).
    """
    single_threaded = all(
        min(matrix.shape[0], settings.fit_sample) <= SINGLE_THREAD_ROWS for matrix in matrices.values()
    )
    if len(matrices) < 2 or not single_threaded:
        return {name: evaluate_k(matrix, settings, random_state, requested_k) for name, matrix in matrices.items()}
    with threadpool_limits(1), ThreadPoolExecutor(max_workers=min(len(matrices), 2)) as pool:
        futures = {
            name: pool.submit(evaluate_k, matrix, settings, random_state, requested_k)
            for name, matrix in matrices.items()
        }
        return {name: future.result() for name, future in futures.items()}


# ---- k for the latent class model: an information criterion, filtered by stability and size ----


@dataclass(frozen=True)
class MixtureSelection:
    """Per-k evidence for the latent class model, the chosen k, and the model fitted at it."""

    ks: tuple[int, ...]
    bic: tuple[float, ...]
    icl: tuple[float, ...]
    log_likelihood: tuple[float, ...]
    stability: tuple[float, ...]  # NaN where the rule did not need it
    smallest_share: tuple[float, ...]
    chosen: int
    rule: str  # user, <criterion>_stable, <criterion>_sized, <criterion>
    criterion: str
    fit_sample: int
    stability_sample: int
    bootstraps: int
    min_segment_share: float
    model: object = field(repr=False, compare=False, default=None)

    def measure(self, name: str, k: int) -> float:
        return float(getattr(self, name)[self.ks.index(k)])


def choose_mixture_k(
    ks: tuple[int, ...],
    criterion: tuple[float, ...],
    stability: tuple[float, ...],
    smallest_share: tuple[float, ...],
    threshold: float,
    min_share: float,
    name: str = "icl",
    requested_k: int | None = None,
) -> tuple[int, str]:
    """The k of lowest criterion among those stable and without a tiny segment.

    In order: ``K=`` (``user``); the lowest criterion among k that are stable and whose
    smallest segment holds at least `min_share` of the customers (``<name>_stable``);
    among k with no tiny segment (``<name>_sized``); the lowest criterion (``<name>``).
    """
    if requested_k is not None:
        return requested_k, "user"
    value = dict(zip(ks, criterion, strict=True))
    sized = [k for k, share in zip(ks, smallest_share, strict=True) if share >= min_share]
    stable = [k for k, s in zip(ks, stability, strict=True) if k in sized and s >= threshold]
    for candidates, rule in ((stable, f"{name}_stable"), (sized, f"{name}_sized"), (list(ks), name)):
        if candidates:
            return min(candidates, key=lambda k: (value[k], k)), rule
    raise ValueError("no candidate k")


def evaluate_mixture_k(
    data,
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
    criterion: str = "bic",
    min_share: float = 0.05,
    n_init: int = 10,
) -> MixtureSelection:
    """Fit the latent class model for every candidate k on a sample; record BIC, ICL, stability, sizes.

    The sample has a fixed size (``settings.fit_sample``): an information criterion's
    penalty grows only with the log of the rows, so on ever more customers it keeps
    adding classes for small departures from the model's shapes. Judged on a sample of
    fixed size, the evidence, and k, do not grow with the table.
    """
    from .mixture import LatentClassModel

    n_rows = len(data)
    k_max = min(settings.k_max, n_rows - 1)
    if k_max < settings.k_min:
        raise ValueError(f"{n_rows} customers are too few for k = {settings.k_min}…")
    sample = data.take(sample_rows(n_rows, settings.fit_sample, random_state))
    stability_points = sample.take(sample_rows(len(sample), settings.stability_sample, random_state + 2))
    ks = tuple(range(settings.k_min, k_max + 1))
    fitted, bic, icl, log_likelihood, smallest = {}, [], [], [], []

    def quick_fit(points, k: int, seed: int) -> LatentClassModel:
        return LatentClassModel(k, n_init=3, keep_starts=1, random_state=seed).fit(points)

    def full_fit(k: int) -> LatentClassModel:
        return LatentClassModel(k, n_init=n_init, random_state=random_state).fit(sample)

    single_thread = len(sample) <= SINGLE_THREAD_ROWS
    with threadpool_limits(1 if single_thread else None):
        # Each k's fit is independent and seeded: on a sample small enough for one BLAS thread,
        # the fits run side by side (numpy releases the GIL) and give the same models as in turn.
        workers = min(len(ks), os.cpu_count() or 1, MAX_FIT_THREADS) if single_thread else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # the largest k take longest: started first, they do not leave one thread working alone at the end
            futures = {k: pool.submit(full_fit, k) for k in sorted(ks, reverse=True)}
            models = [futures[k].result() for k in ks]
            for k, model in zip(ks, models, strict=True):
                fitted[k] = model
                bic.append(float(model.bic_))
                icl.append(float(model.icl_))
                log_likelihood.append(float(model.log_likelihood_))
                smallest.append(float(np.bincount(model.predict(sample), minlength=k).min() / len(sample)))
                log.info("k=%2d  BIC=%.6g  ICL=%.6g  smallest segment=%.1f%%", k, bic[-1], icl[-1], 100 * smallest[-1])
            # Stability is costly (refits on bootstraps), and the rule only needs it for the
            # candidates in order of the criterion until one is stable: the same k as
            # measuring every k, without the fits whose result could not change it.
            values = icl if criterion == "icl" else bic
            stability = {k: float("nan") for k in ks}
            if requested_k is None:
                for k in sorted((k for k, share in zip(ks, smallest, strict=True) if share >= min_share),
                                key=lambda k: (values[ks.index(k)], k)):  # fmt: skip
                    stability[k] = bootstrap_stability(
                        stability_points, k, random_state, settings.bootstraps, quick_fit, pool if workers > 1 else None
                    )
                    log.info("k=%2d  stability=%.2f", k, stability[k])
                    if stability[k] >= settings.stability_threshold:
                        break
    chosen, rule = choose_mixture_k(
        ks,
        tuple(values),
        tuple(stability[k] if not np.isnan(stability[k]) else -1.0 for k in ks),
        tuple(smallest),
        settings.stability_threshold,
        min_share,
        criterion,
        requested_k,
    )
    model = fitted.get(chosen) or LatentClassModel(chosen, n_init=n_init, random_state=random_state).fit(sample)
    return MixtureSelection(
        ks=ks,
        bic=tuple(bic),
        icl=tuple(icl),
        log_likelihood=tuple(log_likelihood),
        stability=tuple(stability[k] for k in ks),
        smallest_share=tuple(smallest),
        chosen=chosen,
        rule=rule,
        criterion=criterion,
        fit_sample=len(sample),
        stability_sample=len(stability_points),
        bootstraps=settings.bootstraps,
        min_segment_share=min_share,
        model=model,
    )
