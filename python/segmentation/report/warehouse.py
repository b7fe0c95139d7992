"""Reading the published warehouse: every table the report shows, as plain Python structures.

The only module of the report that talks to DuckDB. It reads the latest segmentation run
and the marts dbt generated from the declaration (marts.feature_catalog, segment_traits,
…), read-only; the page builders then work on lists of dicts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from segmentation.errors import UserError
from segmentation.warehouse import connect

logger = logging.getLogger(__name__)


class ReportError(UserError):
    """The warehouse lacks what the report needs (a step has not run, or ran differently)."""


@dataclass
class WarehouseData:
    run: dict
    selection: list[dict]
    projection: dict[str, np.ndarray]
    profiles: list[dict]
    traits: list[dict]
    catalog: list[dict]
    levels: list[dict]
    quality: list[dict]
    quarantine_examples: list[dict] = field(default_factory=list)
    input_columns: list[dict] = field(default_factory=list)
    migration: list[dict] = field(default_factory=list)
    label_crosstab: list[dict] = field(default_factory=list)
    order_quality: list[dict] = field(default_factory=list)  # empty without order lines
    order_examples: list[dict] = field(default_factory=list)
    behaviour_quantiles: list[dict] = field(default_factory=list)  # recency, frequency, monetary per segment


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _order_tables(con: duckdb.DuckDBPyConnection) -> tuple[list[dict], list[dict]]:
    """The order-line quality tables; none in a warehouse built before order lines existed."""
    try:
        quality = _rows(con, "select section, item, rows, detail, display_order from marts.order_quality_summary")
        examples = _rows(
            con,
            "select quarantine_reason, source_value, rows from marts.order_quarantine_examples"
            " order by quarantine_reason, example_rank",
        )
    except (duckdb.CatalogException, duckdb.BinderException):
        return [], []
    return quality, examples


def read_warehouse(warehouse: Path) -> WarehouseData:
    """Everything the report shows, from the latest segmentation run (read-only connection)."""
    with connect(Path(warehouse), read_only=True) as con:
        return _read(con)


def _read(con: duckdb.DuckDBPyConnection) -> WarehouseData:
    try:
        runs = _rows(
            con,
            "select * from segmentation.segmentation_runs"
            " order by finished_at desc nulls last, started_at desc limit 1",
        )
        if not runs:
            raise ReportError("segmentation.segmentation_runs is empty: run the segmentation step first")
        run = runs[0]
        run_id = [run["run_id"]]
        # hash(customer_id) gives a fixed shuffle: no segment is always drawn on top.
        projection = con.execute(
            "select segment_id, pca_x, pca_y, tsne_x, tsne_y from segmentation.segment_projection"
            " where run_id = ? order by hash(customer_id), customer_id",
            run_id,
        ).fetchnumpy()
        data = WarehouseData(
            run=run,
            selection=_rows(
                con, "select * from segmentation.segment_model_selection where run_id = ? order by k", run_id
            ),
            projection={key: np.ma.filled(np.ma.asarray(v, dtype=float), np.nan) for key, v in projection.items()},
            profiles=_rows(con, "select * from marts.segment_profiles order by segment_id"),
            traits=_rows(con, "select * from marts.segment_traits order by segment_id, feature, level nulls first"),
            catalog=_rows(con, "select * from marts.feature_catalog order by position, feature"),
            levels=_rows(con, "select * from marts.feature_levels order by feature, position"),
            quality=_rows(con, "select section, item, rows, display_order from marts.data_quality_summary"),
            quarantine_examples=_rows(
                con,
                "select quarantine_reason, rule, feature, column_name, source_value, rows"
                " from marts.quarantine_examples order by quarantine_reason, example_rank",
            ),
            input_columns=_rows(
                con,
                "select column_name, is_required, is_empty, is_constant from marts.data_quality_columns"
                " order by column_position",
            ),
            migration=_rows(
                con,
                "select previous_segment_id, segment_id, sum(customers) as customers"
                " from segmentation.segment_migration where run_id = ? group by all",
                run_id,
            ),
            label_crosstab=_rows(
                con,
                "select label, segment_id, sum(customers) as customers"
                " from segmentation.segment_label_crosstab where run_id = ? group by all",
                run_id,
            ),
        )
    except duckdb.CatalogException as exc:
        first_line = str(exc).splitlines()[0]
        raise ReportError(
            f"the warehouse lacks a table the report reads ({first_line}); run the pipeline first (make all)"
        ) from None
    except duckdb.BinderException as exc:
        first_line = str(exc).splitlines()[0]
        raise ReportError(
            f"a warehouse table has other columns than the report reads ({first_line}); rebuild it (make all)"
        ) from None
    data.order_quality, data.order_examples = _order_tables(con)
    if data.order_quality:
        from segmentation.report.behaviour import read_quantiles

        data.behaviour_quantiles = read_quantiles(con)
    if not data.profiles:
        raise ReportError("marts.segment_profiles is empty: run dbt after the segmentation step (make profiles)")
    if not data.catalog:
        raise ReportError("marts.feature_catalog is empty: check the declaration and rebuild (make all)")
    if run.get("k") is not None and run["k"] != len(data.profiles):
        logger.warning(
            "latest run %s has k=%s but marts.segment_profiles has %d segments; rebuild the marts",
            run["run_id"],
            run["k"],
            len(data.profiles),
        )
    return data
