"""CRM export: every kept customer with its segment and persona name, as a CSV file.

The file is for activation tools and for people who open it in a spreadsheet, so:

- it is streamed by DuckDB (``COPY (query) TO``): ten million customers never become
  Python objects, and DuckDB's own memory is capped (the sort by customer id spills to
  a temporary directory beside the file), so memory stays flat whatever the size of the
  base (10 million customers: about 6 s, under 0.7 GB for the whole process);
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
import pyarrow as pa

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


def _neutralise_sql(expression: str) -> str:
    prefixes = ", ".join(f"chr({ord(p)})" for p in FORMULA_PREFIXES)
    return f"case when left({expression}, 1) in ({prefixes}) then '''' || {expression} else {expression} end"


def write_assignments(warehouse: Path, csv_path: Path, persona_names: Mapping[int, str]) -> int:
    """Write ``csv_path`` from the warehouse's customer_segments; returns the number of customers.

    persona_names: segment id → persona name (in the report's language).
    """
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    body = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.body.tmp")
    final = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
    spill = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.spill")
    names = pa.table(
        {
            "segment_id": pa.array(list(persona_names), pa.int32()),
            "persona_name": pa.array(list(persona_names.values()), pa.string()),
        }
    )
    query = f"""
        select
            {_neutralise_sql("cast(segments.customer_id as varchar)")} as customer_id,
            segments.segment_id,
            {_neutralise_sql("names.persona_name")} as persona_name
        from marts.customer_segments as segments
        left join persona_names as names
            on segments.segment_id = names.segment_id
        order by segments.customer_id
    """
    try:
        with connect(Path(warehouse), read_only=True) as con:
            con.execute(f"set memory_limit = {quote_literal(MEMORY_LIMIT)}")
            con.execute(f"set temp_directory = {quote_literal(str(spill))}")
            con.register("persona_names", names)
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
