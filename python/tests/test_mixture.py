"""The latent class model on small planted mixed data: recovery, probabilities, k, determinism."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation.contract import FeatureContract
from segmentation.mixture import LatentClassModel, MixedData, MixedPreparation, prepare_mixed
from segmentation.mixture_selection import choose_mixture_k, evaluate_mixture_k
from segmentation.selection import SelectionSettings


@dataclass(frozen=True)
class SkewedContract(FeatureContract):
    """The contract with the `skewed` roles the feature work adds (read with getattr)."""

    skewed: tuple[str, ...] = ()


PLAIN = FeatureContract("t", "id", ("amount", "count"), ("level",), ("colour", "flag"))
CONTRACT = SkewedContract("t", "id", ("amount", "count"), ("level",), ("colour", "flag"), skewed=("amount",))


def planted(n: int = 3000, seed: int = 0) -> tuple[pa.Table, np.ndarray]:
    """Three classes that differ by a skewed amount, a colour and a level; `flag` and `count` carry nothing."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    amount = np.exp(rng.normal(np.array([2.0, 4.0, 6.0])[truth], 0.5))
    colour_probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    colour = (rng.random(n)[:, None] > np.cumsum(colour_probs[truth], axis=1)).sum(axis=1)
    level = np.minimum(truth + (rng.random(n) < 0.2), 2)
    table = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "amount": amount,
            "count": rng.integers(0, 4, size=n),
            "level": level,
            "colour": np.array(["red", "green", "blue"])[colour],
            "flag": rng.random(n) < 0.5,  # a yes/no with no structure
        }
    )
    return table, truth


def test_preparation_models_each_column_on_its_own_terms() -> None:
    table, _ = planted(500)
    preparation, data = prepare_mixed(table, CONTRACT)
    assert preparation.gaussian_ == ("amount",)  # many values: a Gaussian
    assert set(preparation.categorical_) == {"count", "level", "colour", "flag"}  # few whole values: levels
    assert data.numeric.shape == (500, 1) and np.allclose(data.numeric.mean(axis=0), 0, atol=1e-9)
    assert data.codes.shape == (500, 4) and data.codes.min() >= 0
    new = table.set_column(table.schema.get_field_index("colour"), "colour", pa.array(["purple"] * 500))
    flags, counts = preparation.unseen(new)
    assert flags.all() and counts == {"colour": 500}
    assert (preparation.transform(new).codes[:, preparation.categorical_.index("colour")] == -1).all()


def test_fit_transform_reuses_what_the_fit_read_and_gives_transform_s_arrays() -> None:
    """The fit reads each number once and keeps its codes; a later `transform` reads the table anew: same arrays."""
    table, _ = planted(700)
    table = table.set_column(3, "level", pa.array(np.r_[np.full(699, 1), 40]))  # a rare value clipped into range
    preparation = MixedPreparation(CONTRACT)
    fitted = preparation.fit_transform(table)
    again = preparation.transform(table)
    assert np.array_equal(fitted.numeric, again.numeric) and np.array_equal(fitted.codes, again.codes)
    assert fitted.codes.dtype == np.int32 and fitted.codes.flags["C_CONTIGUOUS"]
    assert fitted.levels == again.levels


def test_skewed_columns_are_logged_before_scaling() -> None:
    table, _ = planted(500)
    logged = MixedPreparation(CONTRACT).fit(table).transform(table).numeric[:, 0]
    expected = np.log1p(table.column("amount").to_numpy())
    assert np.allclose(logged, (expected - expected.mean()) / expected.std())
    raw = MixedPreparation(PLAIN).fit(table).transform(table).numeric[:, 0]  # a contract without `skewed`
    amount = table.column("amount").to_numpy()
    assert np.allclose(raw, (amount - amount.mean()) / amount.std())


def test_recovers_planted_classes_with_probabilities() -> None:
    table, truth = planted()
    _, data = prepare_mixed(table, CONTRACT)
    model = LatentClassModel(3, n_init=4, random_state=0).fit(data)
    proba = model.predict_proba(data)
    assert proba.shape == (3000, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert adjusted_rand_score(truth, proba.argmax(axis=1)) > 0.8
    assert np.array_equal(model.predict(data), proba.argmax(axis=1))
    assert sorted(np.round(model.weights_, 1)) == [0.2, 0.3, 0.5]
    chunked = model.predict_proba(data, chunk_rows=700)
    assert np.array_equal(chunked, proba)


def test_same_seed_same_model_byte_for_byte() -> None:
    table, _ = planted(1500)
    _, data = prepare_mixed(table, CONTRACT)
    first = LatentClassModel(3, n_init=3, random_state=7).fit(data).predict_proba(data)
    second = LatentClassModel(3, n_init=3, random_state=7).fit(data).predict_proba(data)
    assert first.tobytes() == second.tobytes()


def test_information_criteria_prefer_the_planted_k() -> None:
    table, _ = planted()
    _, data = prepare_mixed(table, CONTRACT)
    fits = {k: LatentClassModel(k, n_init=3, random_state=0).fit(data) for k in (2, 3, 4)}
    assert min(fits, key=lambda k: fits[k].bic_) == 3
    assert min(fits, key=lambda k: fits[k].icl_) == 3
    assert all(fits[k].icl_ >= fits[k].bic_ for k in fits)  # ICL adds the classification entropy


def test_classification_bic_prefers_the_true_partition_over_a_random_one() -> None:
    table, truth = planted(1500)
    _, data = prepare_mixed(table, CONTRACT)
    model = LatentClassModel(3, n_init=2, random_state=0).fit(data)
    shuffled = np.random.default_rng(0).permutation(truth)
    assert model.classification_bic(data, truth) < model.classification_bic(data, shuffled)


def test_mixture_k_is_the_same_whatever_the_range() -> None:
    table, _ = planted(2000)
    _, data = prepare_mixed(table, CONTRACT)
    chosen = set()
    for k_max in (5, 7):
        result = evaluate_mixture_k(data, SelectionSettings(k_max=k_max, bootstraps=3), random_state=0, n_init=3)
        chosen.add((result.chosen, result.rule))
        assert result.ks == tuple(range(2, k_max + 1))
        assert result.model.n_components == result.chosen
    assert chosen == {(3, "bic_stable")}


def test_requested_k_is_used() -> None:
    table, _ = planted(800)
    _, data = prepare_mixed(table, CONTRACT)
    result = evaluate_mixture_k(data, SelectionSettings(k_max=4, bootstraps=2), random_state=0, requested_k=4, n_init=2)
    assert result.chosen == 4 and result.rule == "user" and np.isnan(result.stability).all()


@pytest.mark.parametrize(
    ("stability", "shares", "expected"),
    [
        ((0.9, 0.9, 0.9), (0.3, 0.2, 0.1), (3, "icl_stable")),  # lowest criterion, stable and sized
        ((0.9, 0.5, 0.9), (0.3, 0.2, 0.1), (4, "icl_stable")),  # k=3 unstable: the next lowest
        ((0.9, 0.9, 0.9), (0.3, 0.01, 0.01), (2, "icl_stable")),  # tiny segments are never chosen on evidence
        ((0.1, 0.1, 0.1), (0.3, 0.2, 0.1), (3, "icl_sized")),
    ],
)
def test_mixture_choice_rule(stability: tuple, shares: tuple, expected: tuple) -> None:
    ks, criterion = (2, 3, 4), (30.0, 10.0, 20.0)
    assert choose_mixture_k(ks, criterion, stability, shares, 0.8, 0.05, "icl") == expected


def test_too_few_rows_are_refused() -> None:
    data = MixedData(np.zeros((2, 1)), np.zeros((2, 1), np.int32), (1,))
    with pytest.raises(ValueError):
        LatentClassModel(3).fit(data)


def test_warm_start_refits_from_the_solution_on_more_rows() -> None:
    table, truth = planted(4000)
    _, data = prepare_mixed(table, CONTRACT)
    model = LatentClassModel(3, n_init=3, random_state=0).fit(data.take(np.arange(1000)))
    before = model.predict(data)
    model.set_params(warm_start=True).fit(data)
    assert model.n_rows_fitted_ == 4000
    assert adjusted_rand_score(before, model.predict(data)) > 0.9
    assert adjusted_rand_score(truth, model.predict(data)) > 0.8


def test_a_yes_no_column_does_not_split_what_the_numbers_structure() -> None:
    """A 200-row mall table: five groups in income × spending score, gender unrelated to them."""
    rng = np.random.default_rng(0)
    centres, sizes = np.array([[26, 20], [26, 79], [55, 50], [87, 17], [87, 82]]), [23, 22, 81, 35, 39]
    truth = np.repeat(np.arange(5), sizes)
    income_score = centres[truth] + rng.normal(0, [7, 8], size=(200, 2))
    table = pa.table(
        {
            "id": [str(i) for i in range(200)],
            "gender": rng.choice(["Male", "Female"], 200, p=[0.44, 0.56]),
            "age": np.where(np.isin(truth, [1, 4]), rng.normal(30, 5, 200), rng.normal(45, 12, 200)).round(),
            "income": income_score[:, 0].round(),
            "score": np.clip(income_score[:, 1].round(), 1, 99),
        }
    )
    _, data = prepare_mixed(table, FeatureContract("m", "id", ("age", "income", "score"), (), ("gender",)))
    result = evaluate_mixture_k(data, SelectionSettings(bootstraps=3), random_state=0, n_init=4)
    labels = result.model.predict(data)
    assert result.chosen == 5 and adjusted_rand_score(truth, labels) > 0.9
    assert abs(adjusted_rand_score(table.column("gender").to_pylist(), labels)) < 0.05


def test_fits_of_several_k_on_one_sample_give_the_models_of_fits_on_their_own() -> None:
    """k-means++ seeds, the design and the start space are kept with the data and shared across k:
    a fit after larger and smaller k on the same rows is the fit on fresh rows, to the bit."""
    table, _ = planted(1500, seed=4)
    _, data = prepare_mixed(table, CONTRACT)
    shared = data.take(np.arange(data.n_rows))
    for k in (7, 2, 6, 3):
        LatentClassModel(k, n_init=4, random_state=5).fit(shared)
    for k in (3, 5):
        alone = LatentClassModel(k, n_init=4, random_state=5).fit(data.take(np.arange(data.n_rows)))
        after = LatentClassModel(k, n_init=4, random_state=5).fit(shared)
        assert after.bic_ == alone.bic_
        assert np.array_equal(after.means_, alone.means_) and np.array_equal(after.weights_, alone.weights_)
        assert np.array_equal(after.predict_proba(data), alone.predict_proba(data))


def test_accelerated_em_reaches_plain_em_likelihood_in_fewer_steps() -> None:
    """SQUAREM stops by the plain EM step's gain: at least plain EM's likelihood, in a fraction of the E-steps."""
    table, _ = planted(3000, seed=2)
    _, data = prepare_mixed(table, CONTRACT)
    design = LatentClassModel._blocks(data)
    results, e_steps = {}, {}
    for name in ("plain", "fast"):
        model = LatentClassModel(5, random_state=1, tol=1e-9)  # a start from which plain EM creeps
        model.levels_, model.n_features_numeric_ = data.levels, data.numeric.shape[1]
        start = model._start(data, 7)
        counted = {"n": 0}
        joint_log = model._joint_log

        def counting(*args, counted=counted, joint_log=joint_log, **kwargs):
            counted["n"] += 1
            return joint_log(*args, **kwargs)

        model._joint_log = counting
        run = model._iterate if name == "plain" else model._converge
        results[name], e_steps[name] = run(design, data.levels, start, 3000), counted["n"]
    (plain_log, _, plain_done), (fast_log, _, fast_done) = results["plain"], results["fast"]
    assert plain_done and fast_done
    assert fast_log >= plain_log - 1e-5  # the same optimum (a BIC unit is 1.7e-4 per customer here)
    assert e_steps["fast"] < e_steps["plain"] / 2, e_steps
