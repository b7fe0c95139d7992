import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segmentation.selection import evaluate_k, find_knee, sample_rows


def test_knee_of_a_sharp_elbow() -> None:
    ks = np.arange(2, 11)
    inertia = np.array([100, 50, 20, 18, 16, 15, 14, 13, 12], dtype=float)
    assert find_knee(ks, inertia) == 4


def test_knee_of_a_flat_curve_is_the_first_k() -> None:
    assert find_knee(np.arange(2, 6), np.ones(4)) == 2


def test_elbow_finds_the_planted_number_of_blobs() -> None:
    matrix, _ = make_blobs(n_samples=3000, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    result = evaluate_k(matrix.astype(np.float32), 2, 10, random_state=0, fit_sample=3000, silhouette_sample=1000)
    assert result.knee == 4
    assert result.chosen == 4 and result.source == "elbow"
    assert result.ks == tuple(range(2, 11))
    assert np.argmax(result.silhouette) == result.ks.index(4)
    assert all(a > b for a, b in zip(result.inertia, result.inertia[1:], strict=False))


def test_requested_k_overrides_the_elbow() -> None:
    matrix, _ = make_blobs(n_samples=500, centers=4, n_features=3, random_state=3)
    result = evaluate_k(matrix, 2, 6, random_state=0, fit_sample=500, silhouette_sample=500, requested_k=6)
    assert result.chosen == 6 and result.source == "user" and result.knee == 4


def test_samples_are_reproducible_and_bounded() -> None:
    first = sample_rows(100_000, 1000, random_state=7)
    assert np.array_equal(first, sample_rows(100_000, 1000, random_state=7))
    assert len(first) == 1000 and len(np.unique(first)) == 1000
    assert np.array_equal(sample_rows(10, 1000, random_state=7), np.arange(10))


def test_too_few_rows_is_refused() -> None:
    with pytest.raises(ValueError):
        evaluate_k(np.zeros((2, 2)), 2, 10, random_state=0, fit_sample=10, silhouette_sample=10)
