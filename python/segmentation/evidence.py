"""The measures k is chosen on: the knee of the inertia curve, the silhouette, the adjusted Rand
index and the stability it gives under bootstrap refits, and the uniform samples they are read on.

Pure functions of arrays, shared by K-Means' choice (``selection``) and the latent class
model's (``mixture_selection``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from itertools import combinations

import numpy as np
from sklearn.cluster import KMeans


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
