"""CRM export: every kept customer with its segment and persona name, as a CSV file.

The file is for activation tools and for people who open it in a spreadsheet, so:

- it is streamed by DuckDB (``COPY (query) TO``): ten million customers never become
  Python objects, and DuckDB's own memory is capped (a sort by customer id, when one is
  needed, spills to a temporary directory beside the file), so memory stays flat whatever
  the size of the base. The segment step's table is already stored by customer id: when it
  holds exactly customer_segments' customers it is streamed as stored, without the sort
  (8.3 million customers: about 2 s of CPU instead of 4.5);
- a text cell that a spreadsheet would read as a formula (it begins with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return) gets a leading apostrophe, the usual
  neutralisation against CSV/formula injection (OWASP); text cells are always quoted;
- it is UTF-8 with a byte-order mark, so spreadsheet programs show accented persona
  names (the French report's) correctly; DuckDB, pandas and Python's ``utf-8-sig``
  codec read it as plain UTF-8;
- it is written to a temporary file and renamed, so a killed run never leaves half a file.

One row per customer of ``marts.customer_segments`` (the customers kept, with the segment
of the latest run), ordered by customer id so that the same data give the same file.
"""

from __future__ import annotations

import codecs
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb

from segmentation.errors import UserError
from segmentation.warehouse import connect, quote_literal

logger = logging.getLogger(__name__)

ASSIGNMENTS_FILENAME = "segment_assignments.csv"
MEMORY_LIMIT = "512MB"  # DuckDB's working memory for the export; beyond it the sort spills to disk
COLUMNS = ("customer_id", "segment_id", "persona_name")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """A cell value a spreadsheet will show as text, never evaluate (the SQL below does the same)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


# The same rule as a regular expression on the first character (escapes RE2 reads: \t, \r, \-).
_FORMULA_PATTERN = "^[" + "".join({"\t": r"\t", "\r": r"\r", "-": r"\-"}.get(p, p) for p in FORMULA_PREFIXES) + "]"


def _neutralise_sql(expression: str) -> str:
    # A regular expression, not ``left(x, 1) in (...)``: DuckDB plans an IN list of six constants
    # as a join with a table of them, which costs a hash lookup per cell and gives up the rows' order.
    matches = f"regexp_matches({expression}, {quote_literal(_FORMULA_PATTERN)})"
    return f"case when {matches} then '''' || {expression} else {expression} end"


def _persona_name_sql(persona_names: Mapping[int, str]) -> str:
    """segment id → name, neutralised, as a CASE expression (NULL for a segment without a name, like a left join).

    A CASE, not a join with a names table: the query then reads one relation and keeps its order.
    """
    if not persona_names:
        return "cast(null as varchar)"
    branches = " ".join(f"when {int(s)} then {quote_literal(neutralise(name))}" for s, name in persona_names.items())
    return f"case segment_id {branches} end"


def _in_customer_order(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the run's assignments table holds exactly customer_segments' customers, stored by customer id.

    The segment step writes it in that order (it reads the mart by customer id), and customer_segments
    is its inner join with the mart. When the ids are strictly increasing in storage order (so unique
    and sorted), and both tables hold one and the same run and as many customers, they hold the same
    (customer, segment) pairs, and the export can stream the table as stored instead of sorting
    millions of text ids (most of the export's time). DuckDB keeps insertion (row id) order for a
    query without ORDER BY (``preserve_insertion_order``); the check reads the row ids too, so it
    also proves that it saw the rows in that order.
    """
    if not con.sql("select current_setting('preserve_insertion_order')").fetchall()[0][0]:
        return False
    try:
        out_of_order, missing, *stored = con.sql(
            "select count(*) filter (where previous >= customer_id or previous_row >= row),"
            " count(*) - count(customer_id), count(*), min(run_id), max(run_id)"
            " from (select customer_id, run_id, rowid as row, lag(customer_id) over () as previous,"
            " lag(rowid) over () as previous_row from segmentation.segment_assignments)"
        ).fetchall()[0]
        published = con.sql("select count(*), min(run_id), max(run_id) from marts.customer_segments").fetchall()[0]
    except duckdb.CatalogException:
        return False
    # the same number of customers, of one and the same run in both
    return out_of_order == 0 and missing == 0 and tuple(stored) == published and stored[1] == stored[2]


def write_assignments(warehouse: Path, csv_path: Path, persona_names: Mapping[int, str]) -> int:
    """Write ``csv_path`` from the warehouse's customer_segments; returns the number of customers.

    persona_names: segment id → persona name (in the report's language).
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    body = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.body.tmp")
    final = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
    spill = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.spill")
    try:
        with connect(Path(warehouse), read_only=True) as con:
            con.execute(f"set memory_limit = {quote_literal(MEMORY_LIMIT)}")
            con.execute(f"set temp_directory = {quote_literal(str(spill))}")
            if _in_customer_order(con):
                source, order = "segmentation.segment_assignments", ""
            else:
                source, order = "marts.customer_segments", "order by customer_id"
            query = f"""
                select
                    {_neutralise_sql("cast(customer_id as varchar)")} as customer_id,
                    segment_id,
                    {_persona_name_sql(persona_names)} as persona_name
                from {source}
                {order}
            """
            try:
                copied = con.execute(
                    f"copy ({query}) to {quote_literal(str(body))}"
                    " (format csv, header true, delimiter ',', quote '\"', escape '\"',"
                    " force_quote (customer_id, persona_name))"
                ).fetchall()
            except duckdb.CatalogException:
                raise UserError(
                    "marts.customer_segments is not in the warehouse: run the profiles step first (make profiles)."
                ) from None
        rows = int(copied[0][0]) if copied and copied[0] else 0
        with final.open("wb") as out, body.open("rb") as src:
            out.write(codecs.BOM_UTF8)
            shutil.copyfileobj(src, out, length=1 << 20)
        os.replace(final, csv_path)
    finally:
        body.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        shutil.rmtree(spill, ignore_errors=True)
    return rows
