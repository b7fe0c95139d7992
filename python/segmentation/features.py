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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .contract import FeatureContract
from .errors import UserError

log = logging.getLogger(__name__)

CHUNK_ROWS = 500_000
FIT_SAMPLE_ROWS = 200_000


def category_levels(table: pa.Table, columns: tuple[str, ...]) -> dict[str, list]:
    """Sorted distinct values of each categorical column over the whole table."""
    levels: dict[str, list] = {}
    for column in columns:
        values = pc.unique(table.column(column)).drop_null().to_pylist()
        levels[column] = sorted(values, key=lambda value: (str(type(value)), value))
    return levels


def _to_frame(table: pa.Table, contract: FeatureContract) -> pd.DataFrame:
    """A pandas view of the feature columns with plain NumPy dtypes sklearn expects."""
    data: dict[str, np.ndarray] = {}
    for column in contract.numeric + contract.ordinal:
        data[column] = table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
    for column in contract.categorical:
        data[column] = np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=object)
    return pd.DataFrame(data)


def build_preprocessor(
    contract: FeatureContract, levels: dict[str, list], categorical_weight: float = 1.0
) -> ColumnTransformer:
    """Scale numeric/ordinal features to unit variance; one-hot encode categoricals.

    `categorical_weight` multiplies the one-hot block (through the transformer
    weights), the knob that keeps one-hot columns from dominating the distances.
    """
    transformers = []
    weights: dict[str, float] = {}
    scaled = list(contract.numeric + contract.ordinal)
    if scaled:
        transformers.append(("scaled", StandardScaler(), scaled))
        weights["scaled"] = 1.0
    if contract.categorical:
        encoder = OneHotEncoder(
            categories=[levels[column] for column in contract.categorical],
            drop="if_binary",
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
        transformers.append(("onehot", encoder, list(contract.categorical)))
        weights["onehot"] = categorical_weight
    return ColumnTransformer(transformers, transformer_weights=weights, verbose_feature_names_out=False)


def iter_chunks(table: pa.Table, rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def transform(preprocessor: ColumnTransformer, table: pa.Table, contract: FeatureContract) -> np.ndarray:
    """Encode the whole table into a float32 matrix, chunk by chunk (bounded memory)."""
    width = len(preprocessor.get_feature_names_out())
    matrix = np.empty((table.num_rows, width), dtype=np.float32)
    for start, chunk in zip(range(0, table.num_rows, CHUNK_ROWS), iter_chunks(table), strict=False):
        matrix[start : start + chunk.num_rows] = preprocessor.transform(_to_frame(chunk, contract))
    return matrix


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
    table: pa.Table, contract: FeatureContract, random_state: int, categorical_weight: float = 1.0
) -> tuple[ColumnTransformer, np.ndarray]:
    """Fit the preprocessor (on a sample when large) and encode every customer.

    Scaling statistics from a 200 000-row uniform sample differ from the full
    table's only in the third decimal, and fitting on it keeps this step flat in time.
    """
    check_features(table, contract)
    levels = category_levels(table, contract.categorical)
    preprocessor = build_preprocessor(contract, levels, categorical_weight)
    if table.num_rows > FIT_SAMPLE_ROWS:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(table.num_rows, size=FIT_SAMPLE_ROWS, replace=False))
        fit_table = table.take(pa.array(rows))
    else:
        fit_table = table
    preprocessor.fit(_to_frame(fit_table, contract))
    matrix = transform(preprocessor, table, contract)
    log.info("encoded %s customers × %d features (float32)", f"{matrix.shape[0]:,}", matrix.shape[1])
    return preprocessor, matrix
