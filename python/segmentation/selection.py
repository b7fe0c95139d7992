"""Choosing k: the elbow of the inertia curve, with silhouette as a second opinion.

Candidate k are fitted on a uniform sample when the table is large (the curve's
shape, hence the knee, is stable well before 200 000 customers), and silhouette,
quadratic in the number of points, on a smaller sample whose size the report states.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SelectionResult:
    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    knee: int
    chosen: int
    source: str  # "elbow" or "user"
    fit_sample: int
    silhouette_sample: int


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


def evaluate_k(
    matrix: np.ndarray,
    k_min: int,
    k_max: int,
    random_state: int,
    fit_sample: int,
    silhouette_sample: int,
    requested_k: int | None = None,
    n_init: int = 4,
) -> SelectionResult:
    """Fit K-Means for every candidate k and record inertia and silhouette."""
    n_rows = matrix.shape[0]
    k_max = min(k_max, n_rows - 1)
    if k_max < k_min:
        raise ValueError(f"{n_rows} customers are too few for k = {k_min}…")
    sample = matrix[sample_rows(n_rows, fit_sample, random_state)]
    silhouette_rows = sample_rows(sample.shape[0], silhouette_sample, random_state + 1)
    ks = tuple(range(k_min, k_max + 1))
    inertias, silhouettes = [], []
    for k in ks:
        model = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=random_state).fit(sample)
        inertias.append(float(model.inertia_))
        labels = model.labels_[silhouette_rows]
        score = silhouette_score(sample[silhouette_rows], labels) if len(set(labels)) > 1 else float("nan")
        silhouettes.append(float(score))
        log.info("k=%2d  inertia=%.4g  silhouette=%.3f", k, model.inertia_, score)
    knee = find_knee(np.array(ks), np.array(inertias))
    chosen = requested_k if requested_k is not None else knee
    return SelectionResult(
        ks=ks,
        inertia=tuple(inertias),
        silhouette=tuple(silhouettes),
        knee=knee,
        chosen=chosen,
        source="user" if requested_k is not None else "elbow",
        fit_sample=int(sample.shape[0]),
        silhouette_sample=len(silhouette_rows),
    )
