import numpy as np
import pyarrow as pa
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


def test_categorical_weight_scales_the_one_hot_block() -> None:
    _, plain = prepare_features(_table(), CONTRACT, random_state=0)
    _, weighted = prepare_features(_table(), CONTRACT, random_state=0, categorical_weight=0.5)
    assert np.allclose(weighted[:, 2:], plain[:, 2:] * 0.5)
    assert np.allclose(weighted[:, :2], plain[:, :2])


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
