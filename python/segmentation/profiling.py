"""Profiling the user's file with DuckDB: what `make init` infers a declaration from.

The file is read by the ingest step itself (`load_raw_file`, into a scratch DuckDB file),
so init sees exactly the columns and text that `make all` will load: same encoding,
separator, `sep=` line, header and malformed rows. Counts, missing values, distinct
values and date ranges are taken over every row; the costlier statistics (what each
column parses as, numeric moments) on a seeded reservoir sample of at most
`SAMPLE_ROWS` rows, so a file of millions of rows is profiled in seconds.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import duckdb

from .dialect import CsvOptions
from .ingest import load_raw_file
from .profiles import BOOLEAN_TOKENS, DATE_FORMATS, MISSING_CANDIDATES, MISSING_TOKENS, ColumnProfile, TableProfile
from .warehouse import quote_identifier, quote_literal

log = logging.getLogger(__name__)

SAMPLE_ROWS = 200_000
EXACT_DISTINCT_ROWS = 2_000_000  # above, distinct values are counted approximately (HyperLogLog)
DATE_PROBE_ROWS = 2_000  # values tried as dates before the whole sample is
TOP_VALUES = 200  # every spelling of a category is seen when it has at most this many
INTEGER = r"[+-]?\d+"
DOT_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
COMMA_NUMBER = r"[+-]?\d+(,\d+)?|[+-]?\d{1,3}([\x{00a0} .]\d{3})+(,\d+)?"


def _sql_list(values) -> str:
    return "(" + ", ".join(quote_literal(v) for v in values) + ")"


def _parsed_date(value: str, fmt: str) -> str:
    """A date parsed with `fmt`, null when it does not parse or lands outside 1800–2199."""
    parsed = f"try_strptime({value}, {quote_literal(fmt)})"
    return f"case when year({parsed}) between 1800 and 2199 then {parsed}::date end"


def _loaded_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(header as written, name in raw.customers) of each column, in file order."""
    return con.execute("select column_name, loaded_as from raw.load_columns order by column_position").fetchall()


def _native_types(con: duckdb.DuckDBPyConnection, path: Path, kind: str) -> dict[str, str]:
    if kind != "parquet":
        return {}
    rows = con.execute(f"describe select * from read_parquet({quote_literal(str(path))})").fetchall()
    return {row[0]: str(row[1]) for row in rows}


def _profile_column(
    con: duckdb.DuckDBPyConnection, header: str, loaded: str, position: int, rows: int, native: str
) -> ColumnProfile:
    column = quote_identifier(loaded)
    value = f"trim({column})"
    missing = f"({column} is null or lower({value}) in {_sql_list(MISSING_TOKENS)})"
    candidate = f"lower({value}) in {_sql_list(MISSING_CANDIDATES)}"
    count_distinct = "count(distinct " if rows <= EXACT_DISTINCT_ROWS else "approx_count_distinct("
    missing_count, distinct = con.execute(
        f"select count(*) filter (where {missing}), {count_distinct}{value}) filter (where not {missing}) "
        "from raw.customers"
    ).fetchone()
    distinct = min(distinct, rows - missing_count)
    source = "raw.customers" if distinct <= 5 * TOP_VALUES else "profile_sample"
    top = con.execute(
        f"select {value} as v, count(*) as n from {source} where {column} is not null group by v "
        f"order by n desc, v limit {TOP_VALUES + 1}"
    ).fetchall()
    tokens = {v: n for v, n in top if v.lower() in MISSING_TOKENS or v.lower() in MISSING_CANDIDATES}
    present = f"select {value} as v from profile_sample where not {missing} and not ({candidate})"
    formats = ", ".join(f"avg(({_parsed_date('v', f)} is not null)::int)" for f in DATE_FORMATS)
    probe = con.execute(f"select {formats} from ({present} limit {DATE_PROBE_ROWS})").fetchone()
    datelike = max((share or 0.0 for share in probe), default=0.0) >= 0.5  # parse dates only where worth it
    shares = con.execute(
        f"select count(*), avg(regexp_full_match(v, '{INTEGER}')::int), "
        f"avg(regexp_full_match(v, '{DOT_NUMBER}')::int), avg(regexp_full_match(v, '{COMMA_NUMBER}')::int), "
        f"avg((lower(v) in {_sql_list(BOOLEAN_TOKENS)})::int), avg(length(v)), max(length(v)), "
        f"avg(contains(v, ' ')::int){', ' + formats if datelike else ''} from ({present})"
    ).fetchone()
    sampled, share_int, share_dot, share_comma, share_bool, mean_length, max_length, share_space = shares[:8]
    date_shares = dict(zip(DATE_FORMATS, (s or 0.0 for s in shares[8:]), strict=True)) if datelike else {}
    comma = (share_comma or 0) > (share_dot or 0)
    number = "try_cast(v as double)"
    if comma:  # thousands separators (space, no-break space, dot) out, then the decimal comma as a dot
        number = "try_cast(replace(regexp_replace(v, '[\u00a0 .](\\d{3})', '\\1', 'g'), ',', '.') as double)"
    stats = con.execute(
        f"select min(x), max(x), avg(x), median(x), quantile_cont(x, 0.01), quantile_cont(x, 0.99), "
        f"skewness(x), avg((x < 0)::int) from (select {number} as x from ({present})) where x is not null"
    ).fetchone()
    date_ranges: dict[str, tuple[str, str]] = {}
    for fmt, share in date_shares.items():
        if share > 0:
            low, high = con.execute(
                f"select min(d), max(d) from (select {_parsed_date(value, fmt)} as d from raw.customers) "
                "where d is not null"
            ).fetchone()
            if low is not None:
                date_ranges[fmt] = (low.isoformat(), high.isoformat())
    return ColumnProfile(
        name=header,
        position=position,
        duckdb_type=native or "VARCHAR",
        rows=rows,
        missing=missing_count,
        distinct=distinct,
        top=tuple((v, n) for v, n in top if v not in tokens)[:TOP_VALUES],
        complete_top=len(top) <= TOP_VALUES and source == "raw.customers",
        tokens=tokens,
        sampled=sampled,
        share_integer=share_int or 0.0,
        share_number=max(share_dot or 0.0, share_comma or 0.0),
        decimal_comma=comma and (share_comma or 0) > (share_int or 0),
        share_boolean=share_bool or 0.0,
        date_shares=date_shares,
        date_ranges=date_ranges,
        mean_length=mean_length or 0.0,
        max_length=max_length or 0,
        share_with_space=share_space or 0.0,
        minimum=stats[0],
        maximum=stats[1],
        mean=stats[2],
        median=stats[3],
        p01=stats[4],
        p99=stats[5],
        skewness=stats[6],
        share_negative=stats[7] or 0.0,
    )


def profile_file(
    path: Path, options: CsvOptions | None = None, sample_rows: int = SAMPLE_ROWS, seed: int = 42
) -> TableProfile:
    """Profile every column of a CSV or Parquet file, read exactly as `make all` will read it."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="segmentation-init-") as scratch:
        con = duckdb.connect(str(Path(scratch) / "profile.duckdb"))
        try:
            con.execute("set enable_progress_bar = false")
            ingest_log = logging.getLogger("segmentation.ingest")
            level = ingest_log.level
            ingest_log.setLevel(logging.WARNING)  # its "extra columns ignored" would mislead here
            try:
                summary = load_raw_file(con, path, [], options)
            finally:
                ingest_log.setLevel(level)
            rows = con.execute("select count(*) from raw.customers").fetchone()[0]
            sample = f" using sample reservoir({sample_rows} rows) repeatable ({seed})" if rows > sample_rows else ""
            con.execute(f"create temp table profile_sample as select * from raw.customers{sample}")
            native = _native_types(con, path, summary.file_format)
            columns = [
                _profile_column(con, header, loaded, position, rows, native.get(header, ""))
                for position, (header, loaded) in enumerate(_loaded_columns(con))
            ]
        finally:
            con.close()
    log.info("profiled %d columns of %s rows (%s)", len(columns), f"{rows:,}", path.name)
    return TableProfile(
        source=path.name,
        rows=rows,
        columns=tuple(columns),
        file_format=summary.file_format,
        separator=summary.separator,
        encoding=summary.encoding,
        rejected_rows=summary.rejected_rows,
    )
