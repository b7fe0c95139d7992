"""Choosing k on evidence: elbow, silhouette, Calinski–Harabasz, Davies–Bouldin, stability.

Every candidate k is fitted on a uniform sample when the table is large (the curves,
hence the choice, are stable well before 100 000 customers); silhouette, quadratic
in the points, on a smaller sample. Stability is the mean adjusted Rand index between
K-Means fits on bootstrap resamples, each with its own seed, compared on a common
sample: a k whose segments move when the data or the seed move is not one to plan
campaigns on.

The rule that combines them (``choose_k``), in order:

1. ``K=`` given: that k (``user``).
2. The knee of the inertia curve (Kneedle) if its stability is at least the threshold
   (``elbow_stable``).
3. Otherwise the most stable k within one of the knee, if stable enough
   (``stable_near_elbow``).
4. Otherwise, among all stable k, the best silhouette (``best_silhouette_stable``).
5. Otherwise the knee, flagged as unstable (``elbow``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances,
)
from threadpoolctl import threadpool_limits

from .config import BOOTSTRAPS, SELECTION_SAMPLE, SILHOUETTE_SAMPLE, STABILITY_SAMPLE
from .evidence import bootstrap_stability, find_knee, sample_rows, silhouette_from_distances

log = logging.getLogger(__name__)

STABILITY_THRESHOLD = 0.8
# Below this many rows one thread fits K-Means faster than two (and is immune to the
# spin-waiting that makes OpenMP crawl when another process holds the other core).
SINGLE_THREAD_ROWS = 50_000
MAX_FIT_THREADS = 4  # the latent class model's candidate k fitted side by side, at most this many at once
# How well-founded each rule's choice is (the elbow confirmed by stability first). "outranked": an
# encoding whose evaluation stopped once another's rule was stronger than any it could still reach.
RULE_STRENGTH = {
    "user": 4, "elbow_stable": 3, "stable_near_elbow": 2, "best_silhouette_stable": 1, "elbow": 0, "outranked": -1,
}  # fmt: skip
# The stability the rule reads, in stages (the knee; its neighbours; every k), and the strongest
# rule an encoding can still reach when the stages so far settled nothing.
STAGES = 3
STILL_REACHABLE = ("elbow_stable", "stable_near_elbow", "best_silhouette_stable")


@dataclass(frozen=True)
class SelectionSettings:
    k_min: int = 2
    k_max: int = 10
    fit_sample: int = SELECTION_SAMPLE
    silhouette_sample: int = SILHOUETTE_SAMPLE
    stability_sample: int = STABILITY_SAMPLE
    bootstraps: int = BOOTSTRAPS
    n_init: int = 4
    stability_threshold: float = STABILITY_THRESHOLD


@dataclass(frozen=True)
class SelectionResult:
    ks: tuple[int, ...]
    inertia: tuple[float, ...]
    silhouette: tuple[float, ...]
    calinski_harabasz: tuple[float, ...]
    davies_bouldin: tuple[float, ...]
    stability: tuple[float, ...]
    knee: int
    chosen: int
    rule: str  # user, elbow_stable, stable_near_elbow, best_silhouette_stable, elbow
    fit_sample: int
    silhouette_sample: int
    stability_sample: int
    bootstraps: int
    extra: dict = field(default_factory=dict)
    # the K-Means fitted on the sample at the chosen k (reused by later steps rather than refitted)
    model: object = field(repr=False, compare=False, default=None)

    @property
    def source(self) -> str:
        return "user" if self.rule == "user" else "elbow"

    def measure(self, name: str, k: int) -> float:
        return float(getattr(self, name)[self.ks.index(k)])


def choose_k(
    ks: tuple[int, ...],
    knee: int,
    silhouette: tuple[float, ...],
    stability: tuple[float, ...],
    threshold: float,
    requested_k: int | None = None,
) -> tuple[int, str]:
    """Apply the documented rule (module docstring) and return (k, rule code)."""
    if requested_k is not None:
        return requested_k, "user"
    by_k = dict(zip(ks, stability, strict=True))
    if by_k.get(knee, float("nan")) >= threshold:
        return knee, "elbow_stable"
    near = [k for k in (knee - 1, knee, knee + 1) if k in by_k and by_k[k] >= threshold]
    if near:
        return max(near, key=lambda k: (by_k[k], -abs(k - knee), -k)), "stable_near_elbow"
    stable = [k for k in ks if by_k[k] >= threshold]
    if stable:
        sil = dict(zip(ks, silhouette, strict=True))
        return max(stable, key=lambda k: (sil[k], -k)), "best_silhouette_stable"
    return knee, "elbow"


@dataclass
class Candidates:
    """One encoding's K-Means fit at every candidate k; stability measured only where asked.

    Stability (bootstrap refits) is half the cost of choosing k, and the rule needs it at
    only a few k: the knee, then its neighbours, then all only when none of those is stable.
    Each k's stability is seeded on its own, so measuring fewer k changes none of the values.
    """

    ks: tuple[int, ...]
    settings: SelectionSettings
    random_state: int
    sample: np.ndarray
    stability_points: np.ndarray
    silhouette_sample: int
    inertia: list[float]
    silhouette: list[float]
    calinski: list[float]
    davies: list[float]
    models: list
    stability: dict[int, float] = field(default_factory=dict)

    def measure_stability(self, ks, pool: Executor | None = None) -> None:
        todo = [k for k in dict.fromkeys(ks) if k in self.ks and k not in self.stability]
        threads = 1 if self.stability_points.shape[0] <= SINGLE_THREAD_ROWS else None

        def one(k: int) -> float:
            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True), threadpool_limits(threads):
                return bootstrap_stability(self.stability_points, k, self.random_state, self.settings.bootstraps)

        for k, value in zip(todo, (pool.map if pool is not None else map)(one, todo), strict=True):
            self.stability[k] = value
            log.info("k=%2d  stability=%.2f", k, value)

    @property
    def knee(self) -> int:
        return find_knee(np.array(self.ks), np.array(self.inertia))

    def stage(self, stage: int, pool: Executor | None = None) -> tuple[int, int, str] | None:
        """Measure the stability of the rule's `stage` (0: the knee, 1: its neighbours, 2: every k);
        (knee, chosen k, rule) once the stages so far settle the rule, else None."""
        knee = self.knee
        self.measure_stability([[knee], [knee - 1, knee + 1], self.ks][stage], pool)
        stability = tuple(self.stability.get(k, float("nan")) for k in self.ks)
        chosen, rule = choose_k(self.ks, knee, tuple(self.silhouette), stability, self.settings.stability_threshold)
        # settled when no later stage could give a stronger rule
        settled = stage == STAGES - 1 or RULE_STRENGTH[rule] > RULE_STRENGTH[STILL_REACHABLE[stage + 1]]
        return (knee, chosen, rule) if settled else None

    def decide(self, requested_k: int | None = None) -> tuple[int, int, str]:
        """(knee, chosen k, rule), measuring the stability the rule reads (and the chosen k's)."""
        if requested_k is not None:
            chosen, rule = choose_k(self.ks, self.knee, (), (), self.settings.stability_threshold, requested_k)
            self.measure_stability([chosen])
            return self.knee, chosen, rule
        for stage in range(STAGES):
            decision = self.stage(stage)
            if decision is not None:
                self.measure_stability([decision[1]])
                return decision
        raise AssertionError("the last stage always settles the rule")

    def result(self, knee: int, chosen: int, rule: str) -> SelectionResult:
        return SelectionResult(
            ks=self.ks,
            inertia=tuple(self.inertia),
            silhouette=tuple(self.silhouette),
            calinski_harabasz=tuple(self.calinski),
            davies_bouldin=tuple(self.davies),
            stability=tuple(self.stability.get(k, float("nan")) for k in self.ks),
            knee=knee,
            chosen=chosen,
            rule=rule,
            fit_sample=int(self.sample.shape[0]),
            silhouette_sample=self.silhouette_sample,
            stability_sample=int(self.stability_points.shape[0]),
            bootstraps=self.settings.bootstraps,
            model=self.models[self.ks.index(chosen)] if chosen in self.ks else None,
        )


def fit_candidates(matrix: np.ndarray, settings: SelectionSettings, random_state: int) -> Candidates:
    """Fit every candidate k and record the measures that need no refit (stability comes later)."""
    n_rows = matrix.shape[0]
    k_max = min(settings.k_max, n_rows - 1)
    if k_max < settings.k_min:
        raise ValueError(f"{n_rows} customers are too few for k = {settings.k_min}…")
    sample = matrix[sample_rows(n_rows, settings.fit_sample, random_state)]
    if not np.isfinite(sample).all():
        raise ValueError("the feature matrix holds NaN or infinite values")
    silhouette_rows = sample_rows(sample.shape[0], settings.silhouette_sample, random_state + 1)
    stability_points = sample[sample_rows(sample.shape[0], settings.stability_sample, random_state + 2)]
    ks = tuple(range(settings.k_min, k_max + 1))
    # The silhouette sample's distances once for every k, not once per k (silhouette is
    # all pairwise distances; the labels are all that changes between candidates).
    silhouette_distances = pairwise_distances(sample[silhouette_rows])
    inertia, silhouette, calinski, davies, models = [], [], [], [], []
    fit_threads = 1 if sample.shape[0] <= SINGLE_THREAD_ROWS else None
    # About 200 small fits and predictions at 10 thousand rows: scikit-learn's checks of
    # arguments and finiteness on each call cost a tenth of the time, and are done once
    # above. (The setting is per thread: each encoding's thread sets its own.)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for k in ks:
            with threadpool_limits(fit_threads):
                model = KMeans(n_clusters=k, init="k-means++", n_init=settings.n_init, random_state=random_state)
                model.fit(sample)
            models.append(model)
            labels = model.labels_
            distinct = len(np.unique(labels))
            inertia.append(float(model.inertia_))
            silhouette.append(silhouette_from_distances(silhouette_distances, labels[silhouette_rows]))
            calinski.append(float(calinski_harabasz_score(sample, labels)) if distinct > 1 else float("nan"))
            davies.append(float(davies_bouldin_score(sample, labels)) if distinct > 1 else float("nan"))
            log.info(
                "k=%2d  inertia=%.4g  silhouette=%.3f  CH=%.0f  DB=%.2f",
                k, inertia[-1], silhouette[-1], calinski[-1], davies[-1],
            )  # fmt: skip
    return Candidates(
        ks, settings, random_state, sample, stability_points, len(silhouette_rows),
        inertia, silhouette, calinski, davies, models,
    )  # fmt: skip


def evaluate_k(
    matrix: np.ndarray,
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
) -> SelectionResult:
    """Fit every candidate k and record all the measures, then apply the rule."""
    candidates = fit_candidates(matrix, settings, random_state)
    decision = candidates.decide(requested_k)
    candidates.measure_stability(candidates.ks)
    return candidates.result(*decision)


def evaluate_encodings(
    matrices: dict[str, np.ndarray],
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
    pick: Callable[[dict[str, SelectionResult]], str] | None = None,
) -> dict[str, SelectionResult]:
    """`evaluate_k` for each candidate encoding of the same customers.

    When every fit is small enough to run on one thread (the default data), the
    encodings are evaluated side by side, one per core: K-Means and the distance
    computations release the GIL, so two threads take about two thirds of the time of
    one after the other. The results are the same either way: each evaluation has its own
    seeds and runs single-threaded (BLAS limits are process-wide, so they are set here
    once, around both).

    `pick` (the caller's choice of encoding from the results, preferring the stronger rule of
    RULE_STRENGTH whatever the stabilities, as ``pipeline.pick_weighting`` does): the encodings'
    stability is then measured in the rule's stages together, and an encoding stops once
    another's settled rule is stronger than any it could still reach (rule ``outranked``, k its
    knee); the picked encoding's stability is then measured at every k (the report draws it).
    The picked encoding's result, and every settled one's, are the same as evaluated in full.
    """
    single_threaded = all(
        min(matrix.shape[0], settings.fit_sample) <= SINGLE_THREAD_ROWS for matrix in matrices.values()
    )
    side_by_side = len(matrices) > 1 and single_threaded
    with (
        threadpool_limits(1 if side_by_side else None),
        ThreadPoolExecutor(max_workers=2 if side_by_side else 1) as pool,
    ):
        fitting = {
            name: pool.submit(fit_candidates, matrix, settings, random_state) for name, matrix in matrices.items()
        }
        candidates = {name: future.result() for name, future in fitting.items()}
        if pick is None or requested_k is not None:
            decisions = dict(
                zip(candidates, pool.map(lambda c: c.decide(requested_k), candidates.values()), strict=True)
            )
            if pick is None:
                list(pool.map(lambda c: c.measure_stability(c.ks), candidates.values()))
        else:
            decisions = _decide_together(candidates, pool)
        results = {name: candidates[name].result(*decision) for name, decision in decisions.items()}
        if pick is not None:
            name = pick(results)
            if results[name].rule == "outranked":  # a pick that does not follow the rules' strength
                decisions[name] = candidates[name].decide()
                results[name] = candidates[name].result(*decisions[name])
                name = pick(results)
            candidates[name].measure_stability(candidates[name].ks, pool if side_by_side else None)
            results[name] = candidates[name].result(*decisions[name])
    return results


def _decide_together(candidates: dict[str, Candidates], pool: Executor) -> dict[str, tuple[int, int, str]]:
    """Each encoding's (knee, chosen k, rule), the rule's stages measured for all encodings at once;
    an encoding outranked by another's settled rule stops (``outranked``, at its knee)."""
    decisions: dict[str, tuple[int, int, str]] = {}
    active = list(candidates)
    for stage in range(STAGES):
        for name, decision in zip(active, pool.map(lambda n, s=stage: candidates[n].stage(s), active), strict=True):
            if decision is not None:
                candidates[name].measure_stability([decision[1]])
                decisions[name] = decision
        strongest = max((RULE_STRENGTH[rule] for _, _, rule in decisions.values()), default=-1)
        active = [name for name in active if name not in decisions]
        if stage < STAGES - 1:
            for name in [n for n in active if RULE_STRENGTH[STILL_REACHABLE[stage + 1]] < strongest]:
                log.info("%s: outranked by another encoding's rule after stage %d of %d", name, stage + 1, STAGES)
                decisions[name] = (candidates[name].knee, candidates[name].knee, "outranked")
                active.remove(name)
    return {name: decisions[name] for name in candidates}
