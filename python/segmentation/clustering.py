"""The final K-Means model and the assignment of every customer.

Segment ids are renumbered 1…k by decreasing size, so that "segment 1" always
means the largest group and the numbering does not depend on the solver's order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from .selection import sample_rows

log = logging.getLogger(__name__)

ASSIGN_CHUNK_ROWS = 1_000_000


@dataclass
class Segmentation:
    model: KMeans
    segment_ids: np.ndarray  # segment id (1…k) of each K-Means cluster label
    labels: np.ndarray  # segment id of each customer, int32
    distances: np.ndarray  # distance of each customer to its segment centre, float32

    @property
    def k(self) -> int:
        return int(self.model.n_clusters)


def assign(model: KMeans, matrix: np.ndarray, chunk_rows: int = ASSIGN_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre and its distance for each row, in chunks to bound memory."""
    labels = np.empty(matrix.shape[0], dtype=np.int32)
    distances = np.empty(matrix.shape[0], dtype=np.float32)
    for start in range(0, matrix.shape[0], chunk_rows):
        block = model.transform(matrix[start : start + chunk_rows])
        nearest = block.argmin(axis=1)
        labels[start : start + chunk_rows] = nearest
        distances[start : start + chunk_rows] = block[np.arange(block.shape[0]), nearest]
    return labels, distances


def size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """Map cluster label → segment id so that segment 1 is the largest (ties: lower label first)."""
    counts = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda label: (-counts[label], label))
    segment_ids = np.empty(k, dtype=np.int32)
    for rank, label in enumerate(order, start=1):
        segment_ids[label] = rank
    return segment_ids


def fit_segments(
    matrix: np.ndarray, k: int, random_state: int, fit_sample: int = 1_000_000, n_init: int = 4
) -> Segmentation:
    """Fit K-Means (k-means++, fixed seed) and assign every customer.

    Above `fit_sample` rows the centres are fitted on a uniform sample: they move
    by far less than the clusters' spread, and assignment of all rows stays exact.
    """
    rows = sample_rows(matrix.shape[0], fit_sample, random_state)
    model = KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=random_state).fit(matrix[rows])
    labels, distances = assign(model, matrix)
    segment_ids = size_order(labels, k)
    log.info("fitted K-Means with k=%d on %s customers", k, f"{len(rows):,}")
    return Segmentation(model=model, segment_ids=segment_ids, labels=segment_ids[labels], distances=distances)
