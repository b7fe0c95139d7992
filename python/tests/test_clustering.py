import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segmentation.clustering import assign, fit_segments, size_order
from segmentation.projection import project, stratified_sample


def _blobs(n: int = 2000):
    matrix, truth = make_blobs(
        n_samples=[n // 2, n // 4, n // 8, n // 8], n_features=5, cluster_std=0.7, random_state=1
    )
    return matrix.astype(np.float32), truth


def test_segments_are_numbered_by_decreasing_size() -> None:
    matrix, truth = _blobs()
    segmentation = fit_segments(matrix, 4, random_state=0)
    sizes = np.bincount(segmentation.labels)[1:]
    assert list(sizes) == sorted(sizes, reverse=True)
    assert set(segmentation.labels) == {1, 2, 3, 4}
    assert adjusted_rand_score(truth, segmentation.labels) > 0.95


def test_same_seed_same_labels() -> None:
    matrix, _ = _blobs()
    first = fit_segments(matrix, 4, random_state=5)
    second = fit_segments(matrix, 4, random_state=5)
    assert first.labels.tobytes() == second.labels.tobytes()
    assert first.distances.tobytes() == second.distances.tobytes()


def test_chunked_assignment_matches_predict() -> None:
    matrix, _ = _blobs()
    segmentation = fit_segments(matrix, 4, random_state=0)
    labels, distances = assign(segmentation.model, matrix, chunk_rows=333)
    assert np.array_equal(labels, segmentation.model.predict(matrix))
    expected = np.linalg.norm(matrix - segmentation.model.cluster_centers_[labels], axis=1)
    assert np.allclose(distances, expected, rtol=1e-4, atol=1e-4)


def test_sampled_fit_still_assigns_everyone() -> None:
    matrix, truth = _blobs(4000)
    segmentation = fit_segments(matrix, 4, random_state=0, fit_sample=1000)
    assert segmentation.labels.shape == (4000,)
    assert adjusted_rand_score(truth, segmentation.labels) > 0.95


def test_size_order_breaks_ties_by_label() -> None:
    assert list(size_order(np.array([0, 1, 1, 2, 2]), 3)) == [3, 1, 2]


def test_stratified_sample_keeps_small_segments() -> None:
    labels = np.array([1] * 9000 + [2] * 990 + [3] * 10)
    rows = stratified_sample(labels, 1000, random_state=0, floor=50)
    counts = np.bincount(labels[rows])
    assert counts[3] == 10 and counts[2] == 99 and counts[1] == 900
    assert np.all(np.diff(rows) > 0)


def test_projection_gives_coordinates_for_the_plotted_rows() -> None:
    matrix, _ = _blobs(600)
    labels = fit_segments(matrix, 4, random_state=0).labels
    rows, pca_xy, tsne_xy = project(matrix, labels, sample_size=300, random_state=0)
    assert pca_xy.shape == (len(rows), 2) and tsne_xy.shape == (len(rows), 2)
    assert np.isfinite(tsne_xy).all() and np.ptp(tsne_xy[:, 0]) > 0
