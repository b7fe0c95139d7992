import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segmentation.clustering import (
    assign,
    cluster_means,
    distances_to,
    fit_segments,
    match_segments,
    segments_from_probabilities,
    size_order,
)
from segmentation.projection import Projecting, project, stratified_sample
from segmentation.warm_worker import side_process


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


def test_maps_computed_in_a_side_process_are_the_threads_to_the_bit() -> None:
    """`make all` computes the 2-D maps in the process where K-Means chose its k: the same maps."""
    matrix, _ = _blobs(600)
    labels = fit_segments(matrix, 4, random_state=0).labels
    on_thread = Projecting(matrix, labels, 300, 0).result()
    with side_process() as pool:
        in_process = Projecting(matrix, labels, 300, 0, executor=pool).result()
    for here, there in zip(on_thread[:2], in_process[:2], strict=True):
        assert here.tobytes() == there.tobytes()


def test_segment_ids_survive_a_refit_on_changed_data() -> None:
    matrix, _ = _blobs(4000)
    first = fit_segments(matrix, 4, random_state=0)
    previous = {int(s): first.centres[np.flatnonzero(first.segment_ids == s)[0]] for s in first.segment_ids}
    rng = np.random.default_rng(1)
    grown = np.vstack([matrix, matrix[rng.choice(len(matrix), 200)] + rng.normal(0, 0.1, (200, matrix.shape[1]))])
    second = fit_segments(grown.astype(np.float32), 4, random_state=9, previous_centres=previous, next_id=5)
    assert np.array_equal(second.labels[: len(matrix)], first.labels)
    assert set(second.status.values()) == {"kept"} and second.vanished == []


def test_new_and_vanished_segments_are_reported() -> None:
    centres = np.array([[0.0, 0.0], [10.0, 10.0]])
    previous = {1: np.array([0.1, 0.0]), 2: np.array([-10.0, 5.0])}
    ids, status, vanished = match_segments(centres, np.array([5, 3]), previous, max_shift=1.0, next_id=4)
    assert list(ids) == [1, 4]
    assert status == {1: "kept", 4: "new"} and vanished == [2]


@pytest.mark.parametrize("algorithm", ["minibatch", "kprototypes"])
def test_other_algorithms_find_the_blobs(algorithm: str) -> None:
    rng = np.random.default_rng(0)
    numeric, truth = make_blobs(n_samples=6000, centers=3, n_features=3, cluster_std=0.6, random_state=4)
    colour = np.eye(3, dtype=np.float32)[(truth + (rng.random(6000) < 0.1)) % 3]  # one-hot, mostly by blob
    matrix = np.hstack([numeric, colour]).astype(np.float32)
    names = ["a", "b", "c", "colour_red", "colour_green", "colour_blue"]
    segmentation = fit_segments(
        matrix, 3, random_state=0, algorithm=algorithm, feature_names=names, categorical=("colour",)
    )
    assert adjusted_rand_score(truth, segmentation.labels) > 0.9
    again = fit_segments(matrix, 3, random_state=0, algorithm=algorithm, feature_names=names, categorical=("colour",))
    assert np.array_equal(again.labels, segmentation.labels)


def test_segments_from_probabilities_take_the_most_probable_class() -> None:
    matrix, truth = _blobs(800)
    rng = np.random.default_rng(0)
    probabilities = np.full((800, 4), 0.05, dtype=np.float32)
    probabilities[np.arange(800), truth] = 0.85
    probabilities[:10] = rng.dirichlet(np.ones(4), size=10).astype(np.float32)
    segmentation = segments_from_probabilities("model", matrix, probabilities)
    labels = probabilities.argmax(axis=1)
    assert adjusted_rand_score(labels, segmentation.labels) == 1.0
    assert np.allclose(segmentation.probabilities, probabilities.max(axis=1))
    centres = segmentation.centres[labels]
    assert np.allclose(segmentation.distances, np.linalg.norm(matrix - centres, axis=1), atol=1e-4)
    assert list(np.bincount(segmentation.labels)[1:]) == sorted(np.bincount(labels), reverse=True)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 10_000])
def test_centres_and_distances_are_the_same_numbers_whatever_the_block_size(chunk_rows: int) -> None:
    """Bit for bit what one weighted bincount per column and `np.linalg.norm` give (labels and
    distances written to the warehouse must not move when the scan's blocks do)."""
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((5_003, 9)).astype(np.float32) * rng.uniform(0.1, 1e3, size=9).astype(np.float32)
    labels = rng.choice(4, size=5_003, p=[0.6, 0.3, 0.1, 0.0]).astype(np.int32)
    expected = np.column_stack([np.bincount(labels, weights=matrix[:, j], minlength=4) for j in range(9)])
    expected /= np.maximum(np.bincount(labels, minlength=4), 1)[:, None]
    centres = cluster_means(matrix, labels, 4, chunk_rows=chunk_rows)
    assert np.array_equal(centres, expected)
    norms = np.linalg.norm(matrix.astype(np.float64) - expected[labels], axis=1).astype(np.float32)
    assert np.array_equal(distances_to(matrix, centres, labels, chunk_rows=chunk_rows), norms)
