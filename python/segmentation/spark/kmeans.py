"""ALGO=kmeans on Spark: the final K-Means fitted by Spark MLlib on every customer.

k-means|| initialisation with a fixed seed, one run, on the encoded features assembled by
pyspark.ml's VectorAssembler; where scikit-learn (DuckDB engine) fits k-means++ with several
initialisations on at most a million customers, so the two agree closely, not to the customer.
"""

from __future__ import annotations

import numpy as np

from ..contract import FeatureContract
from .encode import collect_sorted, distance_to_centre, encoded_frame

MAX_ITER = 300
TOLERANCE = 1e-6


class CentresModel:
    """MLlib's fitted centres as a picklable nearest-centre model (the saved model `make score` uses)."""

    def __init__(self, centres: np.ndarray):
        self.cluster_centers_ = np.asarray(centres, dtype=np.float64)

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        diff = np.asarray(matrix, dtype=np.float64)[:, None, :] - self.cluster_centers_[None, :, :]
        return np.sqrt((diff * diff).sum(axis=2))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.transform(matrix).argmin(axis=1)


def fit_kmeans_on_spark(frame, contract: FeatureContract, preprocessor, k: int, random_state: int):
    """(labels, distances, centres, sizes) in id order, and the Spark frame id, label, distance."""
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import VectorAssembler

    dimensions = len(preprocessor.get_feature_names_out())
    encoded = encoded_frame(frame, preprocessor, contract)
    assembler = VectorAssembler(inputCols=[f"_x{j}" for j in range(dimensions)], outputCol="features")
    vectors = assembler.transform(encoded).cache()
    kmeans = KMeans(k=k, seed=random_state, initMode="k-means||", maxIter=MAX_ITER, tol=TOLERANCE)
    model = kmeans.fit(vectors.select("features"))
    centres = np.vstack([np.asarray(c, dtype=np.float64) for c in model.clusterCenters()])
    labelled = model.setPredictionCol("label").transform(vectors)
    scored = labelled.select(
        contract.id_column,
        labelled["label"].cast("int").alias("label"),
        distance_to_centre(centres, dimensions).alias("distance"),
    )
    result = collect_sorted(scored, contract.id_column)
    labels = result.column("label").to_numpy().astype(np.int32)
    distances = result.column("distance").to_numpy().astype(np.float32)
    return labels, distances, centres, np.bincount(labels, minlength=k), scored
