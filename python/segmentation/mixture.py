"""A latent class model for mixed data: each column on its own terms.

One-hot K-Means weighs a nine-level category less than one standardised number and a
yes/no as much as a measured quantity; the weights are an accident of the encoding. A latent class
model instead explains every column inside each class by a distribution made for it:

- numeric and ordinal columns with many values (log1p first where the contract declares
  them ``skewed``): a Gaussian per class (diagonal: columns independent within a class),
  on standardised values, variance floored;
- categorical and yes/no columns, and numeric or ordinal columns with few whole values
  (``DISCRETE_LEVELS``): a categorical distribution per class (probability of each level,
  smoothed by one pseudo-count).

Fitted by EM from several seeded starts (k-means++ seeds on the prepared columns) on
at most a sample of customers, applied to all rows in chunks. It gives each customer a
probability of belonging to each class (``predict_proba``), and a log-likelihood from
which BIC and ICL choose k. A level never seen in fitting contributes nothing to any
class (the customer is placed by the other columns).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import kmeans_plusplus

from .mixed_data import DISCRETE_LEVELS, MixedData, MixedPreparation, prepare_mixed

__all__ = ["DISCRETE_LEVELS", "LatentClassModel", "MixedData", "MixedPreparation", "prepare_mixed"]

log = logging.getLogger(__name__)

VARIANCE_FLOOR = 1e-2  # in standardised units (a standard deviation of a tenth)
PSEUDO_COUNT = 1.0  # per level and class: no level is impossible in a class
APPLY_CHUNK_ROWS = 200_000  # rows scored at once: their design matrix is 0.1 GB, whatever the table
SCREEN_STEPS = 10  # EM iterations every start gets before the best are kept
KEEP_STARTS = 2  # starts run to convergence
# SQUAREM (runs to convergence): extrapolate only once a plain EM step gains less than this per
# customer, and at most this far. Bolder jumps (from the first steps, or longer) sometimes land
# on a worse optimum than plain EM from the same start: up to 80 BIC units in 7 of 42 runs on
# the default data's sample; with these limits none of 84 runs (default data and a million), for
# half the E-steps.
ACCELERATE_BELOW = 3e-4
MAX_STEP = 4.0


class _Design(NamedTuple):
    """The latent class model's design, [one-hot levels | numbers | squared numbers], in blocks (see
    LatentClassModel's EM steps)."""

    levels_t: np.ndarray  # (Σ levels, n) float32 one-hot, one column per row: the E-step's product
    levels: np.ndarray | None  # (n, Σ levels) float32, the same by row: the M-step's product
    numbers_t: np.ndarray  # (2 p, n) float64: the numbers, then their squares


class LatentClassModel(BaseEstimator):
    """Mixture of diagonal Gaussians × categorical distributions, fitted by EM (scikit-learn shaped)."""

    def __init__(
        self,
        n_components: int = 4,
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-5,  # on the mean log-likelihood per customer
        random_state: int = 0,
        variance_floor: float = VARIANCE_FLOOR,
        pseudo_count: float = PSEUDO_COUNT,
        keep_starts: int = KEEP_STARTS,
        warm_start: bool = False,
    ):
        self.n_components = n_components
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.variance_floor = variance_floor
        self.pseudo_count = pseudo_count
        self.keep_starts = keep_starts
        self.warm_start = warm_start

    # ---- the two EM steps ------------------------------------------------------------
    # Both steps work on one design, [one-hot levels | numbers | squared numbers], held transposed
    # (one row per design column, one column per customer) and in two blocks: the one-hot levels
    # in float32 (exact zeros and ones; their products are accumulated by BLAS in single
    # precision, a relative error of 1e-6 on the level counts, far below the pseudo-count), the
    # numbers in float64 (their terms cancel: a float32 error there would show). The M-step's
    # sufficient statistics are then two products (resp @ design.T) and the E-step's
    # log-likelihoods two more (weights @ design); responsibilities are (classes, rows), so the
    # per-row maximum and sum over the few classes are sums of k long rows, not k-wide
    # reductions along each row (numpy's slow case). An iteration takes a third of the time of
    # the float64, row-major form, for the same fitted models.
    @staticmethod
    def _blocks(data: MixedData, rows: slice | None = None, by_row: bool = True) -> _Design:
        """The design's blocks for `rows` (all by default); `by_row`: also the one-hot block by row."""
        numeric = data.numeric if rows is None else data.numeric[rows]
        codes = data.codes if rows is None else data.codes[rows]
        offsets = np.concatenate([[0], np.cumsum(data.levels)]).astype(np.int64)
        levels_t = np.zeros((int(offsets[-1]), numeric.shape[0]), dtype=np.float32)
        for j in range(codes.shape[1]):
            known = np.flatnonzero(codes[:, j] >= 0)
            levels_t[offsets[j] + codes[known, j], known] = 1.0
        levels = np.ascontiguousarray(levels_t.T) if by_row else None
        return _Design(levels_t, levels, np.vstack([numeric.T, numeric.T**2]))

    def _m_step(self, design: _Design, levels: tuple[int, ...], resp: np.ndarray) -> None:
        """Parameters from (k, n) responsibilities, or (starts, k, n) for several starts at once."""
        gauss_t = design.numbers_t
        lead, n = resp.shape[:-1], resp.shape[-1]
        weight = resp.sum(axis=-1) + 1e-12
        self.weights_ = weight / weight.sum(axis=-1, keepdims=True)
        p = gauss_t.shape[0] // 2
        if p:
            sums = (resp.reshape(-1, n) @ gauss_t.T).reshape(*lead, 2 * p)
            self.means_ = sums[..., :p] / weight[..., None]
            second = sums[..., p:] / weight[..., None]
            self.variances_ = np.maximum(second - self.means_**2, self.variance_floor)
        else:
            self.means_ = np.zeros((*lead, 0))
            self.variances_ = np.ones((*lead, 0))
        if levels:
            counts = (resp.reshape(-1, n).astype(np.float32) @ design.levels).astype(np.float64)
            counts = counts.reshape(*lead, -1) + self.pseudo_count
            starts = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.intp)
            totals = np.repeat(np.add.reduceat(counts, starts, axis=-1), levels, axis=-1)
            self.log_level_probs_ = np.log(counts / totals)  # (k, Σ levels)
        else:
            self.log_level_probs_ = np.zeros((*lead, 0))

    def _joint_log(self, design: _Design, out: np.ndarray | None = None) -> np.ndarray:
        """log p(x, class) for each class and row: (k, n) float64 ((starts, k, n) for several), into `out`."""
        level_t, gauss_t = design.levels_t, design.numbers_t
        joint = np.empty((*self.weights_.shape, level_t.shape[1])) if out is None else out
        if level_t.shape[0]:
            joint[...] = (self.log_level_probs_.astype(np.float32).reshape(-1, level_t.shape[0]) @ level_t).reshape(
                joint.shape
            )
        else:
            joint[...] = 0.0
        constant = np.log(self.weights_)
        if self.means_.shape[-1]:
            precision = 1.0 / self.variances_
            weights = np.concatenate([self.means_ * precision, -0.5 * precision], axis=-1)
            joint += (weights.reshape(-1, gauss_t.shape[0]) @ gauss_t).reshape(joint.shape)
            constant = constant - 0.5 * ((self.means_**2) * precision + np.log(2 * np.pi * self.variances_)).sum(
                axis=-1
            )
        joint += constant[..., None]
        return joint

    @staticmethod
    def _normalise(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(x) per row, posterior), overwriting the (k, n) or (starts, k, n) `joint`."""
        top = joint.max(axis=-2)
        joint -= top[..., None, :]
        np.exp(joint, out=joint)
        total = joint.sum(axis=-2)
        joint /= total[..., None, :]
        np.log(total, out=total)
        total += top
        return total, joint

    def _start(self, data: MixedData, seed: int) -> np.ndarray:
        """Hard responsibilities from k-means++ seeds on the prepared columns (one-hot halved).

        k-means++ picks its centres one after another from the seed's random stream, drawing
        2 + ⌊ln k⌋ candidates for each: with the same seed, the centres for k are the first k of
        those for any larger k with as many candidates (3 to 7; 8 to 20). They are kept on `data`
        and shared by the fits of every candidate k: the same centres, computed once.
        """
        k = self.n_components
        space = data.cached("space", lambda: np.hstack([data.numeric, data.one_hot() * np.sqrt(0.5)]))
        trials = 2 + int(np.log(k))  # scikit-learn's default
        key = ("k-means++", seed, trials)
        known = data.cache.get(key)
        if known is None or len(known) < k:
            known = kmeans_plusplus(space, k, n_local_trials=trials, random_state=seed)[0]
            if len(data.cache.get(key, ())) < k:
                data.cache[key] = known
        centres = known[:k]
        norms = data.cached("space_norms", lambda: (space**2).sum(axis=1))
        distances = norms[:, None] - 2 * space @ centres.T + (centres**2).sum(axis=1)[None, :]
        resp = np.zeros((self.n_components, space.shape[0]))
        resp[distances.argmin(axis=1), np.arange(space.shape[0])] = 1.0
        return resp

    def _iterate(self, design: _Design, levels: tuple[int, ...], resp: np.ndarray, steps: int):
        """Up to `steps` EM iterations from (k, n) `resp`; (mean log-likelihood, resp, converged).

        The E-step writes into one buffer (the M-step has read the previous responsibilities by then).
        """
        previous = -np.inf
        buffer = np.empty((self.n_components, design.levels_t.shape[1]))
        for _ in range(steps):
            self._m_step(design, levels, resp)
            row_log, resp = self._normalise(self._joint_log(design, out=buffer))
            mean_log = float(row_log.mean())
            if mean_log - previous < self.tol:
                return mean_log, resp, True
            previous = mean_log
        return previous, resp, False

    def _parameters(self) -> np.ndarray:
        """The parameters as one vector, positive ones by their log (SQUAREM extrapolates it)."""
        return np.concatenate(
            [np.log(self.weights_), self.means_.ravel(), np.log(self.variances_).ravel(), self.log_level_probs_.ravel()]
        )

    def _set_parameters(self, theta: np.ndarray, levels: tuple[int, ...]) -> None:
        """Parameters from a (possibly extrapolated) vector: proportions and level probabilities
        normalised, variances floored."""
        k, p = self.means_.shape
        log_weights, rest = theta[:k], theta[k:]
        weights = np.exp(log_weights - log_weights.max())
        self.weights_ = weights / weights.sum()
        self.means_ = rest[: k * p].reshape(k, p).copy()
        self.variances_ = np.maximum(np.exp(rest[k * p : 2 * k * p]).reshape(k, p), self.variance_floor)
        log_probs = rest[2 * k * p :].reshape(k, -1)
        if levels:
            starts = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.intp)
            top = np.repeat(np.maximum.reduceat(log_probs, starts, axis=1), levels, axis=1)
            totals = np.add.reduceat(np.exp(log_probs - top), starts, axis=1)
            log_probs = log_probs - top - np.repeat(np.log(totals), levels, axis=1)
        self.log_level_probs_ = log_probs

    def _converge(self, design: _Design, levels: tuple[int, ...], resp: np.ndarray, steps: int):
        """EM from (k, n) `resp` until a step gains less than `tol`, accelerated by SQUAREM (Varadhan
        and Roland, 2008); (mean log-likelihood, resp, converged), as `_iterate`.

        Near a fixed point EM creeps (k = 8 to 10 take hundreds of steps): once a step gains less
        than ACCELERATE_BELOW, each cycle takes two EM steps from the current parameters, jumps
        along their extrapolation (at most MAX_STEP times), then takes one more EM step from
        there. A jump that would lower the likelihood is replaced by the second step's parameters
        (plain EM: the likelihood never falls). The stopping test is the plain EM step's gain, as
        without acceleration, so it stops no further from the optimum. `steps` counts E-steps.
        """
        first, second = np.empty((2, self.n_components, design.levels_t.shape[1]))
        self._m_step(design, levels, resp)
        row_log, resp = self._normalise(self._joint_log(design, out=first))
        current, done, max_step = float(row_log.mean()), 1, 1.0
        while done < steps:
            theta_a = self._parameters()
            self._m_step(design, levels, resp)
            theta_b = self._parameters()
            spare = first if resp is second else second
            row_log, resp_b = self._normalise(self._joint_log(design, out=spare))
            after_step, done = float(row_log.mean()), done + 1
            if after_step - current < self.tol:
                return after_step, resp_b, True
            if after_step - current > ACCELERATE_BELOW:  # still climbing fast: plain EM
                current, resp = after_step, resp_b
                continue
            self._m_step(design, levels, resp_b)
            theta_c = self._parameters()
            r, v = theta_b - theta_a, theta_c - 2 * theta_b + theta_a
            norm_v = float(np.sqrt(v @ v))
            alpha = -max(1.0, min(max_step, float(np.sqrt(r @ r)) / norm_v)) if norm_v > 0 else -1.0
            if alpha == -max_step:
                max_step = min(4 * max_step, MAX_STEP)
            self._set_parameters(theta_a - 2 * alpha * r + alpha**2 * v, levels)
            spare = first if resp_b is second else second
            row_log, resp = self._normalise(self._joint_log(design, out=spare))
            jumped, done = float(row_log.mean()), done + 1
            if not jumped >= after_step:  # (NaN included) the second EM step instead
                self._set_parameters(theta_c, levels)
                row_log, resp = self._normalise(self._joint_log(design, out=spare))
                done, max_step = done + 1, max(1.0, max_step / 4)
            self._m_step(design, levels, resp)
            spare = first if resp is second else second
            row_log, resp = self._normalise(self._joint_log(design, out=spare))
            current, done = float(row_log.mean()), done + 1
        return current, resp, False

    # ---- the estimator ---------------------------------------------------------------
    def fit(self, data: MixedData, y=None) -> LatentClassModel:
        """Seeded EM starts, screened after a few iterations; the best few run to convergence.

        Starts that lead nowhere are visible after ten iterations: screening them there
        gives the same solutions as running every start to the end, for a third of the time.
        """
        if data.n_rows < self.n_components:
            raise ValueError(f"{data.n_rows} rows are too few for {self.n_components} classes")
        if not np.isfinite(data.numeric).all():
            raise ValueError("the prepared numbers hold NaN or infinite values")
        self.levels_ = data.levels
        self.n_features_numeric_ = data.numeric.shape[1]
        design = data.cached("design", lambda: self._blocks(data))
        if self.warm_start and hasattr(self, "log_likelihood_"):
            # one EM run from the fitted solution (e.g. the one k was chosen with, on a smaller sample)
            starts = [self._normalise(self._joint_log(design))[1]]
        else:
            starts = self._screened_starts(data, design)
        best: tuple[float, np.ndarray] | None = None
        for resp in starts:
            mean_log, resp, _ = self._converge(design, data.levels, resp, self.max_iter)
            if best is None or mean_log > best[0] + 1e-12:
                best = (mean_log, resp)
        self._m_step(design, data.levels, best[1])
        row_log, posterior = self._normalise(self._joint_log(design))
        self.log_likelihood_ = float(row_log.sum())
        self.n_rows_fitted_ = data.n_rows
        entropy = -float(np.sum(self._xlogx(posterior)))
        self.bic_ = -2 * self.log_likelihood_ + self.n_parameters * np.log(data.n_rows)
        self.icl_ = self.bic_ + 2 * entropy
        return self

    def _screened_starts(self, data: MixedData, design: _Design) -> list[np.ndarray]:
        """Responsibilities of the best `keep_starts` of `n_init` seeded starts after SCREEN_STEPS iterations.

        The starts are screened together, stacked (starts, k, n): each EM step is then two
        matrix products for all of them instead of two per start (the products' rows are the
        same as one start's alone). A start that converges early leaves the stack there, as it
        would leave its own EM run.
        """
        seeds = np.random.default_rng(self.random_state).integers(0, 2**31 - 1, size=self.n_init)
        resp = np.stack([self._start(data, int(seed)) for seed in seeds])
        active, previous = np.arange(len(seeds)), np.full(len(seeds), -np.inf)
        screened: dict[int, tuple[float, np.ndarray]] = {}
        for _ in range(SCREEN_STEPS):
            self._m_step(design, data.levels, resp)
            row_log, resp = self._normalise(self._joint_log(design))
            mean_log = row_log.mean(axis=-1)
            converged = mean_log - previous[active] < self.tol
            previous[active] = mean_log
            for i in np.flatnonzero(converged):
                screened[int(active[i])] = (float(mean_log[i]), resp[i])
            if converged.any():
                active, resp = active[~converged], resp[~converged]
            if not len(active):
                break
        for i, start in enumerate(active):
            screened[int(start)] = (float(previous[start]), resp[i])
        order = sorted(range(len(seeds)), key=lambda i: -screened[i][0])[: self.keep_starts]
        return [np.ascontiguousarray(screened[i][1]) for i in order]

    @staticmethod
    def _xlogx(p: np.ndarray) -> np.ndarray:
        return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)

    @property
    def n_parameters(self) -> int:
        k = self.n_components
        return (k - 1) + k * (2 * self.n_features_numeric_ + sum(size - 1 for size in self.levels_))

    def predict_proba(self, data: MixedData, chunk_rows: int = APPLY_CHUNK_ROWS) -> np.ndarray:
        """Posterior probability of each class for each row, in chunks (float64 within, float32 out)."""
        out = np.empty((data.n_rows, self.n_components), dtype=np.float32)
        for start in range(0, data.n_rows, chunk_rows):
            rows = slice(start, start + chunk_rows)
            out[rows] = self._normalise(self._joint_log(self._blocks(data, rows, by_row=False)))[1].T
        return out

    def predict(self, data: MixedData) -> np.ndarray:
        return self.predict_proba(data).argmax(axis=1)

    def classification_bic(self, data: MixedData, labels: np.ndarray) -> float:
        """BIC of a hard partition (e.g. K-Means') under this model's family: its M-step on the labels.

        A criterion that needs no truth to compare partitions found by different algorithms.
        """
        k = int(labels.max()) + 1
        shell = LatentClassModel(k, variance_floor=self.variance_floor, pseudo_count=self.pseudo_count)
        design = self._blocks(data)
        resp = np.zeros((k, data.n_rows))
        resp[labels, np.arange(data.n_rows)] = 1.0
        shell._m_step(design, data.levels, resp)
        shell.levels_, shell.n_features_numeric_ = data.levels, data.numeric.shape[1]
        log_likelihood = float(shell._normalise(shell._joint_log(design))[0].sum())
        return -2 * log_likelihood + shell.n_parameters * np.log(data.n_rows)
