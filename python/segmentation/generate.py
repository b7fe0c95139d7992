"""Generate the default data set: a seeded, realistic raw CRM customer export.

The project ships no data, yet every step downstream (dbt cleaning, K-Means, the
persona report) has to be exercised on something that looks like what a real
company would hand over. So this module writes a table with the schema of the
well-known Kaggle "customer segmentation" export and the same kinds of mess a
real export has, because the pipeline will later be run on real ones:

* four latent personas plus ~10 % broadly drawn noise customers, with
  overlapping distributions, so that segments are findable but not trivially
  separable (a ground-truth table records which persona each customer was
  planted in, for tests and for judging the clustering);
* missing values in most columns at the rates real exports show;
* repeated exports of the same customer (about a fifth of IDs appear twice,
  ages apart by -14 to +13 years as in the real export, a little changed, never
  an exact copy, both at random positions in the file, nothing to tell which
  record is the more recent);
* a handful of bad values: stray whitespace, case variants, impossible ages,
  negative experience and unknown category codes.

Everything is vectorised (numpy code arrays, turned into Arrow strings by
``take`` on small dictionaries), so 10 million rows are generated in seconds
and memory stays at a few hundred bytes per row.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import secrets
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import norm

__all__ = ["COLUMNS", "PLANTED_SEGMENTS", "bayes_oracle", "generate", "generate_customers", "write_customers"]

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "ID",
    "Gender",
    "Ever_Married",
    "Age",
    "Graduated",
    "Profession",
    "Work_Experience",
    "Spending_Score",
    "Family_Size",
    "Var_1",
)
"""The raw export's column names, in file order (as in the Kaggle table)."""

PLANTED_SEGMENTS: tuple[str, ...] = (
    "core_professionals",
    "young_healthcare_singles",
    "senior_lawyers",
    "homemakers",
    "noise",
)
"""Names of the latent personas, in the order of their codes in the truth table."""

GENDERS: tuple[str, ...] = ("Male", "Female")
YES_NO: tuple[str, ...] = ("Yes", "No")
PROFESSIONS: tuple[str, ...] = (
    "Healthcare",
    "Engineer",
    "Lawyer",
    "Entertainment",
    "Artist",
    "Executive",
    "Doctor",
    "Homemaker",
    "Marketing",
)
SPENDING_SCORES: tuple[str, ...] = ("Low", "Average", "High")
VAR_1: tuple[str, ...] = tuple(f"Cat_{i}" for i in range(1, 8))

# Var_1 is an anonymised code; in the original it is nearly independent of
# everything else, with Cat_6 dominant. Kept independent of the persona here so
# that it acts as the realistic uninformative column a clustering must cope with.
VAR_1_PROBS: tuple[float, ...] = (0.016, 0.052, 0.100, 0.135, 0.011, 0.660, 0.026)

# Planted unknown categories ("Astronaut", "Cat_9") that the cleaning must flag.
UNKNOWN_PROFESSION = "Astronaut"
UNKNOWN_VAR_1 = "Cat_9"
IMPOSSIBLE_AGES: tuple[int, ...] = (0, -3, 150, 212)
NEGATIVE_EXPERIENCE: tuple[int, ...] = (-1, -5)

MIN_AGE = 18
MAX_AGE = 95
# A repeated ID's two records differ in age by -14 to +13 years (never 0), in both directions, as
# in the real export: the file cannot tell which record is the more recent one.
REPEAT_AGE_GAP = (-14, 13)
MAX_BASE_AGE = 89
MAX_FAMILY_SIZE = 9
MAX_EXPERIENCE = 14
MIN_WORKING_AGE = 16  # experience never exceeds age - 16 (before corruption)

# Share of rows that are a repeated export: rows = unique + repeats, repeats = unique / 5.
REPEAT_SHARE_OF_CUSTOMERS = 0.2

# Missing-value rate per column, as seen in real exports (ID is never missing).
MISSING_RATES: dict[str, float] = {
    "Gender": 0.003,
    "Ever_Married": 0.02,
    "Age": 0.003,
    "Graduated": 0.01,
    "Profession": 0.015,
    "Work_Experience": 0.10,
    "Spending_Score": 0.003,
    "Family_Size": 0.04,
    "Var_1": 0.01,
}

# Bad values, as a fraction of rows. All together well under 1 % of rows.
FORMAT_VARIANT_RATE = 0.0003  # per categorical column: " Engineer", "lawyer ", "MALE", "yes"
IMPOSSIBLE_AGE_RATE = 0.0002
NEGATIVE_EXPERIENCE_RATE = 0.0002
UNKNOWN_CATEGORY_RATE = 0.0001  # per column (Profession, Var_1)

# IDs: a 6-digit start like the Kaggle export, then small random gaps (1 or 2).
ID_BASE = 458_982


def _pmf(weights: dict[str, float], categories: tuple[str, ...]) -> tuple[float, ...]:
    """Order a {category: weight} mapping by ``categories`` and normalise it."""
    unknown = set(weights) - set(categories)
    if unknown:
        raise ValueError(f"unknown categories in persona definition: {sorted(unknown)}")
    raw = [weights.get(c, 0.0) for c in categories]
    total = sum(raw)
    return tuple(w / total for w in raw)


def _sizes(weights: dict[int, float]) -> tuple[float, ...]:
    """Family-size weights {size: weight} → probabilities for sizes 1..MAX_FAMILY_SIZE."""
    raw = [weights.get(s, 0.0) for s in range(1, MAX_FAMILY_SIZE + 1)]
    total = sum(raw)
    return tuple(w / total for w in raw)


def _poisson(mean: float) -> tuple[float, ...]:
    """Poisson probabilities for experience 0..MAX_EXPERIENCE, truncated and renormalised."""
    raw = [math.exp(-mean) * mean**k / math.factorial(k) for k in range(MAX_EXPERIENCE + 1)]
    total = sum(raw)
    return tuple(w / total for w in raw)


def _geometric(mean: float) -> tuple[float, ...]:
    """Geometric probabilities (mode 0, long tail) for experience 0..MAX_EXPERIENCE."""
    q = mean / (1.0 + mean)
    raw = [(1 - q) * q**k for k in range(MAX_EXPERIENCE + 1)]
    total = sum(raw)
    return tuple(w / total for w in raw)


@dataclasses.dataclass(frozen=True)
class Persona:
    """How one planted segment's customers are drawn.

    Ages are a normal distribution truncated to [age_low, age_high] or, when
    ``age_sd`` is None, uniform on that range (the broad noise customers).
    """

    name: str
    share: float
    age_mean: float
    age_sd: float | None
    age_low: int
    age_high: int
    p_male: float
    p_married: float
    p_graduated: float
    professions: tuple[float, ...]
    spending: tuple[float, ...]
    family_sizes: tuple[float, ...]
    experience: tuple[float, ...]


# Calibrated to the real export behind the seed (10,695 rows, 8,363 IDs): professions artists
# 32.7 %, healthcare 16.5 %, entertainment 11.8 %, engineers 8.6 %, doctors 8.5 %, lawyers 7.8 %,
# executives 7.3 %, marketing 3.7 %, homemakers 3.0 %; spending low 60.5 %, average 24 %, high
# 15 %; every average or high spender married; lawyers 75 years on average, healthcare workers 27.
# The personas' shares and shapes are solved so that their mixture gives those marginals (the
# test checks them): homemakers being 3 % of all customers, the homemaker persona is the mid-life,
# mostly female, long-serving, married household of the seed's description, of varied professions.
# Spending is drawn among the married; the never-married spend Low (``_draw_customers``).
PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="core_professionals",
        share=0.42,
        age_mean=47,
        age_sd=9,
        age_low=MIN_AGE,
        age_high=MAX_BASE_AGE,
        p_male=0.55,
        p_married=0.75,
        p_graduated=0.75,
        professions=_pmf(
            {
                "Artist": 0.441,
                "Entertainment": 0.140,
                "Engineer": 0.151,
                "Doctor": 0.118,
                "Executive": 0.098,
                "Marketing": 0.035,
                "Lawyer": 0.010,
                "Homemaker": 0.003,
            },
            PROFESSIONS,
        ),
        spending=_pmf({"Low": 0.30, "Average": 0.48, "High": 0.22}, SPENDING_SCORES),
        family_sizes=_sizes({1: 0.05, 2: 0.30, 3: 0.30, 4: 0.25, 5: 0.07, 6: 0.03}),
        experience=_poisson(3.0),
    ),
    Persona(
        name="young_healthcare_singles",
        share=0.22,
        age_mean=26,
        age_sd=5,
        age_low=MIN_AGE,
        age_high=MAX_BASE_AGE,
        p_male=0.55,
        p_married=0.10,
        p_graduated=0.40,
        professions=_pmf(
            {
                "Healthcare": 0.72,
                "Artist": 0.08,
                "Entertainment": 0.08,
                "Doctor": 0.06,
                "Marketing": 0.04,
                "Engineer": 0.02,
            },
            PROFESSIONS,
        ),
        spending=_pmf({"Low": 0.50, "Average": 0.40, "High": 0.10}, SPENDING_SCORES),
        family_sizes=_sizes({2: 0.02, 3: 0.05, 4: 0.30, 5: 0.33, 6: 0.20, 7: 0.06, 8: 0.03, 9: 0.01}),
        experience=(0.45, 0.30, 0.15, 0.10) + (0.0,) * (MAX_EXPERIENCE - 3),
    ),
    Persona(
        name="senior_lawyers",
        share=0.10,
        age_mean=80,
        age_sd=6,
        age_low=MIN_AGE,
        age_high=MAX_BASE_AGE,
        p_male=0.55,
        p_married=0.95,
        p_graduated=0.65,
        professions=_pmf(
            {
                "Lawyer": 0.66,
                "Executive": 0.15,
                "Artist": 0.08,
                "Doctor": 0.04,
                "Entertainment": 0.04,
                "Engineer": 0.03,
            },
            PROFESSIONS,
        ),
        spending=_pmf({"Low": 0.10, "Average": 0.35, "High": 0.55}, SPENDING_SCORES),
        family_sizes=_sizes({1: 0.45, 2: 0.40, 3: 0.10, 4: 0.05}),
        experience=_poisson(1.0),
    ),
    Persona(
        name="homemakers",
        share=0.16,
        age_mean=38,
        age_sd=8,
        age_low=MIN_AGE,
        age_high=MAX_BASE_AGE,
        p_male=0.20,
        p_married=0.85,
        p_graduated=0.50,
        professions=_pmf(
            {
                "Artist": 0.46,
                "Homemaker": 0.16,
                "Entertainment": 0.16,
                "Marketing": 0.06,
                "Doctor": 0.06,
                "Executive": 0.06,
                "Engineer": 0.04,
            },
            PROFESSIONS,
        ),
        spending=_pmf({"Low": 0.70, "Average": 0.22, "High": 0.08}, SPENDING_SCORES),
        family_sizes=_sizes({1: 0.02, 2: 0.10, 3: 0.40, 4: 0.35, 5: 0.10, 6: 0.03}),
        experience=_poisson(7.0),
    ),
    Persona(
        # Broad background customers, drawn from the real export's marginals (healthcare workers,
        # young in the real file, mostly belong to their persona: the rest counts as artists).
        name="noise",
        share=0.10,
        age_mean=0,
        age_sd=None,
        age_low=MIN_AGE,
        age_high=MAX_BASE_AGE,
        p_male=0.55,
        p_married=0.55,
        p_graduated=0.60,
        professions=_pmf(
            {
                "Artist": 0.452,
                "Healthcare": 0.040,
                "Entertainment": 0.118,
                "Engineer": 0.086,
                "Doctor": 0.085,
                "Lawyer": 0.078,
                "Executive": 0.073,
                "Marketing": 0.037,
                "Homemaker": 0.03,
            },
            PROFESSIONS,
        ),
        spending=_pmf({"Low": 0.30, "Average": 0.45, "High": 0.25}, SPENDING_SCORES),
        family_sizes=_sizes({1: 0.18, 2: 0.30, 3: 0.18, 4: 0.17, 5: 0.08, 6: 0.05, 7: 0.02, 8: 0.01, 9: 0.01}),
        experience=_geometric(2.6),
    ),
)
assert tuple(p.name for p in PERSONAS) == PLANTED_SEGMENTS


def _categorical(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray | None, size: int) -> np.ndarray:
    """Draw ``size`` codes 0..K-1 by inverse CDF, each from the row of ``probs`` its ``group`` selects.

    ``probs`` is (groups, K). All groups are sampled in one ``searchsorted`` by
    stacking the CDFs as g + cdf_g: a uniform shifted by the group number lands
    in its own group's band. This avoids a Python loop over groups and the
    (rows x K) matrix that indexing the CDFs per row would allocate. The final
    clip only guards against u + g rounding up to g + 1 (a ~1e-16 event).
    """
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    groups, k = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    stacked = (cdf + np.arange(groups)[:, None]).ravel()
    u = rng.random(size)
    if group is not None:
        u += group
    codes = np.searchsorted(stacked, u, side="right")
    del u
    if group is not None:
        codes -= group.astype(np.int64) * k
    return np.clip(codes, 0, k - 1, out=codes).astype(np.int16)


def _persona_matrix(attribute: str) -> np.ndarray:
    """(personas, K) probability matrix of one categorical attribute, rows in persona-code order."""
    return np.array([getattr(p, attribute) for p in PERSONAS], dtype=np.float64)


def _persona_vector(attribute: str) -> np.ndarray:
    """One scalar parameter per persona, indexable by persona code."""
    return np.array([getattr(p, attribute) for p in PERSONAS], dtype=np.float64)


def _ages(rng: np.random.Generator, segment: np.ndarray) -> np.ndarray:
    """Integer ages per customer: each persona's truncated normal, or uniform where it has no sd.

    Out-of-range draws are redrawn (a few rounds at most: the bounds lie well
    outside every persona's bulk), which keeps the truncation free of pile-ups at the bounds.
    """
    uniform = np.array([p.age_sd is None for p in PERSONAS])
    mean = _persona_vector("age_mean")[segment]
    sd = np.array([p.age_sd or 1.0 for p in PERSONAS])[segment]
    low = _persona_vector("age_low")[segment]
    high = _persona_vector("age_high")[segment]
    ages = np.rint(rng.normal(mean, sd))
    flat = uniform[segment]
    ages[flat] = np.floor(low[flat] + rng.random(int(flat.sum())) * (high[flat] - low[flat] + 1))
    bad = (ages < low) | (ages > high)
    while bad.any():
        ages[bad] = np.rint(rng.normal(mean[bad], sd[bad]))
        bad = (ages < low) | (ages > high)
    return ages.astype(np.int16)


@dataclasses.dataclass
class _Columns:
    """Integer codes for every column (one entry per record), before they become strings."""

    gender: np.ndarray  # index into GENDERS
    married: np.ndarray  # index into YES_NO
    age: np.ndarray  # years
    graduated: np.ndarray  # index into YES_NO
    profession: np.ndarray  # index into PROFESSIONS
    experience: np.ndarray  # years
    spending: np.ndarray  # index into SPENDING_SCORES
    family: np.ndarray  # persons
    var_1: np.ndarray  # index into VAR_1

    def take(self, index: np.ndarray) -> _Columns:
        """The records at ``index``."""
        return _Columns(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})

    def interleave(self, other: _Columns, is_other: np.ndarray) -> _Columns:
        """Records of ``self`` where ``is_other`` is False and of ``other`` where True, in order.

        Two streaming masked assignments per column, far cheaper than a random
        gather through a full row permutation.
        """
        out = {}
        for name in self.__dataclass_fields__:
            column = np.empty(len(is_other), dtype=getattr(self, name).dtype)
            column[~is_other] = getattr(self, name)
            column[is_other] = getattr(other, name)
            out[name] = column
        return _Columns(**out)


def _draw_customers(rng: np.random.Generator, segment: np.ndarray) -> _Columns:
    """Draw every customer's attributes from the persona ``segment`` planted them in."""
    n = len(segment)
    age = _ages(rng, segment)
    experience = _categorical(rng, _persona_matrix("experience"), segment, n)
    # Nobody has worked longer than they have been of working age.
    experience = np.minimum(experience, np.maximum(age - MIN_WORKING_AGE, 0)).astype(np.int16)
    married = (rng.random(n) >= _persona_vector("p_married")[segment]).astype(np.int16)  # 0 = Yes
    # as in the real export, only the married spend more than Low
    spending = _categorical(rng, _persona_matrix("spending"), segment, n)
    spending[married != YES_NO.index("Yes")] = SPENDING_SCORES.index("Low")
    return _Columns(
        gender=(rng.random(n) >= _persona_vector("p_male")[segment]).astype(np.int16),  # 0 = Male
        married=married,
        age=age,
        graduated=(rng.random(n) >= _persona_vector("p_graduated")[segment]).astype(np.int16),  # 0 = Yes
        profession=_categorical(rng, _persona_matrix("professions"), segment, n),
        experience=experience,
        spending=spending,
        family=(_categorical(rng, _persona_matrix("family_sizes"), segment, n) + 1).astype(np.int16),
        var_1=_categorical(rng, np.array(VAR_1_PROBS), None, n),
    )


def _later_exports(rng: np.random.Generator, earlier: _Columns) -> _Columns:
    """The repeated export of each customer in ``earlier``: a little changed, and not in a knowable order.

    The age differs by REPEAT_AGE_GAP years, up or down (a gap that would leave the age range
    goes the other way), experience by as much where it can; some customers married in
    between, some households grew or shrank by one, some moved a spending level (only the
    married spend above Low, as in every record).
    """
    n = len(earlier.age)
    low, high = REPEAT_AGE_GAP
    years = rng.integers(low, high, size=n).astype(np.int16)  # low..high-1, then 0 → high
    years[years == 0] = high
    age = earlier.age + years
    outside = (age < MIN_AGE) | (age > MAX_AGE)
    age[outside] = earlier.age[outside] - years[outside]
    years = (age - earlier.age).astype(np.int16)

    yes, no = YES_NO.index("Yes"), YES_NO.index("No")
    married = np.where((earlier.married == no) & (rng.random(n) < 0.30), yes, earlier.married).astype(np.int16)

    family_change = rng.random(n) < 0.15
    family_step = np.where(rng.random(n) < 0.5, -1, 1)
    family_step = np.where(earlier.family == 1, 1, np.where(earlier.family == MAX_FAMILY_SIZE, -1, family_step))

    # Spending moves to an adjacent level (Low<->Average<->High).
    spending_change = rng.random(n) < 0.12
    top = len(SPENDING_SCORES) - 1
    spending_step = np.where(rng.random(n) < 0.5, -1, 1)
    spending_step = np.where(earlier.spending == 0, 1, np.where(earlier.spending == top, -1, spending_step))
    spending = (earlier.spending + np.where(spending_change, spending_step, 0)).astype(np.int16)
    spending[married != yes] = SPENDING_SCORES.index("Low")

    experience = np.clip(earlier.experience + years, 0, np.maximum(age - MIN_WORKING_AGE, 0))
    return dataclasses.replace(
        earlier,
        age=age.astype(np.int16),
        experience=experience.astype(np.int16),
        married=married,
        family=(earlier.family + np.where(family_change, family_step, 0)).astype(np.int16),
        spending=spending,
    )


def _bad_count(rows: int, rate: float) -> int:
    """How many rows get one kind of bad value: proportional, at least one in a sizeable file."""
    count = int(rows * rate + 0.5)
    return max(count, 1) if rows >= 1_000 else count


def _pick(rng: np.random.Generator, population: int, count: int) -> np.ndarray:
    """``count`` distinct indices out of ``population``; O(count) while count is a small share."""
    count = min(count, population)
    return rng.choice(population, size=count, replace=False) if count else np.empty(0, dtype=np.int64)


def _category_array(
    codes: np.ndarray,
    missing: np.ndarray,
    categories: tuple[str, ...],
    variant: np.ndarray,
    unknown: tuple[str, ...] = (),
) -> pa.Array:
    """Strings for a categorical column by ``take`` from a small dictionary.

    The dictionary holds the valid values, then four malformed variants of each
    (leading space, trailing space, UPPER, lower), then any unknown values.
    ``variant`` is 0 for a clean value and 1..4 for a malformed one; codes >=
    len(categories) point at ``unknown``.
    """
    k = len(categories)
    dictionary = (
        list(categories)
        + [" " + c for c in categories]
        + [c + " " for c in categories]
        + [c.upper() for c in categories]
        + [c.lower() for c in categories]
        + list(unknown)
    )
    index = np.where(codes < k, codes + variant.astype(np.int32) * k, 5 * k + (codes - k)).astype(np.int32)
    return pa.array(dictionary, pa.string()).take(pa.array(index, mask=missing))


def _number_array(values: np.ndarray, missing: np.ndarray, suffix: str = "") -> pa.Array:
    """Strings for a small-integer column via a dictionary of its value range ("4" or "4.0")."""
    if len(values) == 0:
        return pa.array([], pa.string())
    low, high = int(values.min()), int(values.max())
    dictionary = pa.array([f"{v}{suffix}" for v in range(low, high + 1)], pa.string())
    return dictionary.take(pa.array((values - low).astype(np.int32), mask=missing))


def generate_customers(rows: int = 10_000, seed: int = 42) -> tuple[pa.Table, pa.Table]:
    """Generate a raw CRM export of exactly ``rows`` rows and its planted ground truth.

    Returns ``(export, truth)``. ``export`` has the columns in :data:`COLUMNS`,
    all strings, null where a value is missing; about a sixth of its rows are a
    repeated export of a customer who also appears elsewhere in the file.
    ``truth`` has one row per unique customer, sorted by ID: ``ID`` (string)
    and ``planted_segment`` (one of :data:`PLANTED_SEGMENTS`). The same
    ``(rows, seed)`` always gives the same tables.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (numpy seeds are non-negative), got {seed}")
    rng = np.random.default_rng(seed)

    # rows = unique + repeats with repeats ≈ unique / 5, so about a fifth of IDs appear twice.
    repeats = int(rows * REPEAT_SHARE_OF_CUSTOMERS / (1 + REPEAT_SHARE_OF_CUSTOMERS) + 0.5)
    unique = rows - repeats

    # Customers in random order, each planted in a persona (or noise) independently.
    shares = np.array([p.share for p in PERSONAS])
    segment = _categorical(rng, shares / shares.sum(), None, unique).astype(np.int8)
    customers = _draw_customers(rng, segment)

    # IDs ascending with random gaps (memory O(customers), not O(ID range)),
    # then handed out in random order so that an ID says nothing about persona or position.
    sorted_ids = ID_BASE + np.cumsum(rng.integers(1, 3, size=unique, dtype=np.int64)) - 1
    owner = rng.permutation(unique)  # customer i gets sorted_ids[owner[i]]
    customer_ids = sorted_ids[owner]
    truth_segment = np.empty(unique, dtype=np.int8)
    truth_segment[owner] = segment
    del owner, segment

    # Repeated exports: a random fifth of customers appears a second time, later,
    # at a random row of the file (customers keep their random order around them).
    repeated = _pick(rng, unique, repeats)
    is_later = np.zeros(rows, dtype=bool)
    is_later[_pick(rng, rows, repeats)] = True
    records = customers.interleave(_later_exports(rng, customers.take(repeated)), is_later)
    ids = np.empty(rows, dtype=np.int64)
    ids[~is_later] = customer_ids
    ids[is_later] = customer_ids[repeated]
    del customers, customer_ids
    customer_row = np.flatnonzero(~is_later)  # the row of each customer's first record

    missing = {column: rng.random(rows, dtype=np.float32) < rate for column, rate in MISSING_RATES.items()}
    # A pair must never be an exact copy: their ages always differ (REPEAT_AGE_GAP),
    # so a later record loses its age only when the earlier one still has it.
    missing["Age"][is_later] &= ~missing["Age"][customer_row[repeated]]

    # Bad values. Numeric corruption goes on first records only, so the pair relation
    # (ages apart by a known gap, experience moved with it) holds wherever both values are sane.
    index = customer_row[_pick(rng, unique, _bad_count(rows, IMPOSSIBLE_AGE_RATE))]
    records.age[index] = rng.choice(np.array(IMPOSSIBLE_AGES, dtype=np.int16), size=len(index))
    missing["Age"][index] = False
    index = customer_row[_pick(rng, unique, _bad_count(rows, NEGATIVE_EXPERIENCE_RATE))]
    records.experience[index] = rng.choice(np.array(NEGATIVE_EXPERIENCE, dtype=np.int16), size=len(index))
    missing["Work_Experience"][index] = False
    del customer_row, repeated, is_later

    categorical = {
        "Gender": ("gender", GENDERS, ()),
        "Ever_Married": ("married", YES_NO, ()),
        "Graduated": ("graduated", YES_NO, ()),
        "Profession": ("profession", PROFESSIONS, (UNKNOWN_PROFESSION,)),
        "Spending_Score": ("spending", SPENDING_SCORES, ()),
        "Var_1": ("var_1", VAR_1, (UNKNOWN_VAR_1,)),
    }
    arrays: dict[str, pa.Array] = {"ID": pa.array(ids, pa.int64()).cast(pa.string())}
    del ids
    for column, (field, categories, unknown) in categorical.items():
        codes = getattr(records, field)
        variant = np.zeros(rows, dtype=np.int8)
        index = _pick(rng, rows, _bad_count(rows, FORMAT_VARIANT_RATE))
        variant[index] = rng.integers(1, 5, size=len(index))
        missing[column][index] = False
        if unknown:
            index = _pick(rng, rows, _bad_count(rows, UNKNOWN_CATEGORY_RATE))
            codes[index] = len(categories)  # the (first) unknown value
            variant[index] = 0
            missing[column][index] = False
        arrays[column] = _category_array(codes, missing.pop(column), categories, variant, unknown)
        setattr(records, field, None)
    arrays["Age"] = _number_array(records.age, missing.pop("Age"))
    arrays["Work_Experience"] = _number_array(records.experience, missing.pop("Work_Experience"), ".0")
    arrays["Family_Size"] = _number_array(records.family, missing.pop("Family_Size"), ".0")
    export = pa.table([arrays[c] for c in COLUMNS], names=list(COLUMNS))

    truth = pa.table(
        {
            "ID": pa.array(sorted_ids, pa.int64()).cast(pa.string()),
            "planted_segment": pa.array(PLANTED_SEGMENTS, pa.string()).take(pa.array(truth_segment)),
        }
    )
    return export, truth


# The cleaned feature table's columns (the default declaration's mart) the oracle reads.
ORACLE_COLUMNS: dict[str, str] = {
    "age": "age",
    "gender": "gender",
    "married": "is_married",
    "graduated": "has_degree",
    "profession": "profession",
    "experience": "work_experience",
    "spending": "spending_level",
    "family": "family_size",
    "merged": "records_merged",  # optional: records merged into the customer by deduplication
}
_IMPOSSIBLE = 1e-9  # probability of a value a persona cannot produce (cleaning may still show it)


def _kept_age_shifts() -> dict[int, float]:
    """Years between a repeated customer's first record and the record deduplication keeps (the older).

    The repeat's gap is uniform on REPEAT_AGE_GAP (0 redrawn as its top); the cleaning keeps the
    older record, so a negative gap keeps the first record (shift 0).
    """
    low, high = REPEAT_AGE_GAP
    gaps = [high if gap == 0 else gap for gap in range(low, high)]
    shifts: dict[int, float] = {}
    for gap in gaps:
        shifts[max(gap, 0)] = shifts.get(max(gap, 0), 0.0) + 1 / len(gaps)
    return shifts


def persona_log_likelihoods(features: pa.Table, columns: dict[str, str] | None = None) -> np.ndarray:
    """log P(persona) + log P(customer's cleaned values | persona) from the planted parameters: (n, personas).

    The values are those of the cleaned table the pipeline reads, so the oracle sees what any
    method sees; only the parameters are privileged, and the generator's knowledge of how the
    cleaning changed them: a merged customer's age and experience moved by the kept record's
    shift (``_kept_age_shifts``), and missing values imputed by the column's median or mode.
    """
    names = {**ORACLE_COLUMNS, **(columns or {})}

    def values(key: str) -> np.ndarray:
        return np.asarray(features.column(names[key]).to_numpy(zero_copy_only=False))

    def log_of(probabilities: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(probabilities, _IMPOSSIBLE))

    def pick(table: tuple[float, ...], index: np.ndarray) -> np.ndarray:
        padded = np.append(np.asarray(table), 0.0)  # out-of-range indices land on the 0 at the end
        return padded[np.where((index >= 0) & (index < len(table)), index, len(table))]

    def imputed(probability: np.ndarray, observed: np.ndarray, column: str) -> np.ndarray:
        """A missing value (rate of the raw column) became the column's most common value."""
        kinds, counts = np.unique(observed, return_counts=True)
        rate = MISSING_RATES[column]
        return (1 - rate) * probability + rate * (observed == kinds[counts.argmax()])

    age = values("age").astype(np.float64)
    male = values("gender") == "Male"
    married = values("married").astype(bool)
    graduated = values("graduated").astype(bool)
    profession = np.array([PROFESSIONS.index(v) if v in PROFESSIONS else -1 for v in values("profession")])
    experience = values("experience").astype(np.int64)
    spending = values("spending").astype(np.int64)
    family = values("family").astype(np.int64)
    merged = (
        values("merged").astype(np.int64) > 1 if names["merged"] in features.column_names else np.zeros(len(age), bool)
    )
    shifts = _kept_age_shifts()
    out = np.empty((features.num_rows, len(PERSONAS)))
    for k, persona in enumerate(PERSONAS):

        def age_probability(ages: np.ndarray, persona: Persona = persona) -> np.ndarray:
            if persona.age_sd is None:
                inside = (ages >= persona.age_low) & (ages <= persona.age_high)
                return np.where(inside, 1.0 / (persona.age_high - persona.age_low + 1), 0.0)
            mean, sd = persona.age_mean, persona.age_sd  # the rounded normal, cut at the persona's bounds
            cut = norm.cdf(persona.age_high + 0.5, mean, sd) - norm.cdf(persona.age_low - 0.5, mean, sd)
            inside = (ages >= persona.age_low) & (ages <= persona.age_high)
            return np.where(inside, (norm.cdf(ages + 0.5, mean, sd) - norm.cdf(ages - 0.5, mean, sd)) / cut, 0.0)

        # age and experience move together between a customer's records
        age_and_experience = age_probability(age) * pick(persona.experience, experience)
        if merged.any():
            moved = sum(
                weight * age_probability(age - shift) * pick(persona.experience, experience - shift)
                for shift, weight in shifts.items()
            )
            age_and_experience = np.where(merged, moved, age_and_experience)
        spending_probability = np.where(married, pick(persona.spending, spending), spending == 0)
        out[:, k] = (
            np.log(persona.share)
            + log_of(imputed(age_and_experience, experience, "Work_Experience"))
            + log_of(np.where(male, persona.p_male, 1 - persona.p_male))
            + log_of(np.where(married, persona.p_married, 1 - persona.p_married))
            + log_of(np.where(graduated, persona.p_graduated, 1 - persona.p_graduated))
            + log_of(imputed(pick(persona.professions, profession), profession, "Profession"))
            + log_of(spending_probability.astype(np.float64))
            + log_of(imputed(pick(persona.family_sizes, family - 1), family, "Family_Size"))
        )
    return out


def bayes_oracle(features: pa.Table, columns: dict[str, str] | None = None, noise: bool = True) -> pa.Array:
    """The most probable planted persona of each customer, from the generator's own parameters.

    No method can agree better on average with the planted labels: its agreement is the ceiling
    against which `make bench` sets every algorithm. ``noise=False`` chooses among the four
    personas only: the ceiling for the persona customers (a customer the oracle calls noise
    would otherwise form a fifth group among them, which no four-segment answer pays for).
    """
    likelihoods = persona_log_likelihoods(features, columns)
    if not noise:
        likelihoods[:, PLANTED_SEGMENTS.index("noise")] = -np.inf
    best = likelihoods.argmax(axis=1)
    return pa.array(PLANTED_SEGMENTS, pa.string()).take(pa.array(best))


def write_customers(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as CSV or Parquet (zstd), chosen by the suffix.

    The file appears atomically (written to a temporary file in the same
    directory, then renamed over ``path``), so an interrupted run never leaves a
    half-written export for the pipeline to read. CSV is written by DuckDB's
    COPY because it quotes only where needed and writes nulls as empty fields,
    i.e. it looks like a plain export (pyarrow quotes every string).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"cannot write {path}: unsupported suffix {path.suffix!r}; use .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden, unique sibling (same file system, so os.replace is an atomic rename). Not
    # tempfile.mkstemp: that creates the file 0600, and the export should get the usual umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if suffix == ".parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            with duckdb.connect() as con:
                con.execute("SET enable_progress_bar = false")  # it would draw on the user's terminal
                con.register("export_table", table)
                escaped = str(tmp).replace("'", "''")
                con.execute(
                    f"COPY export_table TO '{escaped}' "
                    "(FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NULLSTR '', COMPRESSION 'none')"
                )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


LABEL_COLUMN = "Segmentation"
PLANTED_LETTERS = {"core_professionals": "A", "young_healthcare_singles": "B", "senior_lawyers": "C", "homemakers": "D"}


def with_segmentation_labels(export: pa.Table, truth: pa.Table, seed: int) -> pa.Table:
    """Add a company-style `Segmentation` column (A–D) from the planted personas.

    Like a real CRM's own segmentation it is imperfect: noise customers carry a random
    letter. It lets the pipeline's comparison with existing labels be tried end to end.
    """
    planted = truth.column("planted_segment").take(pc.index_in(export.column("ID"), truth.column("ID")))
    letters = np.array(list(PLANTED_LETTERS.values()))
    random_letters = letters[np.random.default_rng(seed + 7).integers(0, len(letters), export.num_rows)]
    mapped = np.array([PLANTED_LETTERS.get(p, "") for p in planted.to_pylist()], dtype=object)
    labels = np.where(mapped == "", random_letters, mapped)
    return export.append_column(LABEL_COLUMN, pa.array(labels.tolist(), pa.string()))


def generate(path: Path, rows: int, seed: int, truth_path: Path | None = None, labels: bool = False) -> None:
    """Generate the default export and write it (and, if asked, the planted truth) by suffix."""
    path = Path(path)
    started = time.perf_counter()
    export, truth = generate_customers(rows=rows, seed=seed)
    if labels:
        export = with_segmentation_labels(export, truth, seed)
    generated = time.perf_counter()
    write_customers(export, path)
    logger.info(
        "wrote %d rows (%d unique customers, seed %d) to %s in %.2f s (generate %.2f s, write %.2f s)",
        export.num_rows,
        truth.num_rows,
        seed,
        path,
        time.perf_counter() - started,
        generated - started,
        time.perf_counter() - generated,
    )
    if truth_path is not None:
        truth_started = time.perf_counter()
        write_customers(truth, Path(truth_path))
        logger.info(
            "wrote planted truth for %d customers to %s in %.2f s",
            truth.num_rows,
            truth_path,
            time.perf_counter() - truth_started,
        )
