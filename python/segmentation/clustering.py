"""The final model, the assignment of every customer, and stable segment identities.

A segment keeps its id from run to run: each run's centres are matched to the
previous run's (Hungarian matching on centre distance, both expressed in this run's
feature space), so "segment 3" and its persona stay the same segment when the data
change a little. Without a previous run, ids are 1…k by decreasing size.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .algorithms import fit_model

log = logging.getLogger(__name__)

ASSIGN_CHUNK_ROWS = 1_000_000
SCAN_CHUNK_ROWS = 65_536  # rows per block of the float64 passes: a few megabytes, reused


@dataclass
class Segmentation:
    model: object
    segment_ids: np.ndarray  # segment id of each model cluster label
    labels: np.ndarray  # segment id of each customer, int32
    distances: np.ndarray  # distance of each customer to its centre, float32
    centres: np.ndarray  # (k, d) mean of each cluster label's customers, encoded space
    sizes: np.ndarray  # customers per cluster label
    status: dict[int, str] = field(default_factory=dict)  # segment id → kept | new
    vanished: list[int] = field(default_factory=list)  # previous segment ids with no match
    # probability that each customer belongs to its segment (a mixture model's posterior; 1 for K-Means)
    probabilities: np.ndarray | None = None

    @property
    def k(self) -> int:
        return len(self.segment_ids)


def assign(model, matrix: np.ndarray, chunk_rows: int = ASSIGN_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre and its distance for each row, in chunks to bound memory."""
    labels = np.empty(matrix.shape[0], dtype=np.int32)
    distances = np.empty(matrix.shape[0], dtype=np.float32)
    for start in range(0, matrix.shape[0], chunk_rows):
        block = model.transform(matrix[start : start + chunk_rows])
        nearest = block.argmin(axis=1)
        labels[start : start + chunk_rows] = nearest
        distances[start : start + chunk_rows] = block[np.arange(block.shape[0]), nearest]
    return labels, distances


def distances_to(matrix: np.ndarray, centres: np.ndarray, labels: np.ndarray, chunk_rows: int = SCAN_CHUNK_ROWS):
    """Euclidean distance of each row to the centre of its label (float64 arithmetic, stored float32).

    In blocks of a few megabytes, reused: the arithmetic is `np.linalg.norm`'s, row by row, so the
    result does not depend on the block size, and small blocks stay in cache instead of faulting in
    fresh pages (at ten million customers a million-row block spent more time in the kernel than
    in the sums).
    """
    distances = np.empty(matrix.shape[0], dtype=np.float32)

    def rows(part: range) -> None:
        block = np.empty((min(chunk_rows, len(part)), matrix.shape[1]), dtype=np.float64)
        for start in range(part.start, part.stop, chunk_rows):
            stop = min(start + chunk_rows, part.stop)
            difference = block[: stop - start]
            np.subtract(matrix[start:stop], centres[labels[start:stop]], out=difference)
            np.multiply(difference, difference, out=difference)
            distances[start:stop] = np.sqrt(np.add.reduce(difference, axis=1))

    # rows are independent: the halves go to two threads (NumPy lets go of the GIL in the sums)
    half = -(-matrix.shape[0] // (2 * chunk_rows)) * chunk_rows
    _on_threads(rows, [range(0, min(half, matrix.shape[0])), range(min(half, matrix.shape[0]), matrix.shape[0])])
    return distances


def cluster_means(matrix: np.ndarray, labels: np.ndarray, k: int, chunk_rows: int = SCAN_CHUNK_ROWS) -> np.ndarray:
    """Mean encoded vector of each cluster, summed in float64 in row order.

    Each cluster's rows are gathered a block at a time and added to its running sums, row
    after row (a reduction down the rows of a C-ordered block is sequential, and the running
    sums ride along as the block's first row): the same numbers as one weighted bincount per
    column, in one pass over the matrix instead of one per column.
    """
    sums = np.zeros((k, matrix.shape[1]), dtype=np.float64)

    def add_up(label: int) -> None:
        members = np.flatnonzero(labels == label)
        block = np.empty((min(chunk_rows, len(members)) + 1, matrix.shape[1]), dtype=np.float64)
        for start in range(0, len(members), chunk_rows):
            rows = members[start : start + chunk_rows]
            part = block[: len(rows) + 1]
            part[0] = sums[label]
            part[1:] = matrix[rows]
            sums[label] = np.add.reduce(part, axis=0)

    # clusters are independent: summed on two threads, largest first so that they finish together
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    _on_threads(add_up, sorted(range(k), key=lambda label: -counts[label]))
    return sums / np.maximum(counts, 1.0)[:, None]


def _on_threads(work, parts: list) -> None:
    """`work(part)` for each part on two threads (the step's other work is done by now), errors raised."""
    if len(parts) <= 1:
        for part in parts:
            work(part)
        return
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="assign") as pool:
        for future in [pool.submit(work, part) for part in parts]:
            future.result()


def size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """Map cluster label → segment id so that segment 1 is the largest (ties: lower label first)."""
    counts = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda label: (-counts[label], label))
    segment_ids = np.empty(k, dtype=np.int32)
    for rank, label in enumerate(order, start=1):
        segment_ids[label] = rank
    return segment_ids


def match_segments(
    centres: np.ndarray,
    sizes: np.ndarray,
    previous: dict[int, np.ndarray] | None,
    max_shift: float,
    next_id: int | None = None,
) -> tuple[np.ndarray, dict[int, str], list[int]]:
    """Give each cluster a segment id, reusing the previous run's ids where centres match.

    Hungarian matching minimises the total distance between matched centres; a pair
    further apart than `max_shift` (the typical distance of a customer to its centre)
    is not the same segment. Unmatched clusters get new ids, larger first; previous
    segments left unmatched are reported as vanished.
    """
    k = centres.shape[0]
    if not previous:
        ids = size_order(np.repeat(np.arange(k), sizes), k) if sizes.sum() else np.arange(1, k + 1, dtype=np.int32)
        return ids.astype(np.int32), {int(i): "new" for i in ids}, []
    previous_ids = sorted(previous)
    previous_centres = np.vstack([previous[i] for i in previous_ids])
    cost = np.linalg.norm(centres[:, None, :] - previous_centres[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    segment_ids = np.zeros(k, dtype=np.int32)
    status: dict[int, str] = {}
    matched_previous = set()
    for row, col in zip(rows, cols, strict=True):
        if cost[row, col] <= max_shift:
            segment_ids[row] = previous_ids[col]
            status[previous_ids[col]] = "kept"
            matched_previous.add(previous_ids[col])
    new_id = max(next_id or 0, max(previous_ids) + 1)
    for label in sorted(np.flatnonzero(segment_ids == 0), key=lambda label: (-sizes[label], label)):
        segment_ids[label] = new_id
        status[new_id] = "new"
        new_id += 1
    vanished = [i for i in previous_ids if i not in matched_previous]
    return segment_ids, status, vanished


def fit_segments(
    matrix: np.ndarray,
    k: int,
    random_state: int,
    algorithm: str = "kmeans",
    feature_names: list[str] | None = None,
    categorical: tuple[str, ...] = (),
    previous_centres: dict[int, np.ndarray] | None = None,
    next_id: int | None = None,
    fit_sample: int = 1_000_000,
) -> Segmentation:
    """Fit the model, assign every customer, and name segments consistently with the previous run."""
    model = fit_model(algorithm, matrix, k, random_state, feature_names or [], categorical, fit_sample)
    labels, distances = assign(model, matrix)
    log.info("fitted %s with k=%d", algorithm, k)
    return name_segments(model, matrix, labels, k, distances, previous_centres, next_id)


def segments_from_probabilities(
    model,
    matrix: np.ndarray,
    probabilities: np.ndarray,
    previous_centres: dict[int, np.ndarray] | None = None,
    next_id: int | None = None,
) -> Segmentation:
    """Segments from a mixture model's membership probabilities (most probable class).

    Centres and distances are taken in the encoded feature space, like K-Means', so that
    segments are matched across runs and profiled the same way whichever model found them.
    """
    k = probabilities.shape[1]
    labels = probabilities.argmax(axis=1).astype(np.int32)
    centres = cluster_means(matrix, labels, k)
    distances = distances_to(matrix, centres, labels)
    chosen = probabilities[np.arange(len(labels)), labels].astype(np.float32)
    return name_segments(model, matrix, labels, k, distances, previous_centres, next_id, chosen, centres)


def name_segments(
    model,
    matrix: np.ndarray | None,  # read only when `centres` is not given
    labels: np.ndarray,
    k: int,
    distances: np.ndarray,
    previous_centres: dict[int, np.ndarray] | None,
    next_id: int | None,
    probabilities: np.ndarray | None = None,
    centres: np.ndarray | None = None,
) -> Segmentation:
    """Sizes, centres and segment ids (matched to the previous run's) for cluster labels."""
    sizes = np.bincount(labels, minlength=k)
    centres = cluster_means(matrix, labels, k) if centres is None else centres
    max_shift = float(np.mean(distances)) if len(distances) else 0.0
    segment_ids, status, vanished = match_segments(centres, sizes, previous_centres, max_shift, next_id)
    if vanished:
        log.warning("segments of the previous run with no match in this run: %s", ", ".join(map(str, vanished)))
    return Segmentation(
        model=model,
        segment_ids=segment_ids,
        labels=segment_ids[labels],
        distances=distances,
        centres=centres,
        sizes=sizes,
        status=status,
        vanished=vanished,
        probabilities=probabilities,
    )
