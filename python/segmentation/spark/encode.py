"""The K-Means encoding as Spark columns, and the small helpers both Spark fits share.

scikit-learn's fitted preprocessor (means, scales, levels, weights) is applied by Spark as
column expressions, so both engines place a customer at the same point of the encoded
space: where K-Means finds its centres, and where every run's centres are matched.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..contract import FeatureContract
from ..features import _blocks


def encoded_columns(preprocessor, contract: FeatureContract) -> list:
    """The preprocessor's output as Spark columns, in its order: features.transform, column for column."""
    from pyspark.sql import functions as F

    columns = []
    for name, _, weight in _blocks(preprocessor):
        fitted = preprocessor.named_transformers_[name]
        if name == "scaled":
            for position, column in enumerate(fitted.feature_names_in_):
                value = F.col(str(column)).cast("double")
                if column in contract.skewed:
                    value = F.signum(value) * F.log1p(F.abs(value))
                mean, scale = float(fitted.mean_[position]), float(fitted.scale_[position])
                columns.append((value - F.lit(mean)) / F.lit(scale) * F.lit(weight))
            continue
        (column,) = fitted.feature_names_in_
        levels = fitted.categories_[0]
        dropped = fitted.drop_idx_[0] if fitted.drop_idx_ is not None else None
        for index, level in enumerate(levels):
            if index != dropped:
                level_value = level.item() if hasattr(level, "item") else level
                columns.append(F.when(F.col(str(column)) == F.lit(level_value), F.lit(weight)).otherwise(F.lit(0.0)))
    return columns


def encoded_frame(frame, preprocessor, contract: FeatureContract, *keep: str):
    """`frame`'s id (and `keep` columns) beside its encoded features, named _x0, _x1, …"""
    from pyspark.sql import functions as F

    return frame.select(
        F.col(contract.id_column),
        *[F.col(c) for c in keep],
        *[c.alias(f"_x{j}") for j, c in enumerate(encoded_columns(preprocessor, contract))],
    )


def centres_by_label(encoded, k: int, dimensions: int) -> tuple[np.ndarray, np.ndarray]:
    """(k, d) mean encoded vector and size of each model label (clustering.cluster_means, on Spark)."""
    from pyspark.sql import functions as F

    rows = encoded.groupBy("label").agg(F.count("*").alias("_n"), *[F.avg(f"_x{j}") for j in range(dimensions)])
    centres, sizes = np.zeros((k, dimensions)), np.zeros(k, dtype=np.int64)
    for row in rows.collect():
        sizes[row["label"]] = row["_n"]
        centres[row["label"]] = [float(v) for v in list(row)[2:]]
    return centres, sizes


def distance_to_centre(centres: np.ndarray, dimensions: int):
    """Euclidean distance of each row's _x columns to the centre of its `label`, as a Spark column."""
    from pyspark.sql import functions as F

    total = F.lit(0.0)
    for j in range(dimensions):
        centre = F.element_at(F.array(*[F.lit(float(v)) for v in centres[:, j]]), F.col("label") + 1)
        total = total + (F.col(f"_x{j}") - centre) * (F.col(f"_x{j}") - centre)
    return F.sqrt(total)


def collect_sorted(frame, id_column: str) -> pa.Table:
    """A Spark frame on the driver in id order: the order the DuckDB engine reads the mart in."""
    return frame.orderBy(id_column).toArrow()
