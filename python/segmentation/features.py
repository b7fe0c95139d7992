"""Feature preparation from the roles the dbt contract declares.

A scikit-learn ColumnTransformer scales numeric and ordinal columns and one-hot
encodes categorical ones (booleans included). The categories are read from the
whole table up front and passed to the encoder, so the transformer can be fitted on
a sample and applied in chunks: the encoded matrix is float32, built chunk by chunk,
and no full-size pandas copy of the data is ever made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .contract import FeatureContract
from .errors import UserError

log = logging.getLogger(__name__)

WEIGHTINGS = ("none", "balanced")
CHUNK_ROWS = 1_000_000  # rows encoded at a time (see `transform`: few large blocks)
FIT_SAMPLE_ROWS = 200_000


def level_counts(table: pa.Table, columns: tuple[str, ...]) -> dict[str, pa.StructArray]:
    """Each categorical column's values and their counts: one hashing pass that levels and weights share."""
    return {column: pc.value_counts(table.column(column)) for column in columns}


def category_levels(
    table: pa.Table, columns: tuple[str, ...], counts: dict[str, pa.StructArray] | None = None
) -> dict[str, list]:
    """Sorted distinct values of each categorical column over the whole table."""
    counts = counts if counts is not None else level_counts(table, columns)
    levels: dict[str, list] = {}
    for column in columns:
        values = counts[column].field("values").drop_null().to_pylist()
        levels[column] = sorted(values, key=lambda value: (str(type(value)), value))
    return levels


def _to_frame(table: pa.Table, contract: FeatureContract) -> pd.DataFrame:
    """A pandas view of the feature columns with plain NumPy dtypes sklearn expects."""
    data: dict[str, np.ndarray] = {}
    for column in contract.numeric + contract.ordinal:
        data[column] = numeric_values(table.column(column), column, contract)
    for column in contract.categorical:
        data[column] = np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=object)
    return pd.DataFrame(data)


def balanced_weights(
    table: pa.Table, columns: tuple[str, ...], counts: dict[str, pa.StructArray] | None = None
) -> dict[str, float]:
    """Weight of each categorical variable so that it contributes like one numeric variable.

    Two random customers differ on a standardised numeric variable by 2 in expected
    squared distance. On a one-hot variable with level shares p, they differ by
    2·(1 − Σp²) (by 2·p·(1 − p) for a yes/no kept as one column); the weight brings
    that back to 2, so no variable dominates because of how it is encoded.
    """
    counted = counts if counts is not None else level_counts(table, columns)
    weights: dict[str, float] = {}
    for column in columns:
        tallies = counted[column].field("counts").to_numpy().astype(float)
        shares = tallies / tallies.sum()
        spread = 2.0 * shares[0] * shares[1] if len(shares) == 2 else 2.0 * (1.0 - float(np.sum(shares**2)))
        weights[column] = float(np.sqrt(2.0 / spread)) if spread > 0 else 1.0
    return weights


def build_preprocessor(
    contract: FeatureContract, levels: dict[str, list], categorical_weights: dict[str, float] | None = None
) -> ColumnTransformer:
    """Scale numeric/ordinal features to unit variance; one-hot encode each categorical.

    Each categorical variable has its own encoder so that its block can carry its own
    weight (ColumnTransformer's transformer_weights): the knob that keeps one-hot
    columns from dominating the distances.
    """
    transformers = []
    weights: dict[str, float] = {}
    scaled = list(contract.numeric + contract.ordinal)
    if scaled:
        transformers.append(("scaled", StandardScaler(), scaled))
        weights["scaled"] = 1.0
    for column in contract.categorical:
        encoder = OneHotEncoder(
            categories=[levels[column]],
            drop="if_binary",
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
        name = f"onehot_{column}"
        transformers.append((name, encoder, [column]))
        weights[name] = (categorical_weights or {}).get(column, 1.0)
    return ColumnTransformer(transformers, transformer_weights=weights, verbose_feature_names_out=False)


def iter_chunks(table: pa.Table, rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def transform(preprocessor: ColumnTransformer, table: pa.Table, contract: FeatureContract) -> np.ndarray:
    """Encode the whole table into a float32 matrix with the fitted preprocessor's parameters.

    Straight from Arrow, a block of rows at a time (every feature of a block, then the next
    block): numbers are scaled with the fitted means and scales, and each categorical column is
    looked up in its fitted levels (``pyarrow.compute.index_in``) and written as one-hot
    columns. Blocks are large on purpose: this runs on a thread beside the latent class model's
    choice of k, and every NumPy or Arrow call hands the GIL over and waits to get it back, so
    the number of calls, not the arithmetic, sets the time when both are busy. No pandas frame
    and no Python string object per row is made. The output is the ColumnTransformer's, column
    for column (``test_features`` checks it): dropped level of a yes/no, all zeros for a level
    the encoder never saw, block weights applied.
    """
    width = len(preprocessor.get_feature_names_out())
    scaled: list[tuple[str, int, float, float, float]] = []  # column, output column, mean, scale, weight
    onehot: list[tuple[str, np.ndarray, pa.Array, np.float32]] = []  # column, output of each level, levels, weight
    for name, columns, weight in _blocks(preprocessor):
        fitted = preprocessor.named_transformers_[name]
        if name == "scaled":
            for position, column in enumerate(fitted.feature_names_in_):
                scaled.append(
                    (column, columns.start + position, fitted.mean_[position], fitted.scale_[position], weight)
                )
            continue
        (column,) = fitted.feature_names_in_
        levels = fitted.categories_[0]
        dropped = fitted.drop_idx_[0] if fitted.drop_idx_ is not None else None
        # output column of each level (−1: the dropped level of a yes/no), then −1 for unseen values
        kept = [i for i in range(len(levels)) if i != dropped]
        output_of_level = np.full(len(levels) + 1, -1, dtype=np.int64)
        output_of_level[kept] = np.arange(len(kept)) + columns.start
        onehot.append(
            (column, output_of_level, pa.array(list(levels), type=table.column(column).type), np.float32(weight))
        )
    matrix = np.empty((table.num_rows, width), dtype=np.float32)
    for start in range(0, table.num_rows, CHUNK_ROWS):
        chunk = table.slice(start, CHUNK_ROWS)
        block = matrix[start : start + chunk.num_rows]
        block.fill(0.0)
        for column, target, mean, scale, weight in scaled:
            block[:, target] = (numeric_values(chunk.column(column), column, contract) - mean) / scale * weight
        for column, output_of_level, value_set, weight in onehot:
            index = pc.fill_null(pc.index_in(chunk.column(column), value_set=value_set), len(value_set))
            targets = output_of_level[index.to_numpy(zero_copy_only=False)]
            rows = np.flatnonzero(targets >= 0)
            block[rows, targets[rows]] = weight
    return matrix


def numeric_values(values: pa.ChunkedArray | pa.Array, column: str, contract: FeatureContract) -> np.ndarray:
    """A numeric feature as float64, on a log scale when declared skewed: sign(x)·log(1 + |x|).

    Amounts and counts have a few very large values; on their own scale K-Means would
    spend its segments on "one whale versus everyone". Fitting, encoding, centres and
    scoring all go through here, so they see the same transformed values.
    """
    array = values.to_numpy(zero_copy_only=False).astype(np.float64)
    if column in contract.skewed:
        return np.sign(array) * np.log1p(np.abs(array))
    return array


def check_features(table: pa.Table, contract: FeatureContract) -> None:
    """Refuse data the encoder cannot take: missing values or no rows."""
    if table.num_rows == 0:
        raise UserError(f"{contract.relation} has no customers: check the input file and the quarantine table.")
    for column in contract.features:
        nulls = table.column(column).null_count
        if nulls:
            raise UserError(
                f"{contract.relation}.{column} has {nulls} missing values; the mart must impute them (see dbt tests)."
            )


def prepare_features(
    table: pa.Table, contract: FeatureContract, random_state: int, weighting: str = "none"
) -> tuple[ColumnTransformer, np.ndarray]:
    """Fit the preprocessor (on a sample when large) and encode every customer."""
    preprocessor = fit_preprocessor(table, contract, random_state, weighting)
    matrix = transform(preprocessor, table, contract)
    log.info("encoded %s customers × %d features (float32)", f"{matrix.shape[0]:,}", matrix.shape[1])
    return preprocessor, matrix


def fit_preprocessor(
    table: pa.Table,
    contract: FeatureContract,
    random_state: int,
    weighting: str = "none",
    counts: dict[str, pa.StructArray] | None = None,
) -> ColumnTransformer:
    """Fit scaling and encoding: levels and weights from the whole table, scaling on a sample.

    Scaling statistics from a 200 000-row uniform sample differ from the full
    table's only in the third decimal, and fitting on it keeps this step flat in time.
    """
    check_features(table, contract)
    counts = counts if counts is not None else level_counts(table, contract.categorical)
    levels = category_levels(table, contract.categorical, counts)
    if weighting not in WEIGHTINGS:
        raise UserError(f"unknown categorical weighting {weighting!r}: use one of {', '.join(WEIGHTINGS)}.")
    weights = balanced_weights(table, contract.categorical, counts) if weighting == "balanced" else None
    preprocessor = build_preprocessor(contract, levels, weights)
    if table.num_rows > FIT_SAMPLE_ROWS:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(table.num_rows, size=FIT_SAMPLE_ROWS, replace=False))
        fit_table = table.take(pa.array(rows))
    else:
        fit_table = table
    return preprocessor.fit(_to_frame(fit_table, contract))


def fit_preprocessors(
    table: pa.Table, contract: FeatureContract, random_state: int, weightings: list[str] | tuple[str, ...]
) -> dict[str, ColumnTransformer]:
    """`fit_preprocessor` for each weighting, fitted once: the weightings differ only in the weights.

    Scaling and levels are learnt from the same sample whatever the weighting, so the
    others are copies of the first fit with their own categorical weights (what fitting
    each anew gives, for the price of one fit).
    """
    first, *others = weightings
    counts = level_counts(table, contract.categorical) if table.num_rows else None
    fitted = {first: fit_preprocessor(table, contract, random_state, first, counts)}
    for weighting in others:
        if weighting not in WEIGHTINGS:
            raise UserError(f"unknown categorical weighting {weighting!r}: use one of {', '.join(WEIGHTINGS)}.")
        weights = balanced_weights(table, contract.categorical, counts) if weighting == "balanced" else {}
        copy = deepcopy(fitted[first])
        copy.transformer_weights = {
            name: (weights.get(name.removeprefix("onehot_"), 1.0) if name.startswith("onehot_") else 1.0)
            for name in fitted[first].transformer_weights
        }
        fitted[weighting] = copy
    return fitted


def _blocks(preprocessor: ColumnTransformer) -> list[tuple[str, slice, float]]:
    """(transformer name, its columns in the output, its weight), in output order."""
    weights = preprocessor.transformer_weights or {}
    return [
        (name, preprocessor.output_indices_[name], float(weights.get(name, 1.0)))
        for name, _, _ in preprocessor.transformers_
        if name in preprocessor.output_indices_ and name != "remainder"
    ]


def centres_to_units(preprocessor: ColumnTransformer, centres: np.ndarray) -> np.ndarray:
    """Encoded centres → original units: means for numbers, level shares for categories.

    Stored this way, a run's centres can be brought into a later run's feature space
    (whose scaling and weights differ slightly) to match segments across runs.
    """
    units = np.asarray(centres, dtype=np.float64).copy()
    for name, columns, weight in _blocks(preprocessor):
        units[:, columns] /= weight if weight else 1.0
        if name == "scaled":
            scaler = preprocessor.named_transformers_["scaled"]
            units[:, columns] = units[:, columns] * scaler.scale_ + scaler.mean_
    return units


def units_to_encoded(preprocessor: ColumnTransformer, named_units: dict[str, float]) -> np.ndarray:
    """A centre in original units (by feature name) → this preprocessor's encoded space.

    Features the centre lacks (a level new in this run) count as 0.
    """
    names = [str(name) for name in preprocessor.get_feature_names_out()]
    vector = np.array([named_units.get(name, 0.0) for name in names], dtype=np.float64)
    for name, columns, weight in _blocks(preprocessor):
        if name == "scaled":
            scaler = preprocessor.named_transformers_["scaled"]
            vector[columns] = (vector[columns] - scaler.mean_) / scaler.scale_
        vector[columns] *= weight
    return vector


def drop_constant_features(table: pa.Table, contract: FeatureContract) -> tuple[FeatureContract, list[str]]:
    """Remove features with a single value (nothing to separate customers on).

    Returns the reduced contract and the dropped column names, for the report's note.
    """
    dropped = [column for column in contract.features if _single_valued(table.column(column))]
    return without_features(contract, dropped)


def _single_valued(values: pa.ChunkedArray) -> bool:
    """At most one distinct value (NULLs aside): a smallest below the largest settles it without hashing."""
    try:
        extremes = pc.min_max(values)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # a type with no order
        extremes = None
    if extremes is not None:
        low, high = extremes["min"].as_py(), extremes["max"].as_py()
        # (NaN is unequal to itself: such a column is left to count_distinct, which counts it once)
        if low is not None and high is not None and low == low and high == high and low != high:
            return False
    return pc.count_distinct(values).as_py() <= 1


def without_features(contract: FeatureContract, dropped: list[str]) -> tuple[FeatureContract, list[str]]:
    """The contract less the features with a single value (however they were counted); stops when none is left."""
    if not dropped:
        return contract, []
    reduced = replace(
        contract,
        numeric=tuple(c for c in contract.numeric if c not in dropped),
        ordinal=tuple(c for c in contract.ordinal if c not in dropped),
        categorical=tuple(c for c in contract.categorical if c not in dropped),
    )
    if not reduced.features:
        raise UserError(
            f"every feature of {contract.relation} has a single value ({', '.join(dropped)}): there is nothing "
            "to cluster on. Check that the input file is the customer export you meant."
        )
    log.warning("features with a single value, left out of the clustering: %s", ", ".join(dropped))
    return reduced, dropped
