"""The latent class model (ALGO=mixture, the default) on Spark: fitted on the driver, scored on the executors.

The same steps as model_choice.fit_mixture, on the same rows: the preparation, the choice
of k (on MIXTURE_SELECTION_SAMPLE customers), the final fit (on MIXTURE_FIT_SAMPLE) and the
comparison with K-Means all run on the driver, on the customers the DuckDB engine would
sample (the same positions in id order). Only scoring touches every customer: the fitted
preparation and model travel to the executors inside a `mapInArrow` closure, and each Arrow
batch is prepared and scored there. Centres and distances, in the K-Means encoding as on
DuckDB, are Spark aggregations.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..config import Settings
from ..contract import FeatureContract
from ..evidence import sample_rows
from ..features import transform
from ..mixed_data import COMMON_SHARE, common_range
from ..mixture import LatentClassModel, MixedPreparation
from ..mixture_selection import MixtureSelection
from ..model_choice import choose_k, compare_with_kmeans, refit_on_sample
from .encode import centres_by_label, collect_sorted, distance_to_centre, encoded_frame

log = logging.getLogger(__name__)


class SampledRows:
    """Rows at sorted `positions` of a table of `n_rows`, indexed by position in the whole table.

    What the DuckDB engine's sampling code (`len`, `take`, `[rows]`) asks of a full table,
    answered from the rows the driver holds; asking for any other row is a bug, and says so.
    """

    def __init__(self, n_rows: int, positions: np.ndarray, rows):
        self.n_rows, self.positions, self.rows = n_rows, np.asarray(positions), rows

    def __len__(self) -> int:
        return self.n_rows

    def take(self, wanted: np.ndarray):
        wanted = np.asarray(wanted)
        index = np.searchsorted(self.positions, wanted)
        if index.size and (index.max() >= len(self.positions) or not np.array_equal(self.positions[index], wanted)):
            raise IndexError("a row outside the driver's sample")
        return self.rows.take(pa.array(index)) if isinstance(self.rows, pa.Table) else self.rows[index]

    __getitem__ = take


def driver_positions(n_rows: int, settings: Settings, mixture: bool) -> np.ndarray:
    """Every position the driver needs: K-Means' selection sample, and the mixture's two samples."""
    sizes = [settings.selection_sample] + ([settings.mixture_selection_sample, settings.mixture_fit_sample] * mixture)
    return np.unique(np.concatenate([sample_rows(n_rows, size, settings.random_state) for size in sizes]))


def fit_preparation(
    driver: pa.Table, frame, n_rows: int, contract: FeatureContract, levels: dict[str, list]
) -> MixedPreparation:
    """MixedPreparation fitted on the driver's rows; on a sample, which numbers have few values, and
    the means, scales and categorical levels, are those of every row (as on DuckDB, which fits it on
    the whole table), from Spark."""
    from pyspark.sql import functions as F

    if driver.num_rows == n_rows:
        return MixedPreparation(contract).fit(driver)
    ranges = few_valued_ranges(frame, contract.numeric + contract.ordinal, n_rows)
    preparation = MixedPreparation(contract, ranges=ranges).fit(driver)
    if preparation.gaussian_:
        columns = []
        for column in preparation.gaussian_:
            value = F.col(column).cast("double")
            if column in preparation.log1p_:
                value = F.signum(value) * F.log1p(F.abs(value))
            columns += [F.avg(value), F.stddev_pop(value)]
        row = list(frame.agg(*columns).collect()[0])
        preparation.mean_ = np.array(row[0::2], dtype=np.float64)
        scale = np.array(row[1::2], dtype=np.float64)
        preparation.scale_ = np.where(scale > 0, scale, 1.0)
    for column in contract.categorical:
        preparation.levels_[column] = list(levels[column])
    return preparation


def few_valued_ranges(frame, columns: tuple[str, ...], n_rows: int) -> dict[str, tuple[int, int] | None]:
    """Each number's (lowest, highest) common whole value over every row, as MixedPreparation reads
    it from the rows it fits (None: not whole numbers, or too many levels): one pass finds the
    columns with a value that is not whole, one aggregation counts the others' values."""
    from pyspark.sql import functions as F

    if not columns:
        return {}
    value = {name: F.col(name).cast("double") for name in columns}
    # a missing or non-whole value rules a column out, as NaN does in MixedPreparation's test
    off = {c: value[c].isNull() | F.isnan(value[c]) | (value[c] != F.round(value[c])) for c in columns}
    fractional = frame.agg(*[F.max(F.when(off[c], 1).otherwise(0)).alias(c) for c in columns])
    broken = fractional.collect()[0].asDict()
    whole = [c for c in columns if not broken[c]]
    ranges: dict[str, tuple[int, int] | None] = {c: None for c in columns}
    if not whole:
        return ranges
    pairs = frame.select(
        F.explode(F.array(*[F.struct(F.lit(i).alias("c"), value[c].alias("v")) for i, c in enumerate(whole)]))
    )
    counted = pairs.groupBy("col.c", "col.v").count().where(F.col("count") >= COMMON_SHARE * n_rows)
    common: dict[int, list[float]] = {}
    for row in counted.collect():
        common.setdefault(row["c"], []).append(row["v"])
    for i, column in enumerate(whole):
        ranges[column] = common_range(np.array(common.get(i, []), dtype=np.float64))
    return ranges


@dataclass
class SparkMixture:
    selection: MixtureSelection
    preparation: MixedPreparation
    model: LatentClassModel
    comparison: dict
    labels: np.ndarray  # model label of each customer, id order
    probabilities: np.ndarray  # probability of that label, float32
    distances: np.ndarray  # to the label's centre in the K-Means encoding, float32
    centres: np.ndarray  # (k, d) in the K-Means encoding
    sizes: np.ndarray
    scored: object  # Spark frame: id, label, probability, distance


def choose_and_fit(driver: pa.Table, positions: np.ndarray, n_rows: int, preparation, matrix, kmeans_k, settings):
    """model_choice.fit_mixture's k choice, final fit and comparison, on the driver's rows."""
    data = SampledRows(n_rows, positions, preparation.transform(driver))
    selection = choose_k(data, settings)
    model = refit_on_sample(data, selection, settings)
    comparison = compare_with_kmeans(data, SampledRows(n_rows, positions, matrix), model, kmeans_k, settings)
    return selection, model, comparison


def score_batches(preparation: MixedPreparation, model: LatentClassModel, id_column: str):
    """The executors' function: each Arrow batch prepared and scored, most probable label and its probability."""

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            probabilities = model.predict_proba(preparation.transform(pa.Table.from_batches([batch])))
            labels = probabilities.argmax(axis=1).astype(np.int32)
            chosen = probabilities[np.arange(len(labels)), labels].astype(np.float64)
            yield pa.RecordBatch.from_arrays(
                [batch.column(id_column), pa.array(labels, pa.int32()), pa.array(chosen, pa.float64())],
                names=[id_column, "label", "probability"],
            )

    return score


def ship_by_value() -> None:
    """Pickle this package's classes and functions into the closure: executors (a cluster's
    included) need numpy, pyarrow and scikit-learn, not this project."""
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__.split(".")[0]])


def fit_mixture_on_spark(
    frame,
    contract: FeatureContract,
    driver: pa.Table,
    positions: np.ndarray,
    n_rows: int,
    levels: dict[str, list],
    preprocessor,
    kmeans_k: int,
    settings: Settings,
) -> SparkMixture:
    """Prepare, choose k and fit on the driver's rows; score, centre and measure every row on Spark."""
    from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

    preparation = fit_preparation(driver, frame, n_rows, contract, levels)
    matrix = transform(preprocessor, driver, contract)
    selection, model, comparison = choose_and_fit(driver, positions, n_rows, preparation, matrix, kmeans_k, settings)
    k = model.n_components
    log.info("scoring %s customers on the executors (mapInArrow)", f"{n_rows:,}")
    ship_by_value()
    schema = StructType(
        [
            frame.schema[contract.id_column],
            StructField("label", IntegerType(), False),
            StructField("probability", DoubleType(), False),
        ]
    )
    inputs = frame.select(contract.id_column, *preparation.gaussian_, *preparation.categorical_)
    labelled = inputs.mapInArrow(score_batches(preparation, model, contract.id_column), schema)
    dimensions = len(preprocessor.get_feature_names_out())
    encoded = encoded_frame(frame, preprocessor, contract).join(labelled, contract.id_column).cache()
    centres, sizes = centres_by_label(encoded, k, dimensions)
    scored = encoded.select(
        contract.id_column, "label", "probability", distance_to_centre(centres, dimensions).alias("distance")
    )
    result = collect_sorted(scored, contract.id_column)
    return SparkMixture(
        selection=selection,
        preparation=preparation,
        model=model,
        comparison=comparison,
        labels=result.column("label").to_numpy().astype(np.int32),
        probabilities=result.column("probability").to_numpy().astype(np.float32),
        distances=result.column("distance").to_numpy().astype(np.float32),
        centres=centres,
        sizes=sizes,
        scored=scored,
    )
