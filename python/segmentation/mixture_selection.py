"""Choosing k for the latent class model: an information criterion, filtered by stability and size.

For every candidate k the model is fitted on a sample of fixed size; BIC (or ICL) ranks the
candidates, and the first in that order whose smallest segment is large enough and whose
segments are stable under bootstrap refits is chosen (``choose_mixture_k``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .evidence import bootstrap_stability, sample_rows
from .selection import MAX_FIT_THREADS, SINGLE_THREAD_ROWS, SelectionSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixtureSelection:
    """Per-k evidence for the latent class model, the chosen k, and the model fitted at it."""

    ks: tuple[int, ...]
    bic: tuple[float, ...]
    icl: tuple[float, ...]
    log_likelihood: tuple[float, ...]
    stability: tuple[float, ...]  # NaN where the rule did not need it
    smallest_share: tuple[float, ...]
    chosen: int
    rule: str  # user, <criterion>_stable, <criterion>_sized, <criterion>
    criterion: str
    fit_sample: int
    stability_sample: int
    bootstraps: int
    min_segment_share: float
    model: object = field(repr=False, compare=False, default=None)

    def measure(self, name: str, k: int) -> float:
        return float(getattr(self, name)[self.ks.index(k)])


def choose_mixture_k(
    ks: tuple[int, ...],
    criterion: tuple[float, ...],
    stability: tuple[float, ...],
    smallest_share: tuple[float, ...],
    threshold: float,
    min_share: float,
    name: str = "icl",
    requested_k: int | None = None,
) -> tuple[int, str]:
    """The k of lowest criterion among those stable and without a tiny segment.

    In order: ``K=`` (``user``); the lowest criterion among k that are stable and whose
    smallest segment holds at least `min_share` of the customers (``<name>_stable``);
    among k with no tiny segment (``<name>_sized``); the lowest criterion (``<name>``).
    """
    if requested_k is not None:
        return requested_k, "user"
    value = dict(zip(ks, criterion, strict=True))
    sized = [k for k, share in zip(ks, smallest_share, strict=True) if share >= min_share]
    stable = [k for k, s in zip(ks, stability, strict=True) if k in sized and s >= threshold]
    for candidates, rule in ((stable, f"{name}_stable"), (sized, f"{name}_sized"), (list(ks), name)):
        if candidates:
            return min(candidates, key=lambda k: (value[k], k)), rule
    raise ValueError("no candidate k")


def _seeding_order(ks: tuple[int, ...]) -> list[int]:
    """The candidate k, largest of each group sharing k-means++ seeds first (``LatentClassModel._start``)."""
    group = {k: 2 + int(np.log(k)) for k in ks}
    heads = sorted({max(k for k in ks if group[k] == g) for g in group.values()}, reverse=True)
    return heads + sorted((k for k in ks if k not in heads), reverse=True)


def evaluate_mixture_k(
    data,
    settings: SelectionSettings,
    random_state: int,
    requested_k: int | None = None,
    criterion: str = "bic",
    min_share: float = 0.05,
    n_init: int = 10,
) -> MixtureSelection:
    """Fit the latent class model for every candidate k on a sample; record BIC, ICL, stability, sizes.

    The sample has a fixed size (``settings.fit_sample``): an information criterion's
    penalty grows only with the log of the rows, so on ever more customers it keeps
    adding classes for small departures from the model's shapes. Judged on a sample of
    fixed size, the evidence, and k, do not grow with the table.
    """
    from .mixture import LatentClassModel

    n_rows = len(data)
    k_max = min(settings.k_max, n_rows - 1)
    if k_max < settings.k_min:
        raise ValueError(f"{n_rows} customers are too few for k = {settings.k_min}…")
    sample = data.take(sample_rows(n_rows, settings.fit_sample, random_state))
    stability_points = sample.take(sample_rows(len(sample), settings.stability_sample, random_state + 2))
    ks = tuple(range(settings.k_min, k_max + 1))
    fitted, bic, icl, log_likelihood, smallest = {}, [], [], [], []

    resampled: dict[int, object] = {}

    def quick_fit(points, k: int, seed: int) -> LatentClassModel:
        # Every k's stability draws the same bootstrap resamples (one seed for each): the first
        # k's copy is kept and refitted at the others, with its design and k-means++ seeds.
        kept = resampled.setdefault(seed, points)
        same = kept is points or (
            np.array_equal(kept.codes, points.codes) and np.array_equal(kept.numeric, points.numeric)
        )
        return LatentClassModel(k, n_init=3, keep_starts=1, random_state=seed).fit(kept if same else points)

    def full_fit(k: int) -> LatentClassModel:
        return LatentClassModel(k, n_init=n_init, random_state=random_state).fit(sample)

    single_thread = len(sample) <= SINGLE_THREAD_ROWS
    with threadpool_limits(1 if single_thread else None):
        # Each k's fit is independent and seeded: on a sample small enough for one BLAS thread,
        # the fits run side by side (numpy releases the GIL) and give the same models as in turn.
        workers = min(len(ks), os.cpu_count() or 1, MAX_FIT_THREADS) if single_thread else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # the largest k take longest: started first, they do not leave one thread working alone at the
            # end; the largest of each k-means++ group first (its seeds serve the group's smaller k)
            futures = {k: pool.submit(full_fit, k) for k in _seeding_order(ks)}
            models = [futures[k].result() for k in ks]
            for k, model in zip(ks, models, strict=True):
                fitted[k] = model
                bic.append(float(model.bic_))
                icl.append(float(model.icl_))
                log_likelihood.append(float(model.log_likelihood_))
                smallest.append(float(np.bincount(model.predict(sample), minlength=k).min() / len(sample)))
                log.info("k=%2d  BIC=%.6g  ICL=%.6g  smallest segment=%.1f%%", k, bic[-1], icl[-1], 100 * smallest[-1])
            # Stability is costly (refits on bootstraps), and the rule only needs it for the
            # candidates in order of the criterion until one is stable: the same k as
            # measuring every k, without the fits whose result could not change it.
            values = icl if criterion == "icl" else bic
            stability = {k: float("nan") for k in ks}
            if requested_k is None:
                for k in sorted((k for k, share in zip(ks, smallest, strict=True) if share >= min_share),
                                key=lambda k: (values[ks.index(k)], k)):  # fmt: skip
                    stability[k] = bootstrap_stability(
                        stability_points, k, random_state, settings.bootstraps, quick_fit, pool if workers > 1 else None
                    )
                    log.info("k=%2d  stability=%.2f", k, stability[k])
                    if stability[k] >= settings.stability_threshold:
                        break
    chosen, rule = choose_mixture_k(
        ks,
        tuple(values),
        tuple(stability[k] if not np.isnan(stability[k]) else -1.0 for k in ks),
        tuple(smallest),
        settings.stability_threshold,
        min_share,
        criterion,
        requested_k,
    )
    model = fitted.get(chosen) or LatentClassModel(chosen, n_init=n_init, random_state=random_state).fit(sample)
    return MixtureSelection(
        ks=ks,
        bic=tuple(bic),
        icl=tuple(icl),
        log_likelihood=tuple(log_likelihood),
        stability=tuple(stability[k] for k in ks),
        smallest_share=tuple(smallest),
        chosen=chosen,
        rule=rule,
        criterion=criterion,
        fit_sample=len(sample),
        stability_sample=len(stability_points),
        bootstraps=settings.bootstraps,
        min_segment_share=min_share,
        model=model,
    )
