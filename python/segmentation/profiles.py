"""What profiling measures on each column: the contract between `profiling` (DuckDB) and `inference` (pure).

The token lists say what the declaration reads as missing or as yes/no by default
(docs/declaration.md), and which date formats init tries; profiling measures how much
of each column they match, inference decides from those shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# spellings of "missing" the declaration knows by default (compared lower-cased)
MISSING_TOKENS = ("", "na", "n/a", "null", "none", "-", "?", "#n/a", "nan")
# other spellings exports use; init declares the ones it sees
MISSING_CANDIDATES = (
    "unknown", "inconnu", "inconnue", "nc", "n.c.", "nr", "n.r.", "nd", "n/d", "n.d.", "n.a.", "missing",
    "manquant", "non renseigné", "non renseigne", "non communiqué", "(blank)", "(vide)", "nil", "--", "#null!",
    "#value!", "not available",
)  # fmt: skip
CODE_TOKENS = ("nc", "n.c.", "nr", "n.r.", "nd", "n/d", "n.d.")  # could be a real level of a category
BOOLEAN_TOKENS = ("yes", "no", "oui", "non", "y", "n", "1", "0", "true", "false", "vrai", "faux")
TRUE_TOKENS = ("yes", "oui", "y", "1", "true", "vrai")
DATE_FORMATS = (
    "%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%Y/%m/%d", "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M",
)  # fmt: skip


@dataclass(frozen=True)
class ColumnProfile:
    """What DuckDB measured on one column (shares are of the sampled non-missing values)."""

    name: str
    position: int
    rows: int
    missing: int  # empty or a default missing token
    distinct: int  # distinct non-missing values (approximate on large tables)
    top: tuple[tuple[str, int], ...] = ()  # trimmed values as written, most frequent first
    complete_top: bool = True  # `top` holds every distinct value, counted over every row
    tokens: dict[str, int] = field(default_factory=dict)  # missing-like spellings seen, as written
    duckdb_type: str = "VARCHAR"
    sampled: int = 0
    share_integer: float = 0.0
    share_number: float = 0.0
    decimal_comma: bool = False
    share_boolean: float = 0.0
    date_shares: dict[str, float] = field(default_factory=dict)
    date_ranges: dict[str, tuple[str, str]] = field(default_factory=dict)  # format → (min, max) ISO dates
    mean_length: float = 0.0
    max_length: int = 0
    share_with_space: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    median: float | None = None
    p01: float | None = None
    p99: float | None = None
    skewness: float | None = None
    share_negative: float = 0.0

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def top_share(self) -> float:
        return self.top[0][1] / self.present if self.top and self.present else 0.0


@dataclass(frozen=True)
class TableProfile:
    source: str  # file name
    rows: int
    columns: tuple[ColumnProfile, ...]
    file_format: str = "csv"
    separator: str = ","
    encoding: str = "utf-8"
    rejected_rows: int = 0
