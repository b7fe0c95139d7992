"""The clustering algorithms on offer, behind one small interface.

``mixture`` (the default: a latent class model, module ``mixture``) works on its own
preparation of the columns, not on the encoded matrix; the pipeline fits it itself.
Every other model here predicts on the *encoded* matrix (the output of the features
module) and exposes ``predict`` and ``transform`` (distances to each centre), so
that assignment, scoring of new customers and matching across runs do not care
which algorithm was used.

- ``kmeans``: scikit-learn KMeans (k-means++, several inits), fitted on all customers
  or, above ``fit_sample``, on a uniform sample; every customer is then assigned.
- ``minibatch``: MiniBatchKMeans driven by ``partial_fit`` on our own uniform batches:
  scikit-learn's own ``fit`` draws each batch in O(n) and is slower than KMeans at
  millions of rows; ``partial_fit`` on prepared batches is not.
- ``kprototypes``: k-prototypes (kmodes package) for mixed data: squared Euclidean
  distance on the scaled numbers plus gamma × the number of categorical mismatches.
  Its assignment is a per-row Python loop (hours at 100 000 rows), so it is fitted on
  at most ``KPROTOTYPES_MAX_FIT`` customers and everyone is assigned by the vectorised
  distance below.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from .errors import UserError
from .evidence import sample_rows

log = logging.getLogger(__name__)

ALGORITHMS = ("mixture", "kmeans", "minibatch", "kprototypes")  # mixture: see mixture.py (not matrix-based)
KPROTOTYPES_MAX_FIT = 5_000
MINIBATCH_SIZE = 8_192


@dataclass(frozen=True)
class Block:
    """Where one categorical variable sits in the encoded matrix."""

    name: str
    columns: tuple[int, ...]  # one column for a yes/no kept as 0/1, else one per level


class KPrototypesModel:
    """A fitted k-prototypes model that works on the encoded matrix, vectorised."""

    def __init__(self, n_clusters: int, gamma: float, numeric_columns: tuple[int, ...], blocks: tuple[Block, ...]):
        self.n_clusters = n_clusters
        self.gamma = gamma
        self.numeric_columns = numeric_columns
        self.blocks = blocks

    def set_centres(self, numeric: np.ndarray, modes: np.ndarray) -> KPrototypesModel:
        self.numeric_centres_ = numeric.astype(np.float64)  # (k, n_numeric)
        self.modes_ = modes.astype(np.int64)  # (k, n_blocks): level index of each centre
        return self

    def categorical_codes(self, matrix: np.ndarray) -> np.ndarray:
        """Level index of each block for each row (argmax of its one-hot columns)."""
        codes = np.empty((matrix.shape[0], len(self.blocks)), dtype=np.int64)
        for j, block in enumerate(self.blocks):
            part = matrix[:, block.columns]
            codes[:, j] = (part[:, 0] > 0).astype(np.int64) if len(block.columns) == 1 else part.argmax(axis=1)
        return codes

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """Square root of the k-prototypes cost of each row to each centre."""
        numeric = matrix[:, self.numeric_columns].astype(np.float64)
        cost = (
            (numeric**2).sum(axis=1)[:, None]
            - 2.0 * numeric @ self.numeric_centres_.T
            + (self.numeric_centres_**2).sum(axis=1)[None, :]
        )
        codes = self.categorical_codes(matrix)
        for j in range(len(self.blocks)):
            cost += self.gamma * (codes[:, j][:, None] != self.modes_[:, j][None, :])
        return np.sqrt(np.maximum(cost, 0.0))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.transform(matrix).argmin(axis=1)


def categorical_blocks(
    feature_names: list[str], categorical: tuple[str, ...]
) -> tuple[tuple[int, ...], tuple[Block, ...]]:
    """Split the encoded columns into the numeric part and one block per categorical variable."""
    blocks = []
    taken: set[int] = set()
    for name in categorical:
        columns = tuple(i for i, feature in enumerate(feature_names) if feature.startswith(f"{name}_"))
        blocks.append(Block(name, columns))
        taken.update(columns)
    numeric = tuple(i for i in range(len(feature_names)) if i not in taken)
    return numeric, tuple(blocks)


def fit_kmeans(matrix: np.ndarray, k: int, random_state: int, fit_sample: int, n_init: int = 4) -> KMeans:
    rows = sample_rows(matrix.shape[0], fit_sample, random_state)
    return KMeans(n_clusters=k, init="k-means++", n_init=n_init, random_state=random_state).fit(matrix[rows])


def fit_minibatch(matrix: np.ndarray, k: int, random_state: int, passes: int = 3) -> MiniBatchKMeans:
    """partial_fit over our own uniform batches: O(batch) per step, bounded passes."""
    rng = np.random.default_rng(random_state)
    model = MiniBatchKMeans(n_clusters=k, init="k-means++", batch_size=MINIBATCH_SIZE, random_state=random_state)
    n_rows = matrix.shape[0]
    seen = 0
    budget = min(passes * n_rows, 3_000_000)  # enough steps for the centres to settle
    first = sample_rows(n_rows, max(3 * k, min(n_rows, 3 * MINIBATCH_SIZE)), random_state)
    model.partial_fit(matrix[first])  # k-means++ on a first, larger batch
    seen += len(first)
    while seen < budget:
        batch = np.sort(rng.integers(0, n_rows, size=min(MINIBATCH_SIZE, n_rows)))
        model.partial_fit(matrix[batch])
        seen += len(batch)
    return model


def fit_kprototypes(
    matrix: np.ndarray, k: int, random_state: int, feature_names: list[str], categorical: tuple[str, ...]
) -> KPrototypesModel:
    """k-prototypes on at most KPROTOTYPES_MAX_FIT customers; gamma as kmodes sets it."""
    from kmodes.kprototypes import KPrototypes

    numeric_columns, blocks = categorical_blocks(feature_names, categorical)
    if not blocks:
        raise UserError("ALGO=kprototypes needs categorical features; the mart declares none: use ALGO=kmeans.")
    if not numeric_columns:
        raise UserError("ALGO=kprototypes needs numeric features; the mart declares none: use ALGO=kmeans.")
    rows = sample_rows(matrix.shape[0], KPROTOTYPES_MAX_FIT, random_state)
    if len(rows) < matrix.shape[0]:
        log.info(
            "k-prototypes: fitting on %s of %s customers (its assignment is a per-row loop), assigning all",
            f"{len(rows):,}",
            f"{matrix.shape[0]:,}",
        )
    shell = KPrototypesModel(k, 0.0, numeric_columns, blocks)
    sample = matrix[rows]
    numeric = sample[:, numeric_columns].astype(np.float64)
    codes = shell.categorical_codes(sample)
    data = np.hstack([numeric, codes.astype(np.float64)])
    categorical_index = list(range(numeric.shape[1], data.shape[1]))
    fitted = KPrototypes(n_clusters=k, init="Cao", n_init=1, random_state=random_state, n_jobs=1).fit(
        data, categorical=categorical_index
    )
    centres = np.asarray(fitted.cluster_centroids_, dtype=np.float64)
    shell.gamma = float(fitted.gamma)
    return shell.set_centres(centres[:, : numeric.shape[1]], np.rint(centres[:, numeric.shape[1] :]))


def fit_model(
    algorithm: str,
    matrix: np.ndarray,
    k: int,
    random_state: int,
    feature_names: list[str],
    categorical: tuple[str, ...],
    fit_sample: int = 1_000_000,
):
    """Fit the chosen algorithm; every returned model has predict() and transform()."""
    if algorithm == "kmeans":
        return fit_kmeans(matrix, k, random_state, fit_sample)
    if algorithm == "minibatch":
        return fit_minibatch(matrix, k, random_state)
    if algorithm == "kprototypes":
        return fit_kprototypes(matrix, k, random_state, feature_names, categorical)
    raise UserError(f"unknown ALGO={algorithm!r}: use one of {', '.join(ALGORITHMS)}.")
