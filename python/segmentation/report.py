"""The persona report: warehouse → context → HTML (Jinja2) → PDF (WeasyPrint).

Python prepares every figure and sentence of the context (numbers formatted for
the report's language, words from ``reports/i18n/<lang>.yml`` and the persona
rules); the templates only loop and place. Data reaches the page only as values
in autoescaped templates, and WeasyPrint fetches nothing but the report's own
stylesheets and charts (see ``AssetFetcher``).

Three files come out, each written atomically (temporary file, then rename): the
PDF; the same pages as one self-contained HTML file (stylesheets and charts
inlined, for e-mail and the intranet); and the CRM export of every customer's
segment and persona (``segmentation.export``).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import duckdb
import jinja2
import numpy as np
from markupsafe import Markup
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from segmentation import charts
from segmentation.config import load_settings
from segmentation.errors import UserError
from segmentation.export import ASSIGNMENTS_FILENAME, write_assignments
from segmentation.personas import (
    PROFILE_MEASURES,
    NumberFormat,
    Persona,
    base_profile,
    build_personas,
    fill,
    load_rules,
    profession_words,
    vocabulary,
)
from segmentation.warehouse import connect

logger = logging.getLogger(__name__)

REPORT_FILENAME = "segment_report.pdf"
HTML_FILENAME = "segment_report.html"
CHARTS_DIRNAME = "charts"
STYLESHEETS = ("fonts.css", "variables.css", "pages.css", "style.css")
SCREEN_STYLESHEET = "screen.css"  # the HTML companion only: pages as sheets on a grey desk
ACCOUNTING_ITEMS = ("rows_read", "duplicate_records_merged", "rows_quarantined", "customers_kept")


class ReportError(UserError):
    """The warehouse lacks what the report needs (a step has not run, or ran differently)."""


# --- safe asset fetching -------------------------------------------------------------------


class FetchRefused(ValueError):
    """A URL outside the report's own assets."""


class AssetFetcher(URLFetcher):
    """Serve only files inside the allowed directories; refuse (and log) anything else.

    The report needs its stylesheets and its charts, nothing more: no network, no
    other local file. WeasyPrint catches the refusal, warns and leaves the resource
    out, so a hostile URL can never make the render reach outside.
    """

    def __init__(self, allowed_dirs: Iterable[Path], **kwargs):
        super().__init__(allowed_protocols=("file",), allow_redirects=False, **kwargs)
        self.allowed_dirs = tuple(Path(d).resolve() for d in allowed_dirs)
        self.refused: list[str] = []

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        path = self._allowed_path(url)
        if path is None:
            self.refused.append(url)
            logger.warning("refused to fetch %s: not one of the report's own assets", url[:200])
            raise FetchRefused(f"refused: {url[:200]}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        return URLFetcherResponse(path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type})

    def _allowed_path(self, url: str) -> Path | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(unquote(parts.path))).resolve()  # resolves "..", symlinks
        if not path.is_file():
            return None
        if any(path.is_relative_to(d) for d in self.allowed_dirs):
            return path
        return None


# --- reading the warehouse ------------------------------------------------------------------


@dataclass
class WarehouseData:
    run: dict
    selection: list[dict]
    projection: dict[str, np.ndarray]
    profiles: list[dict]
    profession_mix: list[dict]
    traits: list[dict]
    quality: list[dict]
    migration: list[dict] = field(default_factory=list)  # optional: older warehouses lack the table
    label_crosstab: list[dict] = field(default_factory=list)  # optional, likewise
    quarantine_examples: list[dict] = field(default_factory=list)  # optional: marts.quarantine_examples
    input_columns: list[dict] = field(default_factory=list)  # optional: marts.data_quality_columns


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _optional_rows(
    con: duckdb.DuckDBPyConnection, relation: str, columns: set[str], sql: str, params: Sequence = ()
) -> list[dict]:
    """Rows of a table that older warehouses lack (or have with fewer columns): none then."""
    schema, table = relation.split(".")
    return _rows(con, sql, params) if columns <= _table_columns(con, schema, table) else []


def _table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The columns of a table, or an empty set when it does not exist (an older warehouse)."""
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


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
        selection = _rows(
            con,
            "select * from segmentation.segment_model_selection where run_id = ? order by k",
            [run["run_id"]],
        )
        # hash(customer_id) gives a fixed shuffle: no segment is always drawn on top.
        projection = con.execute(
            "select segment_id, pca_x, pca_y, tsne_x, tsne_y from segmentation.segment_projection"
            " where run_id = ? order by hash(customer_id), customer_id",
            [run["run_id"]],
        ).fetchnumpy()
        data = WarehouseData(
            run=run,
            selection=selection,
            projection={key: np.ma.filled(np.ma.asarray(v, dtype=float), np.nan) for key, v in projection.items()},
            profiles=_rows(con, "select * from marts.segment_profiles order by segment_id"),
            profession_mix=_rows(
                con, "select * from marts.segment_profession_mix order by segment_id, profession_rank, profession"
            ),
            traits=_rows(con, "select * from marts.segment_traits order by segment_id, feature, level"),
            quality=_rows(con, "select section, item, rows from marts.data_quality_summary"),
        )
        # Tables of later pipeline versions: shown when present, never required.
        run_id = [run["run_id"]]
        data.migration = _optional_rows(
            con,
            "segmentation.segment_migration",
            {"run_id", "previous_segment_id", "segment_id", "customers"},
            "select previous_segment_id, segment_id, sum(customers) as customers"
            " from segmentation.segment_migration where run_id = ? group by all",
            run_id,
        )
        data.quarantine_examples = _optional_rows(
            con,
            "marts.quarantine_examples",
            {"quarantine_reason", "example_rank", "column_name", "source_value", "rows"},
            "select quarantine_reason, column_name, source_value, rows from marts.quarantine_examples"
            " order by quarantine_reason, example_rank",
        )
        data.input_columns = _optional_rows(
            con,
            "marts.data_quality_columns",
            {"column_name", "is_required", "is_empty", "is_constant"},
            "select column_name, is_required, is_empty, is_constant from marts.data_quality_columns"
            " order by column_position",
        )
        data.label_crosstab = _optional_rows(
            con,
            "segmentation.segment_label_crosstab",
            {"run_id", "segment_id", "label", "customers"},
            "select label, segment_id, sum(customers) as customers"
            " from segmentation.segment_label_crosstab where run_id = ? group by all",
            run_id,
        )
    except duckdb.CatalogException as exc:
        first_line = str(exc).splitlines()[0]
        raise ReportError(
            f"the warehouse lacks a table the report reads ({first_line}); run the pipeline first"
        ) from None
    if not data.profiles:
        raise ReportError("marts.segment_profiles is empty: run dbt after the segmentation step")
    if run.get("k") is not None and run["k"] != len(data.profiles):
        logger.warning(
            "latest run %s has k=%s but marts.segment_profiles has %d segments; rebuild the marts",
            run["run_id"],
            run["k"],
            len(data.profiles),
        )
    return data


# --- context -------------------------------------------------------------------------------


def _date(value: datetime | None, vocab: Mapping) -> str:
    if value is None:
        return vocab["numbers"]["missing"]
    months = vocab["dates"]["months"]
    return fill(
        vocab["dates"]["format"], {"day": str(value.day), "month": months[value.month - 1], "year": str(value.year)}
    )


def _quality_items(rows: Sequence[Mapping], section: str) -> dict[str, int]:
    return {r["item"]: int(r["rows"] or 0) for r in rows if r["section"] == section}


def _label(mapping: Mapping, key: str, what: str) -> str:
    if key in mapping:
        return mapping[key]
    logger.warning("no %s label for %r in the vocabulary; showing the code", what, key)
    return key.replace("_", " ")


def _quality_context(data: WarehouseData, vocab: Mapping, fmt: NumberFormat) -> dict:
    q = vocab["quality"]
    accounting = _quality_items(data.quality, "accounting")
    missing = [item for item in ACCOUNTING_ITEMS if item not in accounting]
    if missing:
        raise ReportError(f"marts.data_quality_summary lacks accounting items: {', '.join(missing)}")
    read = accounting["rows_read"]
    kept = accounting["customers_kept"]
    unaccounted = read - kept - accounting["duplicate_records_merged"] - accounting["rows_quarantined"]
    if unaccounted:
        logger.warning("row accounting does not add up: %d rows unaccounted for", unaccounted)

    def share(rows: int, of: int) -> str:
        if not of:
            return fmt.missing
        small = 0 < rows / of < 0.001  # 2 rows in 10,000 is not "0.0%"
        return fmt.percent(rows / of, 2 if small else 1)

    ledger = [
        {"label": q["rows_read"], "rows": fmt.number(read), "share": share(read, read), "kind": "total"},
        *(
            {
                "label": q[item],
                "rows": fmt.signed(-accounting[item]),
                "share": share(accounting[item], read),
                "kind": "less",
            }
            for item in ("duplicate_records_merged", "rows_quarantined")
        ),
        {"label": q["customers_kept"], "rows": fmt.number(kept), "share": share(kept, read), "kind": "result"},
    ]
    flow = [
        {"key": key, "label": q[key], "width": f"{width:.2f}"}
        for key, width in _flow_widths(
            {key: accounting[key] for key in ("customers_kept", "duplicate_records_merged", "rows_quarantined")}
        ).items()
    ]
    quarantine = sorted(_quality_items(data.quality, "quarantine").items(), key=lambda kv: (-kv[1], kv[0]))
    quarantine_total = sum(v for _, v in quarantine)
    if quarantine_total != accounting["rows_quarantined"]:
        logger.warning(
            "quarantine reasons sum to %d but %d rows are quarantined", quarantine_total, accounting["rows_quarantined"]
        )
    imputation = sorted(_quality_items(data.quality, "imputation").items(), key=lambda kv: (-kv[1], kv[0]))
    segmented = data.run.get("customers")
    reason_order = {reason: i for i, (reason, _) in enumerate(quarantine)}
    examples = sorted(
        data.quarantine_examples, key=lambda r: reason_order.get(r["quarantine_reason"], len(reason_order))
    )
    required = [c for c in data.input_columns if c["is_required"]]
    return {
        "lead": q["lead"],
        "ledger": ledger,
        "flow": flow,
        "check_ok": unaccounted == 0,
        "check": fill(q["check_ok"], {"rows_read": fmt.number(read)})
        if unaccounted == 0
        else fill(q["check_failed"], {"difference": fmt.number(abs(unaccounted))}),
        "segmented_note": fill(q["segmented_note"], {"customers": fmt.number(segmented)})
        if segmented is not None and segmented != kept
        else None,
        "quarantine": [
            {"label": _label(q["reasons"], reason, "quarantine reason"), "rows": fmt.number(n), "share": share(n, read)}
            for reason, n in quarantine
        ],
        "quarantine_total": {"rows": fmt.number(quarantine_total), "share": share(quarantine_total, read)},
        "imputation": [
            {"label": _label(q["columns"], column, "column"), "rows": fmt.number(n), "share": share(n, kept)}
            for column, n in imputation
        ],
        # values from the file: plain strings, escaped by the template like every other value
        "examples": [
            {
                "reason": _label(q["reasons"], r["quarantine_reason"], "quarantine reason"),
                "column": r["column_name"] or "",
                "value": q["no_value"] if r["source_value"] is None else r["source_value"],
                "rows": fmt.number(r["rows"]),
            }
            for r in examples
        ],
        "column_notes": [
            {"label": q[kind], "columns": ", ".join(name if len(name) <= 60 else name[:59] + "…" for name in names)}
            for kind, names in (
                ("empty_columns", [c["column_name"] for c in required if c["is_empty"]]),
                ("constant_columns", [c["column_name"] for c in required if c["is_constant"]]),
                ("extra_columns", [c["column_name"] for c in data.input_columns if not c["is_required"]]),
            )
            if names
        ],
    }


def _flow_widths(parts: Mapping[str, int], minimum: float = 0.6) -> dict[str, float]:
    """Widths in % of the bar showing where the rows went; a non-zero part gets at least
    `minimum` % so it stays visible, taken from the widest part so the bar still sums to 100."""
    total = sum(parts.values())
    if not total:
        return {}
    widths = {key: max(minimum, 100 * n / total) for key, n in parts.items() if n}
    widest = max(widths, key=widths.get)
    widths[widest] -= sum(widths.values()) - 100
    return widths


def _key_figures(profile: Mapping, base: Mapping, vocab: Mapping, fmt: NumberFormat) -> list[dict]:
    rows = []
    for measure in PROFILE_MEASURES:
        value, base_value = profile.get(measure), base.get(measure)
        if measure.startswith("share_"):
            texts = (fmt.percent(value), fmt.percent(base_value))
            difference = None if value is None or base_value is None else value - base_value
            diff_text = fmt.points(difference)
            notable = difference is not None and abs(difference) >= 0.1
        else:
            digits = 0 if measure == "mean_age" else 1
            texts = (fmt.number(value, digits), fmt.number(base_value, digits))
            difference = None if value is None or base_value is None else value - base_value
            diff_text = fmt.signed(difference, digits)
            notable = difference is not None and bool(base_value) and abs(difference / base_value) >= 0.15
        rows.append(
            {
                "label": vocab["measures"][measure],
                "segment": texts[0],
                "base": texts[1],
                "difference": diff_text,
                "direction": "up" if (difference or 0) > 0 else "down" if (difference or 0) < 0 else "flat",
                "notable": notable,
            }
        )
    return rows


def _trait_rows(persona: Persona) -> list[dict]:
    """Traits with the geometry of their lift bar: log scale, ×1 in the middle, ×20 at the edge."""
    rows = []
    for trait in persona.traits:
        width = min(50.0, 50.0 * trait["strength"] / math.log(20))
        rows.append({**trait, "bar_width": f"{max(width, 1.5):.1f}"})
    return rows


def _profession_rows(mix: Sequence[Mapping], vocab: Mapping, limit: int = 9) -> list[dict]:
    """A segment's professions for its chart, most common first; the tail grouped as 'Other'."""

    rows = [
        {
            "label": profession_words(vocab, r["profession"])["label"],
            "share": r["share"] or 0.0,
            "base_share": r["base_share"] or 0.0,
        }
        for r in sorted(mix, key=lambda r: (r["profession_rank"], r["profession"]))
    ]
    if len(rows) > limit:
        head, tail = rows[: limit - 1], rows[limit - 1 :]
        other = {
            "label": vocab["persona"]["other_professions"],
            "share": sum(r["share"] for r in tail),
            "base_share": sum(r["base_share"] for r in tail),
        }
        rows = [*head, other]
    return rows


# Measures of the choice of k, in panel and table order: (column, digits in the table).
SELECTION_MEASURES = (
    ("inertia", 0),
    ("silhouette", 3),
    ("calinski_harabasz", 0),
    ("davies_bouldin", 2),
    ("stability", 2),
)


def _measured(selection: Sequence[Mapping], column: str) -> bool:
    """Whether the column exists in this warehouse and holds at least one value."""
    return any(row.get(column) is not None for row in selection)


def _chosen_and_knee(data: WarehouseData) -> tuple[int | None, int | None]:
    chosen = next((r["k"] for r in data.selection if r.get("is_chosen")), data.run.get("k"))
    knee = next((r["k"] for r in data.selection if r.get("is_knee")), data.run.get("knee_k"))
    return chosen, knee


def _parameters(run: Mapping) -> dict:
    try:
        value = json.loads(run.get("parameters") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _stability_threshold(run: Mapping) -> float | None:
    """The stability a k needs to count as stable, when the run recorded it."""
    parameters = _parameters(run)
    selection = parameters.get("selection") if isinstance(parameters.get("selection"), dict) else {}
    value = selection.get("stability_threshold", parameters.get("stability_threshold"))
    return float(value) if isinstance(value, int | float) else None


def _map_view(projection: Mapping[str, np.ndarray]) -> str | None:
    """The 2-D view a persona's locator uses: t-SNE (it separates groups) or else PCA."""
    for view in ("tsne", "pca"):
        column = projection.get(f"{view}_x")
        if column is not None and len(column) and np.isfinite(column).any():
            return view
    return None


def _draw_charts(
    data: WarehouseData,
    personas: Sequence[Persona],
    colours: Mapping[int, str],
    vocab: Mapping,
    fmt: NumberFormat,
    charts_dir: Path,
) -> dict[str, Path]:
    c = vocab["charts"]
    paths: dict[str, Path] = {}
    profiles = {p["segment_id"]: p for p in data.profiles}
    paths["sizes"] = charts.segment_shares(
        charts_dir / "segment_sizes.svg",
        [
            {
                "segment_id": p.segment_id,
                "label": p.name,
                "share_of_customers": profiles[p.segment_id]["share_of_customers"],
                "share_of_high_spenders": profiles[p.segment_id]["share_of_high_spenders"],
            }
            for p in personas
        ],
        colours,
        {"share_of_customers": c["share_of_customers"], "share_of_high_spenders": c["share_of_high_spenders"]},
        fmt.percent,
    )
    for p in personas:
        mix = [r for r in data.profession_mix if r["segment_id"] == p.segment_id]
        if mix:
            paths[f"professions_{p.segment_id}"] = charts.profession_mix(
                charts_dir / f"profession_mix_segment_{p.segment_id}.svg",
                _profession_rows(mix, vocab),
                colours[p.segment_id],
                {"this_segment": c["this_segment"], "all_customers": c["all_customers"]},
                fmt.percent,
            )
    chosen, knee = _chosen_and_knee(data)
    if data.selection:
        threshold = _stability_threshold(data.run)
        notes = {"inertia": "inertia_note", "davies_bouldin": "lower_better"}
        panels = [
            {
                "title": c[column],
                "note": c[notes.get(column, "higher_better")],
                "values": [r.get(column) for r in data.selection],
                "digits": {"inertia": 0, "calinski_harabasz": 0}.get(column, 2),
                "threshold": threshold if column == "stability" else None,
            }
            for column, _ in SELECTION_MEASURES
            if _measured(data.selection, column)
        ]
        if panels:
            paths["selection"] = charts.selection_panels(
                charts_dir / "model_selection.svg",
                [r["k"] for r in data.selection],
                panels,
                chosen,
                knee if _measured(data.selection, "inertia") else None,
                {
                    "k": c["k"],
                    "chosen": fill(c["chosen"], {"k": str(chosen)}),
                    "knee": fill(c["knee"], {"k": str(knee)}),
                },
                fmt.number,
            )
    proj = data.projection
    if len(proj.get("segment_id", [])):
        segments = proj["segment_id"].astype(int)
        for key in ("pca", "tsne"):
            x, y = proj[f"{key}_x"], proj[f"{key}_y"]
            if np.isfinite(x).any():
                paths[key] = charts.scatter(
                    charts_dir / f"{key}.png",
                    x,
                    y,
                    segments,
                    colours,
                    {"x": c[f"{key}_x"], "y": c[f"{key}_y"]},
                    {s: fill(c["legend"], {"segment_id": str(s)}) for s in colours},
                )
        view = _map_view(proj)
        if view is not None:
            for p in personas:
                paths[f"locator_{p.segment_id}"] = charts.locator(
                    charts_dir / f"locator_segment_{p.segment_id}.png",
                    proj[f"{view}_x"],
                    proj[f"{view}_y"],
                    segments,
                    p.segment_id,
                    colours[p.segment_id],
                    size_mm=(46, 38),
                )
    return paths


def _segment_columns(personas: Sequence[Persona], colours: Mapping[int, str], show_names: bool) -> list[dict]:
    """Column headers of the tables that have one column per segment (badge, and name when room)."""
    return [
        {
            "badge": str(p.segment_id),
            "colour": colours[p.segment_id],
            "text_colour": charts.text_colour(colours[p.segment_id]),
            "name": p.name if show_names else None,
            "title": p.name,
        }
        for p in personas
    ]


def _feature_label(vocab: Mapping, feature: str) -> str:
    known = vocab.get("features", {}).get(feature, {}).get("label")
    return known or fill(vocab.get("feature_fallback", {}).get("label", "{feature}"), {"feature": feature})


def _level_label(vocab: Mapping, feature: str, level: str) -> str:
    if feature == "profession":
        return profession_words(vocab, level)["label"]
    return vocab.get("levels", {}).get(feature, {}).get(level, level)


def _heatmap(
    traits: Sequence[Mapping],
    personas: Sequence[Persona],
    colours: Mapping[int, str],
    rules: Mapping,
    vocab: Mapping,
    fmt: NumberFormat,
) -> dict:
    """Every segment's lift on every profiled feature of segment_traits, as rows of coloured cells.

    Features in the order of the rules' ``compare`` section, then any other one; a categorical
    feature is a group of rows, one per category (in the vocabulary's order, else most common
    first). A feature left with one category (women, once men are skipped) is a plain row.
    """
    cfg = rules.get("compare", {})
    excluded = set(cfg.get("exclude_features", []))
    skipped = {feature: set(levels) for feature, levels in (cfg.get("skip_levels") or {}).items()}
    share_features = set(rules.get("traits", {}).get("share_features", []))
    by_key: dict[tuple[str, str | None], dict[int, Mapping]] = {}
    for row in traits:
        if row["feature"] not in excluded and row.get("level") not in skipped.get(row["feature"], ()):
            by_key.setdefault((row["feature"], row.get("level")), {})[int(row["segment_id"])] = row
    present = list(dict.fromkeys(feature for feature, _ in by_key))
    listed = [f for f in cfg.get("features", []) if f in present]
    base = {key: next(iter(rows.values())).get("base_value") for key, rows in by_key.items()}

    def row(feature: str, level: str | None) -> dict:
        if level is not None or feature in share_features:
            base_text = fmt.percent(base[(feature, level)])
        else:
            words = vocab.get("features", {}).get(feature) or vocab.get("feature_fallback", {})
            value = fmt.number(base[(feature, level)], int(words.get("digits", 1)))
            base_text = fill(words.get("value", "{value}"), {"value": value})
        cells = []
        for p in personas:
            lift = by_key[(feature, level)].get(p.segment_id, {}).get("lift")
            colour = charts.lift_colour(lift)
            cells.append({"text": fmt.lift(lift), "colour": colour, "text_colour": charts.text_colour(colour)})
        label = _feature_label(vocab, feature) if level is None else _level_label(vocab, feature, level)
        return {"label": label, "base": base_text, "cells": cells}

    groups = []
    for feature in listed + [f for f in present if f not in listed]:
        levels = [level for f, level in by_key if f == feature]
        known = list(vocab.get("levels", {}).get(feature, {}))
        levels.sort(
            key=lambda level, feature=feature, known=known: (
                level is not None,
                known.index(level) if level in known else len(known),
                -(base[(feature, level)] or 0),
                level or "",
            )
        )
        rows = [row(feature, level) for level in levels]
        grouped = len(rows) > 1 and levels[0] is not None
        groups.append({"label": _feature_label(vocab, feature) if grouped else None, "rows": rows})

    scale = [
        {
            "text": fill(fmt.lift_template, {"value": fmt.number(lift, 2 if lift < 0.5 else 1)}),
            "colour": colour,
            "text_colour": charts.text_colour(colour),
        }
        for lift, colour in charts.lift_scale()
    ]
    show_names = len(personas) <= int(cfg.get("names_up_to", 6))
    return {"columns": _segment_columns(personas, colours, show_names), "groups": groups, "scale": scale}


def _choice_sentence(data: WarehouseData, vocab: Mapping, fmt: NumberFormat) -> str:
    """Why this k, as one plain sentence (selection_rule, or k_source in older warehouses)."""
    templates = vocab["methodology"]["choice"]
    run = data.run
    chosen, knee = _chosen_and_knee(data)
    by_k = {r["k"]: r for r in data.selection}
    rule = run.get("selection_rule") or run.get("k_source") or "elbow"
    stability = by_k.get(chosen, {}).get("stability")
    if stability is None:
        stability = run.get("chosen_stability")
    if rule == "elbow" and stability is not None:
        rule = "elbow_unstable"  # with stability measured, "elbow" means no k was stable enough
    if rule not in templates:
        logger.warning("no sentence for the selection rule %r in the vocabulary; using a plain one", rule)
        rule = "other"
    fields = {
        "k": str(chosen if chosen is not None else len(data.profiles)),
        "knee": str(knee) if knee is not None else fmt.missing,
        "stability": fmt.number(stability, 2),
        "knee_stability": fmt.number(by_k.get(knee, {}).get("stability"), 2),
        "silhouette": fmt.number(by_k.get(chosen, {}).get("silhouette"), 2),
    }
    return fill(templates[rule], fields)


def _selection_table(data: WarehouseData, vocab: Mapping, fmt: NumberFormat) -> dict:
    m = vocab["methodology"]
    chosen, knee = _chosen_and_knee(data)
    columns = [(column, digits) for column, digits in SELECTION_MEASURES if _measured(data.selection, column)]
    return {
        "headers": [m[f"col_{column}"] for column, _ in columns],
        "rows": [
            {
                "k": str(r["k"]),
                "chosen": r["k"] == chosen,
                "tags": [{"text": m["chosen_tag"], "kind": "chosen"}] * (r["k"] == chosen)
                + [{"text": m["knee_tag"], "kind": "knee"}] * (r["k"] == knee),
                "cells": [fmt.number(r.get(column), digits) for column, digits in columns],
            }
            for r in data.selection
        ],
    }


def _crosstab(
    rows: Sequence[Mapping],
    row_key: str,
    row_order: Sequence,
    row_labels: Mapping,
    column_ids: Sequence,
    fmt: NumberFormat,
    diagonal: bool = False,
) -> list[dict]:
    """Counts by (row value, segment), zero cells left faint. Flagged: the cell where row and
    column are the same segment (diagonal, for migration), else each row's largest cell."""
    counts: dict[tuple, int] = {}
    for r in rows:
        key = (r[row_key], r["segment_id"])
        counts[key] = counts.get(key, 0) + int(r["customers"] or 0)
    out = []
    for value in row_order:
        values = [counts.get((value, column), 0) for column in column_ids]
        top = max(values, default=0)
        flagged = [
            (column == value and value is not None) if diagonal else (v == top and v > 0)
            for column, v in zip(column_ids, values, strict=True)
        ]
        out.append(
            {
                "label": row_labels[value],
                "cells": [
                    {"text": fmt.number(v), "top": flag, "zero": v == 0}
                    for v, flag in zip(values, flagged, strict=True)
                ],
            }
        )
    return out


def _migration(
    data: WarehouseData, personas: Sequence[Persona], colours: Mapping[int, str], vocab: Mapping, fmt: NumberFormat
) -> dict | None:
    if not data.migration or not data.run.get("previous_run_id"):
        return None
    m = vocab["methodology"]
    previous = sorted({r["previous_segment_id"] for r in data.migration if r["previous_segment_id"] is not None})
    row_order = [*previous, None] if any(r["previous_segment_id"] is None for r in data.migration) else previous
    labels = {s: fill(m["previous_segment"], {"segment_id": str(s)}) for s in previous} | {None: m["new_customers"]}
    columns = _segment_columns(personas, colours, len(personas) <= 6)
    column_ids: list = [p.segment_id for p in personas]
    if any(r["segment_id"] is None for r in data.migration):
        columns.append({"badge": None, "colour": None, "text_colour": None, "name": m["gone"], "title": m["gone"]})
        column_ids.append(None)
    return {
        "lead": fill(m["migration_lead"], {"previous_run_id": str(data.run["previous_run_id"])}),
        "columns": columns,
        "rows": _crosstab(data.migration, "previous_segment_id", row_order, labels, column_ids, fmt, diagonal=True),
    }


def _label_agreement(
    data: WarehouseData, personas: Sequence[Persona], colours: Mapping[int, str], vocab: Mapping, fmt: NumberFormat
) -> dict | None:
    if not data.label_crosstab:
        return None
    m = vocab["methodology"]
    labels = sorted({str(r["label"]) for r in data.label_crosstab if r["label"] is not None})
    rows = [{**r, "label": str(r["label"]) if r["label"] is not None else fmt.missing} for r in data.label_crosstab]
    if any(r["label"] is None for r in data.label_crosstab):
        labels.append(fmt.missing)
    return {
        "lead": fill(
            m["labels_lead"],
            {
                "label_column": str(data.run.get("label_column") or fmt.missing),
                "ari": fmt.number(data.run.get("label_ari"), 2),
            },
        ),
        "columns": _segment_columns(personas, colours, len(personas) <= 6),
        "rows": _crosstab(
            rows, "label", labels, {label: label for label in labels}, [p.segment_id for p in personas], fmt
        ),
    }


def _weighting(run: Mapping, words: Mapping, fmt: NumberFormat) -> str | None:
    """How categorical features were weighted: a named scheme, or a number (older runs)."""
    scheme = run.get("categorical_weighting")
    if scheme:
        return words["weightings"].get(scheme, scheme)
    if run.get("categorical_weight") is not None:
        return fmt.number(run["categorical_weight"], 2)
    return None


def _methodology_context(
    data: WarehouseData,
    personas: Sequence[Persona],
    colours: Mapping[int, str],
    chart: Mapping[str, str],
    vocab: Mapping,
    fmt: NumberFormat,
    customers: int,
) -> dict:
    m = vocab["methodology"]
    run = data.run
    k = len(personas)
    ks = [r["k"] for r in data.selection] or [k]
    algorithm_code = str(run.get("algorithm") or "kmeans")
    algorithm = m["algorithms"].get(algorithm_code, algorithm_code)
    rule = run.get("selection_rule") or run.get("k_source") or "elbow"
    choice = _choice_sentence(data, vocab, fmt)
    step_fields = {
        "features": fmt.number(run.get("features")),
        "k": str(run.get("k") or k),
        "k_min": str(min(ks)),
        "k_max": str(max(ks)),
        "choice": choice,
        "algorithm": algorithm,
    }
    silhouette_sample = min(run.get("silhouette_sample") or customers, customers)
    threshold = _stability_threshold(run)
    details = [
        (m["run_id"], str(run["run_id"])),
        (m["finished_at"], _date(run.get("finished_at") or run.get("started_at"), vocab)),
        (m["algorithm"], algorithm),
        (m["k"], str(run.get("k") or k)),
        (m["k_chosen_by"], m["rule_labels"].get(rule, rule)),
        (m["categorical_weight"], _weighting(run, m, fmt)),
        (m["random_state"], str(run.get("random_state"))),
        (m["customers"], fmt.number(customers)),
        (m["features"], fmt.number(run.get("features"))),
        (m["previous_run"], str(run["previous_run_id"]) if run.get("previous_run_id") else None),
        (m["label_column"], str(run["label_column"]) if run.get("label_column") else None),
        (m["label_ari"], fmt.number(run["label_ari"], 2) if run.get("label_ari") is not None else None),
        (m["source_file"], str(run.get("source_file") or fmt.missing)),
    ]
    return {
        "lead": fill(m["lead"], {"algorithm": algorithm}),
        "steps": [{"title": step["title"], "text": fill(step["text"], step_fields)} for step in m["steps"]],
        "choice": choice,
        "selection_chart": chart.get("selection"),
        "selection_caption": [m["selection_caption"]]
        + [
            fill(
                m["measure_notes"][
                    f"{column}_threshold" if column == "stability" and threshold is not None else column
                ],
                {"sample": fmt.number(silhouette_sample), "threshold": fmt.number(threshold, 2)},
            )
            for column, _ in SELECTION_MEASURES
            if _measured(data.selection, column)
        ],
        "selection_table": _selection_table(data, vocab, fmt) if data.selection else None,
        "migration": _migration(data, personas, colours, vocab, fmt),
        "labels": _label_agreement(data, personas, colours, vocab, fmt),
        "run": [{"label": label, "value": value} for label, value in details if value is not None],
    }


def _share(fmt: NumberFormat, value: float | None) -> str:
    """A share as a whole percentage, with one decimal when it would otherwise read 0% or 100%."""
    if value is not None and (0 < value < 0.005 or 0.995 <= value < 1):
        return fmt.percent(value, 1)
    return fmt.percent(value)


def build_context(
    data: WarehouseData,
    personas: Sequence[Persona],
    chart: Mapping[str, str],
    vocab: Mapping,
    lang: str,
    rules: Mapping,
    inline_css: Markup | None = None,
) -> dict:
    """Everything the templates show, as ready-to-print strings.

    chart: chart key → URL of its image (file: URLs for the PDF, data: URLs for the
    self-contained HTML); inline_css: the stylesheets, for the HTML companion only.
    """
    fmt = NumberFormat.from_vocabulary(vocab)
    run = data.run
    profiles = {p["segment_id"]: p for p in data.profiles}
    base = base_profile(data.profiles)
    colours = charts.segment_colours(profiles)
    k = len(personas)
    # The summary's figures all come from segment_profiles, so they add up on the page.
    customers = sum(int(p["customers"]) for p in data.profiles)
    if run.get("customers") is not None and run["customers"] != customers:
        logger.warning(
            "run %s segmented %s customers, segment_profiles holds %d", run["run_id"], run["customers"], customers
        )
    date = _date(run.get("finished_at") or run.get("started_at"), vocab)
    t = vocab
    view = _map_view(data.projection)

    persona_pages = []
    for p in personas:
        profile = profiles[p.segment_id]
        persona_pages.append(
            {
                "anchor": f"segment-{p.segment_id}",
                "segment_id": p.segment_id,
                "colour": colours[p.segment_id],
                "text_colour": charts.text_colour(colours[p.segment_id]),
                "kicker": fill(t["persona"]["kicker"], {"segment_id": str(p.segment_id), "k": str(k)}),
                "name": p.name,
                "portrait": p.portrait,
                "demographics": p.demographics,
                "behaviour": p.behaviour,
                "stats": [
                    {"value": fmt.number(profile["customers"]), "label": t["persona"]["customers"]},
                    {"value": _share(fmt, profile["share_of_customers"]), "label": t["persona"]["of_customers"]},
                    {
                        "value": _share(fmt, profile["share_of_high_spenders"]),
                        "label": t["persona"]["of_high_spenders"],
                    },
                ],
                "figures": _key_figures(profile, base, vocab, fmt),
                "profession_chart": chart.get(f"professions_{p.segment_id}"),
                "locator_chart": chart.get(f"locator_{p.segment_id}"),
                "locator_caption": fill(t["persona"]["locator_caption"], {"view": t["compare"]["views"][view]})
                if view
                else "",
                "traits": _trait_rows(p),
                "actions": p.actions,
                "channels": p.channels,
                "customers": fill(t["summary"]["customers"], {"customers": fmt.number(profile["customers"])}),
                "share_of_customers": _share(fmt, profile["share_of_customers"]),
                "share_of_high_spenders": _share(fmt, profile["share_of_high_spenders"]),
            }
        )

    largest = max(personas, key=lambda p: profiles[p.segment_id]["customers"])
    tsne_points = int(np.isfinite(data.projection.get("tsne_x", np.array([]))).sum())
    sections = t["sections"]
    source = Path(str(run.get("source_file") or "")).name or fmt.missing
    doc = {
        "title": t["report"]["title"],
        "subtitle": t["report"]["subtitle"],
        "kicker": t["report"]["kicker"],
        "audience": t["report"]["audience"],
        "dataset": fill(t["report"]["dataset"], {"source": source, "customers": fmt.number(customers)}),
        "run": fill(t["report"]["run"], {"run_id": str(run["run_id"])}),
        "date": fill(t["report"]["date"], {"date": date}),
        "footer": fill(t["report"]["footer"], {"date": date}),
        "created": (run.get("finished_at") or datetime.now()).strftime("%Y-%m-%d"),  # W3C date, no time zone known
    }
    return {
        "lang": lang,
        "t": t,
        "doc": doc,
        "inline_css": inline_css,
        "palette": [colours[p.segment_id] for p in personas],
        "toc": [
            {"anchor": "summary", "label": sections["summary"], "children": []},
            {
                "anchor": persona_pages[0]["anchor"],
                "label": sections["personas"],
                "children": [
                    {"anchor": pp["anchor"], "label": pp["name"], "colour": pp["colour"]} for pp in persona_pages
                ],
            },
            {"anchor": "compare", "label": sections["compare"], "children": []},
            {"anchor": "methodology", "label": sections["methodology"], "children": []},
            {"anchor": "quality", "label": sections["quality"], "children": []},
        ],
        "summary": {
            "lead": fill(t["summary"]["lead"], {"customers": fmt.number(customers), "k": str(k)}),
            "kpis": [
                {"value": fmt.number(customers), "label": t["summary"]["kpi_customers"]},
                {"value": str(k), "label": t["summary"]["kpi_segments"]},
                {"value": _share(fmt, base["share_spending_high"]), "label": t["summary"]["kpi_high_spenders"]},
                {
                    "value": _share(fmt, profiles[largest.segment_id]["share_of_customers"]),
                    "label": fill(t["summary"]["kpi_largest"], {"name": largest.name}),
                },
            ],
            "sizes_chart": chart.get("sizes"),
        },
        "personas": persona_pages,
        "compare": {
            "heatmap": _heatmap(data.traits, personas, colours, rules, vocab, fmt),
            "pca_chart": chart.get("pca"),
            "tsne_chart": chart.get("tsne"),
            "tsne_caption": fill(t["compare"]["tsne_caption"], {"sample": fmt.number(tsne_points)}),
        },
        "methodology": _methodology_context(data, personas, colours, chart, vocab, fmt, customers),
        "quality": _quality_context(data, vocab, fmt),
    }


# --- rendering -----------------------------------------------------------------------------


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """Every template autoescaped (whatever its name), and undefined names are errors."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(context: Mapping, templates_dir: Path) -> str:
    return template_environment(templates_dir).get_template("report.html").render(**context)


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside `path`, then rename: a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_pdf(html: str, base_dir: Path, allowed_dirs: Iterable[Path], pdf_path: Path) -> int:
    """Lay out and write the PDF; returns its number of pages."""
    fetcher = AssetFetcher(allowed_dirs)
    document = HTML(string=html, base_url=str(base_dir), url_fetcher=fetcher).render()
    _write_atomically(pdf_path, document.write_pdf)
    if fetcher.refused:
        logger.warning("%d resource(s) refused while rendering", len(fetcher.refused))
    return len(document.pages)


def data_url(path: Path) -> str:
    """A chart as a data: URL, so the HTML companion needs no other file."""
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{content_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def inline_stylesheets(static_dir: Path) -> Markup:
    """The report's own stylesheets as one <style> body for the HTML companion.

    Marked safe because it is the project's own CSS, never data; refused if it could end
    the <style> element early.
    """
    css = "\n".join((static_dir / name).read_text(encoding="utf-8") for name in (*STYLESHEETS, SCREEN_STYLESHEET))
    if "</" in css:
        raise ReportError(f"a stylesheet in {static_dir} contains '</', which cannot be inlined in <style>")
    return Markup(css)


def render_report(warehouse: Path, output_dir: Path, lang: str = "en", templates_dir: Path | None = None) -> Path:
    """Write the PDF report, its HTML companion and the CRM export into ``output_dir``.

    Charts go to ``output_dir/charts``. Returns the PDF's path; the others are beside it
    (``segment_report.html``, ``segment_assignments.csv``).
    """
    started = time.perf_counter()
    settings = load_settings()
    reports_dir = settings.reports_dir
    templates_dir = Path(templates_dir) if templates_dir else reports_dir / "templates"
    output_dir = Path(output_dir)
    charts_dir = output_dir / CHARTS_DIRNAME

    logger.info("reading the latest segmentation from %s", warehouse)
    data = read_warehouse(Path(warehouse))
    rules = load_rules(settings.persona_rules_path)
    vocab = vocabulary(rules, lang)
    personas = build_personas(data.profiles, data.traits, data.profession_mix, rules, lang)
    logger.info("named %d personas: %s", len(personas), "; ".join(p.name for p in personas))

    fmt = NumberFormat.from_vocabulary(vocab)
    colours = charts.segment_colours([p["segment_id"] for p in data.profiles])
    chart_paths = _draw_charts(data, personas, colours, vocab, fmt, charts_dir)
    logger.info("drew %d charts in %s", len(chart_paths), charts_dir)

    # The CRM export is DuckDB's work (it releases the GIL): it runs beside the PDF layout.
    csv_path = output_dir / ASSIGNMENTS_FILENAME
    with ThreadPoolExecutor(max_workers=1) as background:
        export = background.submit(
            write_assignments, Path(warehouse), csv_path, {p.segment_id: p.name for p in personas}
        )
        file_urls = {key: path.resolve().as_uri() for key, path in chart_paths.items()}
        html = render_html(build_context(data, personas, file_urls, vocab, lang, rules), templates_dir)
        pdf_path = output_dir / REPORT_FILENAME
        pages = write_pdf(html, reports_dir, [reports_dir / "static", charts_dir], pdf_path)
        logger.info("wrote %s (%d pages) in %.1f s", pdf_path, pages, time.perf_counter() - started)
        rows = export.result()
    logger.info("wrote %s (%s customers)", csv_path, f"{rows:,}")

    embedded = {key: data_url(path) for key, path in chart_paths.items()}
    companion = render_html(
        build_context(
            data, personas, embedded, vocab, lang, rules, inline_css=inline_stylesheets(reports_dir / "static")
        ),
        templates_dir,
    )
    html_path = output_dir / HTML_FILENAME
    _write_atomically(html_path, lambda tmp: tmp.write_text(companion, encoding="utf-8"))
    logger.info("wrote %s (self-contained, %.1f MB)", html_path, html_path.stat().st_size / 1e6)
    return pdf_path
