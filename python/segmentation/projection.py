"""Two-dimensional views of the segments for the report: PCA and t-SNE.

Only a stratified sample is plotted (every segment represented in proportion, with
a floor so that small segments stay visible): a scatter of a few thousand points
reads as well as one of millions, and t-SNE is quadratic-ish in the points it sees.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np
from sklearn.decomposition import PCA

log = logging.getLogger(__name__)
logging.getLogger("openTSNE").setLevel(logging.WARNING)

EXACT_NEIGHBOURS = 5_000  # up to this many plotted points, t-SNE's neighbours are found exactly


def stratified_sample(labels: np.ndarray, size: int, random_state: int, floor: int = 50) -> np.ndarray:
    """Sorted row indices: about `size` rows, each segment in proportion, at least `floor` each."""
    n_rows = labels.shape[0]
    if n_rows <= size:
        return np.arange(n_rows)
    rng = np.random.default_rng(random_state)
    chosen = []
    # segment ids are small positive numbers: a bincount is np.unique's answer without its sort of every row
    tally = np.bincount(labels) if labels.min() >= 0 else None
    segments, counts = (
        (np.flatnonzero(tally), tally[tally > 0]) if tally is not None else np.unique(labels, return_counts=True)
    )
    for segment, count in zip(segments, counts, strict=True):
        take = int(min(count, max(floor, round(size * count / n_rows))))
        members = np.flatnonzero(labels == segment)
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def pca_fit_rows(matrix: np.ndarray, random_state: int, fit_rows: int = 200_000) -> np.ndarray:
    """The rows PCA is fitted on: all, or a uniform sample; the 2 leading axes barely move beyond that size."""
    rng = np.random.default_rng(random_state)
    return matrix if matrix.shape[0] <= fit_rows else matrix[rng.choice(matrix.shape[0], fit_rows, replace=False)]


def tsne_2d(points: np.ndarray, random_state: int) -> np.ndarray:
    """t-SNE embedding of the plotted sample (openTSNE: faster than sklearn's).

    One thread, always: openTSNE's result is deterministic for a seed *and* a thread
    count, so the count is fixed rather than taken from the machine. On 1,000 points a
    second thread saves little when the machine is quiet and costs five times the CPU
    when it is not (its workers spin-wait for a busy core); the pipeline runs this
    beside its other work instead, which uses the second core better.
    """
    from openTSNE import TSNE

    if points.shape[0] < 10:
        return np.zeros((points.shape[0], 2), dtype=np.float32)
    perplexity = float(min(30.0, max(2.0, (points.shape[0] - 1) / 3.0)))
    # Tuned on the default data's 1,000 plotted customers: exact neighbours (cheaper than an
    # index at this size), 300 iterations in all and a coarser Barnes-Hut (theta 0.8) take 0.8 s
    # of CPU instead of 1.4 s, for a KL divergence of 0.680 instead of 0.666: the same map.
    embedding = TSNE(
        n_components=2,
        perplexity=perplexity,
        early_exaggeration_iter=80,
        n_iter=220,
        theta=0.8,
        neighbors="exact" if points.shape[0] <= EXACT_NEIGHBOURS else "auto",
        random_state=random_state,
        n_jobs=1,
        negative_gradient_method="bh",
        verbose=False,
    ).fit(points.astype(np.float64))
    return np.asarray(embedding, dtype=np.float32)


def project(
    matrix: np.ndarray, labels: np.ndarray, sample_size: int, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(plotted row indices, PCA coordinates, t-SNE coordinates) of a stratified sample."""
    rows, fit_rows, points = projection_inputs(matrix, labels, sample_size, random_state)
    return (rows, *project_points(fit_rows, points, random_state))


def projection_inputs(
    matrix: np.ndarray, labels: np.ndarray, sample_size: int, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What `project_points` needs, taken from the matrix: (plotted rows, PCA's fit rows, plotted points).

    The PCA and t-SNE can then run while the matrix itself is freed (`make all` computes them
    while dbt builds the profiles)."""
    rows = stratified_sample(labels, sample_size, random_state)
    return rows, pca_fit_rows(matrix, random_state), matrix[rows]


def project_points(fit_rows: np.ndarray, points: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(PCA coordinates, t-SNE coordinates) of the plotted points."""
    pca = PCA(n_components=2, random_state=random_state).fit(fit_rows)
    pca_xy = pca.transform(points).astype(np.float32)
    log.info("t-SNE on %s plotted customers", f"{len(points):,}")
    return pca_xy, tsne_2d(points, random_state)


class Projecting:
    """PCA and t-SNE of the plotted points, computed on a thread of their own (or in `executor`).

    The segment step goes on meanwhile (the comparison of the models, the tables, the write);
    `make all` lets it run on while dbt builds the profiles, and writes it after
    (`pipeline.write_projection`). `result()` waits: (PCA, t-SNE coordinates, seconds taken).
    """

    def __init__(
        self,
        matrix: np.ndarray,
        labels: np.ndarray,
        sample_size: int,
        random_state: int,
        executor: Executor | None = None,
    ) -> None:
        self.rows, fit_rows, points = projection_inputs(matrix, labels, sample_size, random_state)
        self.labels = labels[self.rows]
        # the run's, once its tables are written: its id, the plotted customers' ids, its stage timings
        self.run_id: str | None = None
        self.ids = None
        self.timings: dict[str, float] = {}
        own = executor is None
        if own:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection")
        self._future = executor.submit(Projecting._project, fit_rows, points, random_state)
        if own:
            executor.shutdown(wait=False)  # the thread ends with its one task

    @staticmethod
    def _project(fit_rows: np.ndarray, points: np.ndarray, random_state: int) -> tuple[np.ndarray, np.ndarray, float]:
        started = time.perf_counter()
        pca_xy, tsne_xy = project_points(fit_rows, points, random_state)
        seconds = time.perf_counter() - started
        log.info("projecting to 2-D (PCA, t-SNE) done in %.1f s", seconds)
        return pca_xy, tsne_xy, round(seconds, 3)

    def result(self) -> tuple[np.ndarray, np.ndarray, float]:
        return self._future.result()
