import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from segmentation.contract import FeatureContract
from segmentation.errors import UserError
from segmentation.features import prepare_features, transform

CONTRACT = FeatureContract(
    relation="marts.customer_features",
    id_column="customer_id",
    numeric=("age",),
    ordinal=("level",),
    categorical=("job", "flag"),
)


def _table(n: int = 400) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "customer_id": [str(i) for i in range(n)],
            "age": rng.integers(18, 90, n),
            "level": rng.integers(0, 3, n),
            "job": rng.choice(["Artist", "Lawyer", "Doctor"], n),
            "flag": rng.random(n) < 0.5,
        }
    )


def test_numeric_scaled_and_categoricals_one_hot() -> None:
    preprocessor, matrix = prepare_features(_table(), CONTRACT, random_state=0)
    names = list(preprocessor.get_feature_names_out())
    assert names == ["age", "level", "job_Artist", "job_Doctor", "job_Lawyer", "flag_True"]
    assert matrix.dtype == np.float32
    assert abs(matrix[:, 0].mean()) < 1e-5 and abs(matrix[:, 0].std() - 1) < 1e-3
    assert set(np.unique(matrix[:, 2:])) <= {0.0, 1.0}
    assert np.all(matrix[:, 2:5].sum(axis=1) == 1)


def test_balanced_weighting_gives_each_variable_the_weight_of_one_numeric() -> None:
    table = _table(4000)
    _, plain = prepare_features(table, CONTRACT, random_state=0)
    _, balanced = prepare_features(table, CONTRACT, random_state=0, weighting="balanced")
    assert np.allclose(balanced[:, :2], plain[:, :2])  # numbers untouched
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4000, 20000), rng.integers(0, 4000, 20000)
    for block in (slice(0, 1), slice(2, 5), slice(5, 6)):  # age, job (one-hot), flag (0/1)
        spread = np.mean(np.sum((balanced[a, block] - balanced[b, block]) ** 2, axis=1))
        assert spread == pytest.approx(2.0, rel=0.1)
    job_spread = np.mean(np.sum((plain[a, 2:5] - plain[b, 2:5]) ** 2, axis=1))
    assert job_spread < 1.5  # unweighted, three even levels weigh 2·(1 − 1/3)


def test_centres_round_trip_through_original_units() -> None:
    from segmentation.features import centres_to_units, units_to_encoded

    preprocessor, matrix = prepare_features(_table(), CONTRACT, random_state=0, weighting="balanced")
    centre = matrix[:50].mean(axis=0)
    units = centres_to_units(preprocessor, centre[None, :])[0]
    names = list(preprocessor.get_feature_names_out())
    table = _table()
    assert units[names.index("age")] == pytest.approx(np.mean(table.column("age").to_numpy()[:50]), rel=1e-4)
    assert 0 <= units[names.index("job_Lawyer")] <= 1
    assert np.allclose(units_to_encoded(preprocessor, dict(zip(names, units, strict=True))), centre, atol=1e-5)


def test_constant_features_are_dropped_with_a_note() -> None:
    from segmentation.features import drop_constant_features

    table = _table().set_column(4, "flag", pa.array([True] * 400))
    reduced, dropped = drop_constant_features(table, CONTRACT)
    assert dropped == ["flag"] and reduced.categorical == ("job",)
    flat = pa.table(
        {"customer_id": ["a", "b"], "age": [1, 1], "level": [0, 0], "job": ["x", "x"], "flag": [True, True]}
    )
    with pytest.raises(UserError, match="nothing to cluster on"):
        drop_constant_features(flat, CONTRACT)


def test_chunked_transform_matches_a_single_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import segmentation.features as features

    preprocessor, matrix = prepare_features(_table(), CONTRACT, random_state=0)
    monkeypatch.setattr(features, "CHUNK_ROWS", 37)
    assert np.array_equal(transform(preprocessor, _table(), CONTRACT), matrix)


def test_levels_absent_from_the_fit_sample_are_still_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    import segmentation.features as features

    table = _table(1000)
    rare = pa.table({**{c: table.column(c) for c in table.column_names}})
    jobs = table.column("job").to_pylist()
    jobs[-1] = "Pilot"
    rare = rare.set_column(rare.column_names.index("job"), "job", pa.array(jobs))
    monkeypatch.setattr(features, "FIT_SAMPLE_ROWS", 100)
    preprocessor, matrix = prepare_features(rare, CONTRACT, random_state=0)
    assert "job_Pilot" in list(preprocessor.get_feature_names_out())
    assert matrix[-1, list(preprocessor.get_feature_names_out()).index("job_Pilot")] == 1.0


def test_missing_values_are_refused_with_a_clear_message() -> None:
    table = _table().set_column(1, "age", pa.array([None] * 400, pa.int64()))
    with pytest.raises(UserError, match="age has 400 missing values"):
        prepare_features(table, CONTRACT, random_state=0)


@pytest.mark.parametrize("weighting", ["none", "balanced"])
def test_arrow_transform_equals_the_column_transformer(weighting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow-native encoding is scikit-learn's, value for value, unseen levels and NULLs included."""
    from segmentation.features import _to_frame

    monkeypatch.setattr("segmentation.features.CHUNK_ROWS", 97)  # several chunks, a ragged last one
    preprocessor, matrix = prepare_features(_table(1000), CONTRACT, random_state=0, weighting=weighting)
    assert np.array_equal(matrix, preprocessor.transform(_to_frame(_table(1000), CONTRACT)).astype(np.float32))
    rng = np.random.default_rng(5)
    new = pa.table(
        {
            "customer_id": [str(i) for i in range(300)],
            "age": rng.integers(18, 90, 300),
            "level": rng.integers(0, 3, 300),
            "job": pa.array([["Artist", "Astronaut", None][i % 3] for i in range(300)]),  # unseen level, missing
            "flag": pa.array([[True, False, None][i % 3] for i in range(300)]),
        }
    )
    expected = preprocessor.transform(_to_frame(new, CONTRACT)).astype(np.float32)
    assert np.array_equal(transform(preprocessor, new, CONTRACT), expected)


@pytest.mark.parametrize(
    "values",
    [
        pa.chunked_array([[1.0, float("nan")]]),
        pa.chunked_array([[float("nan"), float("nan")]]),
        pa.chunked_array([[None, None]], pa.int64()),
        pa.chunked_array([["a", "a", None]]),
        pa.chunked_array([["a"], ["b"]]),
        pa.chunked_array([[True, True]]),
        pa.chunked_array([[True, False]]),
        pa.chunked_array([[3, 3], [3]]),
        pa.chunked_array([[1.0, 2.0, float("nan")]]),
    ],
)
def test_a_single_value_is_found_as_count_distinct_finds_it(values: pa.ChunkedArray) -> None:
    """min/max settles most columns without hashing; the answer must stay count_distinct's."""
    from segmentation.features import _single_valued

    assert _single_valued(values) == (pc.count_distinct(values).as_py() <= 1)
