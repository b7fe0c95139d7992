import os

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from segmentation.evidence import adjusted_rand, bootstrap_stability, find_knee, sample_rows, silhouette_from_distances
from segmentation.selection import SelectionSettings, choose_k, evaluate_encodings, evaluate_k


def test_knee_of_a_sharp_elbow() -> None:
    ks = np.arange(2, 11)
    inertia = np.array([100, 50, 20, 18, 16, 15, 14, 13, 12], dtype=float)
    assert find_knee(ks, inertia) == 4


def test_knee_of_a_flat_curve_is_the_first_k() -> None:
    assert find_knee(np.arange(2, 6), np.ones(4)) == 2


def test_elbow_finds_the_planted_number_of_blobs() -> None:
    matrix, _ = make_blobs(n_samples=3000, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    result = evaluate_k(matrix.astype(np.float32), SelectionSettings(silhouette_sample=1000), random_state=0)
    assert result.knee == 4
    assert result.chosen == 4 and result.rule == "elbow_stable"
    assert result.ks == tuple(range(2, 11))
    assert np.argmax(result.silhouette) == result.ks.index(4)
    assert np.argmax(result.calinski_harabasz) == result.ks.index(4)
    assert np.argmin(result.davies_bouldin) == result.ks.index(4)
    assert result.measure("stability", 4) > 0.95
    assert all(a > b for a, b in zip(result.inertia, result.inertia[1:], strict=False))


def test_requested_k_overrides_the_elbow() -> None:
    matrix, _ = make_blobs(n_samples=500, centers=4, n_features=3, random_state=3)
    result = evaluate_k(matrix, SelectionSettings(k_max=6), random_state=0, requested_k=6)
    assert result.chosen == 6 and result.rule == "user" and result.knee == 4


def test_samples_are_reproducible_and_bounded() -> None:
    first = sample_rows(100_000, 1000, random_state=7)
    assert np.array_equal(first, sample_rows(100_000, 1000, random_state=7))
    assert len(first) == 1000 and len(np.unique(first)) == 1000
    assert np.array_equal(sample_rows(10, 1000, random_state=7), np.arange(10))


def test_too_few_rows_is_refused() -> None:
    with pytest.raises(ValueError):
        evaluate_k(np.zeros((2, 2)), SelectionSettings(), random_state=0)


def test_stability_separates_real_from_arbitrary_clusters() -> None:
    blobs, _ = make_blobs(n_samples=1500, centers=3, n_features=4, cluster_std=0.5, random_state=2)
    noise = np.random.default_rng(0).uniform(size=(1500, 4))
    assert bootstrap_stability(blobs, 3, random_state=0, bootstraps=4) > 0.95
    assert bootstrap_stability(noise, 7, random_state=0, bootstraps=4) < 0.9


@pytest.mark.parametrize(
    ("knee", "stability", "requested", "expected"),
    [
        (4, (0.9, 0.9, 0.95, 0.5), None, (4, "elbow_stable")),
        (4, (0.9, 0.85, 0.5, 0.95), None, (5, "stable_near_elbow")),
        (4, (0.9, 0.5, 0.5, 0.5), None, (2, "best_silhouette_stable")),
        (4, (0.1, 0.1, 0.1, 0.1), None, (4, "elbow")),
        (4, (0.9, 0.9, 0.9, 0.9), 5, (5, "user")),
    ],
)
def test_choice_rule(knee: int, stability: tuple, requested: int | None, expected: tuple) -> None:
    ks = (2, 3, 4, 5)
    silhouette = (0.3, 0.2, 0.25, 0.1)
    assert choose_k(ks, knee, silhouette, stability, 0.8, requested) == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_from_distances_matches_scikit_learn(seed: int) -> None:
    from sklearn.metrics import pairwise_distances, silhouette_score

    rng = np.random.default_rng(seed)
    points = rng.normal(size=(400, 6)).astype(np.float32)
    labels = rng.integers(0, 5, size=400)
    labels[0] = 9  # a cluster of one point scores 0, as in scikit-learn
    distances = pairwise_distances(points)
    expected = silhouette_score(distances, labels, metric="precomputed")
    assert silhouette_from_distances(distances, labels) == pytest.approx(expected, abs=1e-5)
    assert np.isnan(silhouette_from_distances(distances, np.zeros(400, dtype=int)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_adjusted_rand_is_scikit_learns_to_the_bit(seed: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    first = rng.integers(0, 1 + seed * 3, size=500)
    noisy = np.where(rng.random(500) < 0.7, first, rng.integers(0, 6, size=500))
    for second in (noisy, first, np.zeros(500, dtype=int)):
        assert adjusted_rand(first, second) == adjusted_rand_score(first, second)


def test_picking_an_encoding_first_measures_less_and_changes_nothing() -> None:
    blobs, _ = make_blobs(n_samples=1500, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    noise = np.random.default_rng(0).normal(size=(1500, 6))
    matrices = {"blobs": blobs.astype(np.float32), "noise": noise.astype(np.float32)}
    settings = SelectionSettings(k_max=7, silhouette_sample=500, bootstraps=3)
    full = evaluate_encodings(matrices, settings, random_state=0)
    lazy = evaluate_encodings(matrices, settings, random_state=0, pick=lambda results: "noise")
    assert lazy["noise"] == full["noise"] and not np.isnan(lazy["noise"].stability).any()
    for name in matrices:
        assert (lazy[name].chosen, lazy[name].rule) == (full[name].chosen, full[name].rule)
        assert lazy[name].measure("stability", lazy[name].chosen) == full[name].measure("stability", full[name].chosen)
    # the blobs' knee is stable: the rule needed no other k's stability
    assert lazy["blobs"].rule == "elbow_stable"
    assert [k for k, value in zip(lazy["blobs"].ks, lazy["blobs"].stability, strict=True) if not np.isnan(value)] == [4]


def test_a_weighting_outranked_by_the_others_rule_is_measured_no_further() -> None:
    """With a pick that prefers the stronger rule, an encoding whose knee is unstable stops when the
    other's knee is stable: the kept encoding's result is the full evaluation's, to the bit."""
    from segmentation.pipeline import pick_weighting

    blobs, _ = make_blobs(n_samples=1500, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    noise = np.random.default_rng(0).normal(size=(1500, 6))
    matrices = {"none": noise.astype(np.float32), "balanced": blobs.astype(np.float32)}
    settings = SelectionSettings(k_max=7, silhouette_sample=500, bootstraps=3)
    full = evaluate_encodings(matrices, settings, random_state=0)
    lazy = evaluate_encodings(matrices, settings, random_state=0, pick=pick_weighting)
    assert full["balanced"].rule == "elbow_stable" and full["none"].rule != "elbow_stable"
    assert pick_weighting(lazy) == pick_weighting(full) == "balanced"
    assert lazy["balanced"] == full["balanced"]
    outranked = lazy["none"]
    assert outranked.rule == "outranked" and outranked.chosen == outranked.knee == full["none"].knee
    measured = [k for k, value in zip(outranked.ks, outranked.stability, strict=True) if not np.isnan(value)]
    assert measured == [outranked.knee]
    assert outranked.measure("stability", outranked.knee) == full["none"].measure("stability", full["none"].knee)


def test_k_chosen_in_a_side_process_is_the_same_to_the_bit() -> None:
    """`make all` has K-Means choose its k in a process forked beside the latent class model's:
    every measure, the choice and the fitted model are those of the same choice in this process."""
    from segmentation.pipeline import choose_kmeans_k
    from segmentation.warm_worker import side_process

    blobs, _ = make_blobs(n_samples=1500, centers=4, n_features=6, cluster_std=0.6, random_state=3)
    noise = np.random.default_rng(0).normal(size=(1500, 6))
    matrices = {"none": noise.astype(np.float32), "balanced": blobs.astype(np.float32)}
    settings = SelectionSettings(k_max=7, silhouette_sample=500, bootstraps=3)
    here = choose_kmeans_k(matrices, settings, 0, None)
    with side_process() as pool:
        there = pool.submit(choose_kmeans_k, matrices, settings, 0, None).result()
        assert pool.submit(os.getpid).result() != os.getpid()
    assert repr(there) == repr(here)  # every measure to the bit (float reprs round-trip; NaN where not measured)
    for name in matrices:
        assert there[name].model.cluster_centers_.tobytes() == here[name].model.cluster_centers_.tobytes()
