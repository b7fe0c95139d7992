"""Customers prepared for the latent class model (``mixture``): which column is modelled how.

- numeric and ordinal columns with many values (log1p first where the contract declares
  them ``skewed``): standardised numbers, for a Gaussian per class;
- categorical and yes/no columns, and numeric or ordinal columns with few whole values
  (``DISCRETE_LEVELS``): integer level codes, for a categorical distribution per class; two
  coded columns with a combination that never occurs though it would be common by chance are
  coded jointly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Numeric and ordinal columns with at most this many distinct whole values (a spending level, a
# household size, years of experience) are modelled by their level distribution: a Gaussian is a
# poor shape for them, and a class in which all share one value has zero variance. Measured on the
# planted data: ARI 0.86 against 0.84 with Gaussians, at the same k.
DISCRETE_LEVELS = 20
COMMON_SHARE = 0.002  # a value held by fewer customers is rare: it does not define a level
# Two coded columns with a combination that never occurs, though independence would expect at
# least this many customers (and this share) in it, are modelled jointly, if they have few levels.
JOINT_MIN_EXPECTED = 20
JOINT_MIN_SHARE = 0.01
JOINT_MAX_LEVELS = 12


@dataclass(frozen=True)
class MixedData:
    """Customers prepared for the model: standardised numbers and integer-coded categories."""

    numeric: np.ndarray  # (n, p) float64
    codes: np.ndarray  # (n, q) int32, level index; -1 for a level the preparation never saw
    levels: tuple[int, ...]  # number of levels of each coded column
    # What the latent class model derives from these rows and reuses across fits (of every
    # candidate k on one sample): the design, the start space, k-means++ seeds.
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def cached(self, key, make):
        """`cache[key]`, made by `make()` the first time (threads may both make it: same value)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    @property
    def n_rows(self) -> int:
        return self.numeric.shape[0]

    def take(self, rows: np.ndarray) -> MixedData:
        return MixedData(self.numeric[rows], self.codes[rows], self.levels)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, rows: np.ndarray) -> MixedData:  # rows by index, as for an array (bootstraps)
        return self.take(rows)

    def one_hot(self, rows: slice | np.ndarray | None = None) -> np.ndarray:
        """(n, Σ levels) float64 indicator matrix; an unseen level is a row of zeros in its block."""
        codes = self.codes if rows is None else self.codes[rows]
        offsets = np.concatenate([[0], np.cumsum(self.levels)]).astype(np.int64)
        matrix = np.zeros((codes.shape[0], int(offsets[-1])), dtype=np.float64)
        for j in range(codes.shape[1]):
            known = np.flatnonzero(codes[:, j] >= 0)
            matrix[known, offsets[j] + codes[known, j]] = 1.0
        return matrix


class MixedPreparation:
    """Which column is modelled how, and the fitted scaling and levels (from the contract's roles)."""

    def __init__(self, contract, discrete_levels: int = DISCRETE_LEVELS, ranges: dict | None = None):
        self.contract = contract
        self.discrete_levels = discrete_levels
        # the few-valued ranges, when read from more rows than the fit sees (Spark: every customer,
        # the fit on the driver's sample); None: read from the rows fitted
        self.ranges = ranges

    def fit(self, table: pa.Table) -> MixedPreparation:
        self._fit(table)
        return self

    def fit_transform(self, table: pa.Table, y=None) -> MixedData:
        """`fit(table).transform(table)`, reusing the numbers and codes the fit has read."""
        values, codes = self._fit(table)
        return self._assemble(values, codes, table.num_rows)

    def _fit(self, table: pa.Table) -> tuple[list[np.ndarray], list[np.ndarray]]:
        contract = self.contract
        skewed = set(getattr(contract, "skewed", ()) or ())
        # each number read from Arrow once (as float64) for the range test, the scaling and the codes
        floats = {column: _float64(table.column(column)) for column in contract.numeric + contract.ordinal}
        self.ranges_ = {}  # few-valued number → (lowest, highest) level; rarer values join the nearest end
        for column in contract.numeric + contract.ordinal:
            span = self._discrete_range(floats[column]) if self.ranges is None else self.ranges.get(column)
            if span is not None:
                self.ranges_[column] = (int(span[0]), int(span[1]))
        few = list(self.ranges_)
        self.gaussian_ = tuple(c for c in contract.numeric + contract.ordinal if c not in few)
        self.categorical_ = tuple(few) + tuple(contract.categorical)
        self.log1p_ = tuple(c for c in self.gaussian_ if c in skewed)
        values = [self._number(table, c, floats) for c in self.gaussian_]
        self.mean_ = np.array([v.mean() for v in values]) if values else np.zeros(0)
        scale = np.array([v.std() for v in values]) if values else np.zeros(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.levels_ = {
            c: list(range(self.ranges_[c][0], self.ranges_[c][1] + 1))
            if c in self.ranges_
            else sorted(pc.unique(table.column(c)).drop_null().to_pylist(), key=lambda v: (str(type(v)), v))
            for c in self.categorical_
        }
        codes = self._codes(table, floats)
        self.joint_ = self._find_joint(codes)
        return values, codes

    def _find_joint(self, codes: list[np.ndarray]) -> tuple[tuple[int, int], ...]:
        """Pairs of coded columns with a combination that never occurs though it would be common by chance.

        Such a rule (say, only one kind of customer ever has a given pair of values) breaks the
        model's assumption that columns are independent within a class, and the model would
        spend classes on it; the pair is modelled as one column of joint levels instead. Greedy,
        strongest first; each column joins at most one pair; few levels only.
        """
        n = codes[0].shape[0] if codes else 0
        candidates = []
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                li, lj = len(self.levels_[self.categorical_[i]]), len(self.levels_[self.categorical_[j]])
                if li * lj > JOINT_MAX_LEVELS or n == 0:
                    continue
                # the crosstab by one bincount (np.add.at took 0.4 s a pair at ten million rows)
                pairs = codes[i].astype(np.int64) * lj + codes[j]
                table = np.bincount(pairs, minlength=li * lj).reshape(li, lj).astype(np.float64)
                expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
                empty = expected[table == 0]
                if empty.size and empty.max() >= max(JOINT_MIN_EXPECTED, JOINT_MIN_SHARE * n):
                    candidates.append((float(empty.max()), i, j))
        joint, used = [], set()
        for _, i, j in sorted(candidates, reverse=True):
            if i not in used and j not in used:
                joint.append((i, j))
                used |= {i, j}
        return tuple(sorted(joint))

    def _codes(self, table: pa.Table, floats: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
        """Each coded column's level codes, int32, one contiguous array per column."""
        codes = []
        for column in self.categorical_:
            if column in self.ranges_:
                low, high = self.ranges_[column]
                values = floats[column] if floats and column in floats else _float64(table.column(column))
                # whole numbers clipped to a short range: exact in float64, so the shift can happen there
                level = np.clip(np.rint(values), low, high)
                level -= low
                codes.append(level.astype(np.int32))
                continue
            known = pa.array(self.levels_[column], type=table.column(column).type)
            index = pc.fill_null(pc.index_in(table.column(column), value_set=known), -1)
            codes.append(index.to_numpy(zero_copy_only=False).astype(np.int32, copy=False))
        return codes

    @property
    def coded_columns_(self) -> tuple[str, ...]:
        """Names of the model's coded columns: single columns, then joint pairs as 'a × b'."""
        paired = {c for pair in self.joint_ for c in pair}
        single = [c for j, c in enumerate(self.categorical_) if j not in paired]
        return (*single, *(f"{self.categorical_[i]} × {self.categorical_[j]}" for i, j in self.joint_))

    def _discrete_range(self, values: np.ndarray) -> tuple[int, int] | None:
        """(lowest, highest) common value of a whole-number column with few common values, else None.

        Values held by fewer than COMMON_SHARE of the customers do not count (they join the
        nearest end of the range), so the decision, and the levels, do not change with the
        number of customers: a thousand times more rows bring rarer extremes, not a new shape.
        """
        if len(values) == 0 or not np.all(values == np.round(values)):
            return None
        counted = pc.value_counts(pa.array(values))  # hashed, not sorted: a third of np.unique's time
        kinds, counts = counted.field("values").to_numpy(), counted.field("counts").to_numpy()
        return common_range(kinds[counts >= COMMON_SHARE * len(values)], self.discrete_levels)

    def _number(self, table: pa.Table, column: str, floats: dict[str, np.ndarray] | None = None) -> np.ndarray:
        values = floats[column] if floats and column in floats else _float64(table.column(column))
        return np.sign(values) * np.log1p(np.abs(values)) if column in getattr(self, "log1p_", ()) else values

    def transform(self, table: pa.Table) -> MixedData:
        values = [self._number(table, column) for column in self.gaussian_]
        return self._assemble(values, self._codes(table), table.num_rows)

    def _assemble(self, values: list[np.ndarray], codes: list[np.ndarray], n_rows: int) -> MixedData:
        numeric = np.empty((n_rows, len(self.gaussian_)), dtype=np.float64)
        for j, value in enumerate(values):
            numeric[:, j] = (value - self.mean_[j]) / self.scale_[j]
        counts = [len(self.levels_[c]) for c in self.categorical_]
        paired = {c for pair in self.joint_ for c in pair}
        single = [j for j in range(len(counts)) if j not in paired]
        columns = [codes[j] for j in single]
        levels = [counts[j] for j in single]
        for i, j in self.joint_:
            unseen = (codes[i] < 0) | (codes[j] < 0)
            columns.append(np.where(unseen, -1, codes[i] * counts[j] + codes[j]).astype(np.int32))
            levels.append(counts[i] * counts[j])
        coded = np.column_stack(columns) if columns else np.empty((n_rows, 0), np.int32)
        return MixedData(numeric, coded.astype(np.int32, copy=False), tuple(levels))

    def unseen(self, table: pa.Table) -> tuple[np.ndarray, dict[str, int]]:
        """Rows holding a level the preparation never saw, and how many per column."""
        flags = np.zeros(table.num_rows, dtype=bool)
        counts: dict[str, int] = {}
        codes = self._codes(table)
        for j, column in enumerate(self.categorical_):
            unknown = codes[j] < 0
            if unknown.any():
                counts[column] = int(unknown.sum())
                flags |= unknown
        return flags, counts


def common_range(common: np.ndarray, discrete_levels: int = DISCRETE_LEVELS) -> tuple[int, int] | None:
    """(lowest, highest) of a whole-number column's common values, when they span few levels."""
    if len(common) == 0 or common.max() - common.min() + 1 > discrete_levels:
        return None
    return int(common.min()), int(common.max())


def _float64(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False).astype(np.float64)


def prepare_mixed(table: pa.Table, contract) -> tuple[MixedPreparation, MixedData]:
    """Fit the preparation on the whole table (levels, means, scales) and prepare every customer."""
    preparation = MixedPreparation(contract)
    return preparation, preparation.fit_transform(table)
