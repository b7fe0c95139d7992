"""Loading the user's export into `raw.customers`: the "EL" before dbt's "T".

The file is checked first (exists, not empty, really CSV or Parquet, its encoding
and separator, the required columns) so that every mistake ends in one clear
message, and copied as text so that a bad value becomes a quarantined row in dbt
rather than a load failure. A row that cannot even be split into the header's
fields is kept too, in `raw.customers_rejected`, and quarantined by dbt: no row of
the file is ever dropped without a trace.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .dialect import CsvDialect, CsvOptions, file_kind, normalise_name, sniff_csv, utf8_copy
from .errors import UserError
from .warehouse import quote_identifier, quote_literal

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 32 << 20  # longer lines are quarantined as malformed rows, not a load failure
RESERVED_NAMES = ("source_row_number",)


@dataclass(frozen=True)
class LoadSummary:
    source_file: str
    file_format: str
    rows: int  # rows loaded into raw.customers
    columns: tuple[str, ...]
    extra_columns: tuple[str, ...]
    rejected_rows: int = 0  # rows kept in raw.customers_rejected (could not be split into fields)
    encoding: str = ""
    separator: str = ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _shown(name: str) -> str:
    """A column name for a one-line message: line breaks and other control characters escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in name)


def match_columns(found: Sequence[str], required: Sequence[str]) -> dict[str, int]:
    """Position in `found` of each required column, ignoring case, spaces and a BOM."""
    positions: dict[str, list[int]] = {}
    for position, name in enumerate(found):
        positions.setdefault(normalise_name(name), []).append(position)
    missing = [column for column in required if normalise_name(column) not in positions]
    if missing:
        listed = ", ".join(_shown(name) for name in found)
        shown = listed if len(listed) <= 300 else listed[:300] + "…"
        hint = (
            "declare this file's own columns with `make init DATA=<the file>` (or name its declaration with "
            "DECLARATION=), or export a file with these columns (names are matched ignoring case)."
        )
        if len(found) == 1 and len(found[0]) > 20:
            hint = (
                "the header was read as one single column: if the file uses a separator other than "
                "comma, semicolon, tab or pipe, set CSV_SEP to it (e.g. CSV_SEP=':'); otherwise " + hint
            )
        raise UserError(f"the input lacks required column(s) {', '.join(missing)} (found: {shown or 'none'}): {hint}")
    for column in required:
        matches = positions[normalise_name(column)]
        if len(matches) > 1:
            names = " and ".join(repr(_shown(found[i])) for i in matches)
            raise UserError(
                f"the input has several columns for {column} ({names}, matched ignoring case): "
                "keep only one of them in the export."
            )
    return {column: positions[normalise_name(column)][0] for column in required}


def match_optional(found: Sequence[str], optional: Sequence[str], taken: dict[str, int]) -> dict[str, int | None]:
    """Position of each optional declared column present in `found` (None when absent)."""
    positions = {normalise_name(name): position for position, name in reversed(list(enumerate(found)))}
    used = set(taken.values())
    matched: dict[str, int | None] = {}
    for column in optional:
        position = positions.get(normalise_name(column))
        matched[column] = position if position not in used else None
    return matched


def _select_list(
    names: Sequence[str], mapping: dict[str, int], absent: Sequence[str] = ()
) -> tuple[str, tuple[str, ...]]:
    """Declared columns under their declared names (absent optional ones as NULL), then the extra ones."""
    items = [
        f"{quote_identifier(names[position])}::varchar as {quote_identifier(column)}"
        for column, position in mapping.items()
    ]
    items += [f"null::varchar as {quote_identifier(column)}" for column in absent]
    used = {name.casefold() for name in (*mapping, *absent, *RESERVED_NAMES)}
    extra: list[str] = []
    for position, name in enumerate(names):
        if position in mapping.values():
            continue
        alias, suffix = name, 2
        while alias.casefold() in used:
            alias, suffix = f"{name}_{suffix}", suffix + 1
        used.add(alias.casefold())
        extra.append(alias)
        items.append(f"{quote_identifier(name)}::varchar as {quote_identifier(alias)}")
    return ", ".join(items), tuple(extra)


def _scratch_directory(con: duckdb.DuckDBPyConnection) -> tempfile.TemporaryDirectory:
    """A temporary directory beside the warehouse (a transcoded copy stays off a small /tmp).

    Its name carries the warehouse's, so that one left by a killed load is removed by the
    next load of the same warehouse (which holds DuckDB's lock on it: no other load runs).
    """
    rows = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchall()
    if not rows or not rows[0][0]:
        return tempfile.TemporaryDirectory(prefix="ingest-")
    database = Path(rows[0][0])
    prefix = f".{database.name}.ingest-"
    for stale in database.parent.glob(prefix + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=database.parent)


def _csv_reader_sql(path: Path, dialect: CsvDialect, compressed: bool, table: str = "customers") -> str:
    columns = "{" + ", ".join(f"{quote_literal(name)}: 'VARCHAR'" for name in dialect.header) + "}"
    return (
        f"read_csv({quote_literal(str(path))}, auto_detect = false, header = true, skip = {dialect.skip_lines}, "
        f"columns = {columns}, delim = {quote_literal(dialect.separator)}, quote = '\"', escape = '\"', "
        f"compression = {quote_literal('gzip' if compressed else 'none')}, "
        f"max_line_size = {MAX_LINE_BYTES}, "
        f"store_rejects = true, rejects_table = '{table}_load_rejects', rejects_scan = '{table}_load_scans')"
    )


def _declared_mapping(
    found: Sequence[str], required: Sequence[str], optional: Sequence[str]
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Positions of the declared columns found, and the optional ones that are absent."""
    mapping = match_columns(found, required)
    matched = match_optional(found, optional, mapping)
    mapping.update({column: position for column, position in matched.items() if position is not None})
    return mapping, tuple(column for column, position in matched.items() if position is None)


def _stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    required: Sequence[str],
    options: CsvOptions | None,
    optional: Sequence[str] = (),
    table: str = "customers",
) -> tuple[str, dict[str, int], tuple[str, ...], CsvDialect, int]:
    """Read the CSV into temp tables; returns (load sql, mapping, extra, dialect, rejected rows)."""
    dialect = sniff_csv(path, required, options)
    mapping, absent = _declared_mapping(dialect.source_header, required, optional)
    select_list, extra = _select_list(dialect.header, mapping, absent)
    with _scratch_directory(con) as scratch:
        attempts = [dialect.needs_transcoding, True]  # then once more with one kind of line ending
        for attempt, transcode in enumerate(attempts):
            uniform = attempt > 0 or dialect.mixed_newlines
            readable = utf8_copy(path, dialect, Path(scratch), normalise_newlines=uniform) if transcode else path
            for scratch_table in (f"{table}_load", f"{table}_load_rejects", f"{table}_load_scans"):
                con.execute(f"drop table if exists {scratch_table}")
            try:
                # Read outside the transaction: a committed temp table numbers rows 0..n-1 in
                # file order (DuckDB preserves insertion order), so rowid is the row's position.
                reader = _csv_reader_sql(readable, dialect, dialect.compressed and not transcode, table)
                con.execute(f"create temp table {table}_load as select {select_list} from {reader}")
                break
            except duckdb.Error as exc:
                if attempt == len(attempts) - 1:
                    raise UserError(
                        f"cannot read {path} as CSV: {_first_line(exc)}. Check the file's format."
                    ) from None
                log.info(
                    "%s: DuckDB could not read it as is (%s); retrying with uniform line endings",
                    path.name,
                    _first_line(exc),
                )
    rejected = con.execute(
        "select line, arg_min(error_type::varchar, byte_position), arg_min(csv_line, byte_position), "
        f"arg_min(error_message, byte_position) from {table}_load_rejects group by line order by line"
    ).fetchall()
    for line, error_type, text, _ in rejected:
        if error_type == "UNQUOTED VALUE" and ("\n" in (text or "") or "\r" in (text or "")):
            raise UserError(
                f"{path}: the quote opened on line {line} is never closed properly, so the rows after it "
                'cannot be told apart. Fix the quotes on that line (a quote inside a value is written twice: "").'
            )
    loaded = con.execute(f"select count(*) from {table}_load").fetchall()[0][0]
    if loaded + len(rejected) < dialect.sample_rows:
        # never a silent loss: Python's csv module saw more rows in the first megabyte alone
        raise UserError(
            f"{path}: DuckDB read {loaded + len(rejected):,} rows but the start of the file alone holds "
            f"{dialect.sample_rows:,}; the file's layout is not understood reliably. Re-export it as a plain "
            "UTF-8 CSV, or set CSV_SEP / CSV_ENCODING."
        )
    con.execute(
        f"create or replace temp table {table}_rejected_load as select "
        f"{loaded} + row_number() over (order by line) as source_row_number, line as source_line_number, "
        "csv_line as source_line, lower(error_type::varchar) as load_error, error_message "
        "from (select line, arg_min(error_type, byte_position) as error_type, arg_min(csv_line, byte_position) "
        "as csv_line, arg_min(error_message, byte_position) as error_message "
        f"from {table}_load_rejects group by line)"
    )
    # in rowid order as scanned (DuckDB preserves insertion order), and each row carries its number:
    # no sort needed (a sort cost a fifth of the copy at a million rows)
    load_sql = f"select rowid + 1 as source_row_number, * from {table}_load"
    return load_sql, mapping, extra, dialect, len(rejected)


def _stage_parquet(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    required: Sequence[str],
    optional: Sequence[str] = (),
    table: str = "customers",
):
    literal = quote_literal(str(path))
    try:
        described = con.execute(f"describe select * from read_parquet({literal})").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"cannot read {path} as PARQUET: {_first_line(exc)}. Check the file's format.") from None
    found = [row[0] for row in described]
    mapping, absent = _declared_mapping(found, required, optional)
    select_list, extra = _select_list(found, mapping, absent)
    con.execute(f"drop table if exists {table}_rejected_load")
    con.execute(
        f"create temp table {table}_rejected_load (source_row_number bigint, source_line_number bigint, "
        "source_line varchar, load_error varchar, error_message varchar)"
    )
    load_sql = (
        f"select file_row_number + 1 as source_row_number, {select_list} "
        f"from read_parquet({literal}, file_row_number = true)"  # rows carry their number: no sort needed
    )
    return load_sql, mapping, extra, found


def _check_path(path: Path) -> None:
    if str(path).strip() in ("", "."):
        raise UserError("no input file given: set DATA to the export's path, e.g. make all DATA=customers.csv.")
    if not path.exists():
        raise UserError(f"input file {path} does not exist: check the path given in DATA=.")
    if not path.is_file():
        raise UserError(f"input {path} is not a file: give the path of a .csv or .parquet file.")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise UserError(f"cannot open the input file {path} ({exc.strerror}): check its permissions.") from None
    if path.stat().st_size == 0:
        raise UserError(f"input file {path} is empty (0 bytes): export the customer table again.")


def load_raw_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    required: Sequence[str],
    options: CsvOptions | None = None,
    optional: Sequence[str] = (),
    declaration: str = "",
    table: str = "customers",
) -> LoadSummary:
    """Copy the input file, unchanged and as text, into `raw.customers`, in one transaction.

    Every column stays text so that a bad value becomes a quarantined row in dbt, not a
    load failure; `source_row_number` keeps the file order for the dedup rule and the
    quarantine report. Nothing in the warehouse changes unless the whole load succeeds.
    `options` default to the `CSV_SEP` / `CSV_ENCODING` environment variables. `table`
    names the raw table (`orders` for order lines: raw.orders, raw.orders_rejected,
    raw.orders_load_metadata, raw.orders_load_columns).
    """
    meta = "" if table == "customers" else f"{table}_"
    path = Path(path)
    _check_path(path)
    file_format = file_kind(path)
    started = time.perf_counter()
    encoding = separator = ""
    if file_format == "csv":
        options = options if options is not None else CsvOptions.from_environment()
        load_sql, mapping, extra, dialect, rejected = _stage_csv(con, path, required, options, optional, table)
        header = dialect.header
        encoding, separator = dialect.encoding, dialect.separator
    else:
        load_sql, mapping, extra, header = _stage_parquet(con, path, required, optional, table)
        rejected = 0
    try:
        con.execute("begin transaction")
        try:
            con.execute("create schema if not exists raw")
            con.execute(f"create or replace table raw.{table} as {load_sql}")
            rows = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
            if rows == 0 and rejected == 0:
                what = "has a header but no rows" if file_format == "csv" else "has no rows"
                raise UserError(f"input file {path} {what}: export the {table} table again.")
            if rows == 0:
                line, message = con.execute(
                    f"select source_line_number, error_message from {table}_rejected_load "
                    "order by source_line_number limit 1"
                ).fetchall()[0]
                raise UserError(
                    f"none of the {rejected:,} rows of {path} could be split into the header's "
                    f"{len(header)} fields (line {line}: {message}): check the separator (CSV_SEP) and the quotes."
                )
            con.execute(f"create or replace table raw.{table}_rejected as select * from {table}_rejected_load")
            con.execute(
                f"create or replace table raw.{meta}load_metadata as select "
                "? as source_file, ? as file_format, ?::bigint as rows, now() as loaded_at, ? as extra_columns, "
                "?::bigint as rows_rejected, ? as encoding, ? as separator, ? as declaration",
                [str(path), file_format, rows, ", ".join(extra), rejected, encoding, separator, declaration],
            )
            required_at = {position: column for column, position in mapping.items()}
            extra_names = iter(extra)
            con.execute(
                f"create or replace table raw.{meta}load_columns (column_position integer, column_name varchar, "
                "loaded_as varchar, required_column varchar)"
            )
            con.executemany(
                f"insert into raw.{meta}load_columns values (?, ?, ?, ?)",
                [
                    (
                        position + 1,
                        name,
                        required_at[position] if position in required_at else next(extra_names),
                        required_at.get(position),
                    )
                    for position, name in enumerate(header)
                ],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        for scratch in ("_load", "_rejected_load", "_load_rejects", "_load_scans"):
            con.execute(f"drop table if exists {table}{scratch}")
    log.info("loaded %s rows from %s in %.1f s", f"{rows:,}", path, time.perf_counter() - started)
    if rejected:
        log.warning(
            "%s row(s) could not be split into the header's %d fields: kept in raw.%s_rejected, "
            "quarantined as malformed_row",
            f"{rejected:,}",
            len(header),
            table,
        )
    if extra:
        log.info("extra columns kept in raw.%s and ignored: %s", table, ", ".join(extra))
    return LoadSummary(str(path), file_format, rows, tuple(mapping), extra, rejected, encoding, separator)
