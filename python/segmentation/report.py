"""The persona report: warehouse → context → HTML (Jinja2) → PDF (WeasyPrint).

Python prepares every figure and sentence of the context (numbers formatted for
the report's language, words from ``reports/i18n/<lang>.yml`` and the persona
rules); the templates only loop and place. Data reaches the page only as values
in autoescaped templates, and WeasyPrint fetches nothing but the report's own
stylesheets and charts (see ``AssetFetcher``).
"""

from __future__ import annotations

import logging
import math
import mimetypes
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import duckdb
import jinja2
import numpy as np
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from segmentation import charts
from segmentation.config import load_settings
from segmentation.errors import UserError
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
CHARTS_DIRNAME = "charts"
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


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


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
    chosen = next((r["k"] for r in data.selection if r["is_chosen"]), data.run.get("k"))
    knee = next((r["k"] for r in data.selection if r.get("is_knee")), data.run.get("knee_k"))  # not always recorded
    if data.selection:
        ks = [r["k"] for r in data.selection]
        chosen_label = fill(c["chosen"], {"k": str(chosen)})
        paths["elbow"] = charts.elbow(
            charts_dir / "elbow.svg",
            ks,
            [r["inertia"] for r in data.selection],
            chosen,
            {"k": c["k"], "inertia": c["inertia"], "chosen": chosen_label, "knee": fill(c["knee"], {"k": str(knee)})},
            fmt.number,
            knee_k=knee,
        )
        paths["silhouette"] = charts.silhouette(
            charts_dir / "silhouette.svg",
            ks,
            [r["silhouette"] for r in data.selection],
            chosen,
            {"k": c["k"], "silhouette": c["silhouette"]},
            fmt.number,
        )
    proj = data.projection
    if len(proj.get("segment_id", [])):
        segments = proj["segment_id"].astype(int)
        for key, x, y in (("pca", "pca_x", "pca_y"), ("tsne", "tsne_x", "tsne_y")):
            if np.isfinite(proj[x]).any():
                paths[key] = charts.scatter(
                    charts_dir / f"{key}.png",
                    proj[x],
                    proj[y],
                    segments,
                    colours,
                    {"x": c[f"{key}_x"], "y": c[f"{key}_y"]},
                    {s: fill(c["legend"], {"segment_id": str(s)}) for s in colours},
                )
    return paths


def build_context(
    data: WarehouseData, personas: Sequence[Persona], chart_paths: Mapping[str, Path], vocab: Mapping, lang: str
) -> dict:
    """Everything the templates show, as ready-to-print strings."""
    fmt = NumberFormat.from_vocabulary(vocab)
    run = data.run
    profiles = {p["segment_id"]: p for p in data.profiles}
    base = base_profile(data.profiles)
    colours = charts.segment_colours(profiles)
    k = len(personas)
    customers = run.get("customers") or sum(p["customers"] for p in data.profiles)
    date = _date(run.get("finished_at") or run.get("started_at"), vocab)
    chart = {key: path.resolve().as_uri() for key, path in chart_paths.items()}
    t = vocab

    persona_pages = []
    for p in personas:
        profile = profiles[p.segment_id]
        persona_pages.append(
            {
                "anchor": f"segment-{p.segment_id}",
                "segment_id": p.segment_id,
                "colour": colours[p.segment_id],
                "kicker": fill(t["persona"]["kicker"], {"segment_id": str(p.segment_id), "k": str(k)}),
                "name": p.name,
                "portrait": p.portrait,
                "demographics": p.demographics,
                "behaviour": p.behaviour,
                "stats": [
                    {"value": fmt.number(profile["customers"]), "label": t["persona"]["customers"]},
                    {"value": fmt.percent(profile["share_of_customers"]), "label": t["persona"]["of_customers"]},
                    {
                        "value": fmt.percent(profile["share_of_high_spenders"]),
                        "label": t["persona"]["of_high_spenders"],
                    },
                ],
                "figures": _key_figures(profile, base, vocab, fmt),
                "profession_chart": chart.get(f"professions_{p.segment_id}"),
                "traits": _trait_rows(p),
                "actions": p.actions,
                "channels": p.channels,
                "share_of_customers": fmt.percent(profile["share_of_customers"]),
                "share_of_high_spenders": fmt.percent(profile["share_of_high_spenders"]),
            }
        )

    largest = max(personas, key=lambda p: profiles[p.segment_id]["customers"])
    ks = [r["k"] for r in data.selection] or [k]
    k_source = run.get("k_source") or "elbow"
    k_source_text = fill(
        t["methodology"]["k_source"].get(k_source, t["methodology"]["k_source"]["elbow"]),
        {"k": str(run.get("k") or k), "k_min": str(min(ks)), "k_max": str(max(ks))},
    )
    tsne_points = int(np.isfinite(data.projection.get("tsne_x", np.array([]))).sum())
    silhouette_sample = min(run.get("silhouette_sample") or customers, customers)
    step_fields = {"features": fmt.number(run.get("features")), "k": str(run.get("k") or k), "k_source": k_source_text}
    sections = t["sections"]
    doc = {
        "title": t["report"]["title"],
        "subtitle": t["report"]["subtitle"],
        "kicker": t["report"]["kicker"],
        "audience": t["report"]["audience"],
        "run": fill(t["report"]["run"], {"run_id": str(run["run_id"])}),
        "date": fill(t["report"]["date"], {"date": date}),
        "footer": fill(t["report"]["footer"], {"date": date}),
        "created": (run.get("finished_at") or datetime.now()).strftime("%Y-%m-%d"),  # W3C date, no time zone known
    }
    return {
        "lang": lang,
        "t": t,
        "doc": doc,
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
            {"anchor": "methodology", "label": sections["methodology"], "children": []},
            {"anchor": "quality", "label": sections["quality"], "children": []},
        ],
        "summary": {
            "lead": fill(t["summary"]["lead"], {"customers": fmt.number(customers), "k": str(k)}),
            "kpis": [
                {"value": fmt.number(customers), "label": t["summary"]["kpi_customers"]},
                {"value": str(k), "label": t["summary"]["kpi_segments"]},
                {"value": fmt.percent(base["share_spending_high"]), "label": t["summary"]["kpi_high_spenders"]},
                {
                    "value": fmt.percent(profiles[largest.segment_id]["share_of_customers"]),
                    "label": fill(t["summary"]["kpi_largest"], {"name": largest.name}),
                },
            ],
            "sizes_chart": chart.get("sizes"),
        },
        "personas": persona_pages,
        "methodology": {
            "steps": [
                {"title": step["title"], "text": fill(step["text"], step_fields)} for step in t["methodology"]["steps"]
            ],
            "elbow_chart": chart.get("elbow"),
            "silhouette_chart": chart.get("silhouette"),
            "silhouette_caption": fill(
                t["methodology"]["silhouette_caption"], {"sample": fmt.number(silhouette_sample)}
            ),
            "pca_chart": chart.get("pca"),
            "tsne_chart": chart.get("tsne"),
            "tsne_caption": fill(t["methodology"]["tsne_caption"], {"sample": fmt.number(tsne_points)}),
            "run": [
                {"label": t["methodology"]["run_id"], "value": str(run["run_id"])},
                {"label": t["methodology"]["finished_at"], "value": date},
                {"label": t["methodology"]["algorithm"], "value": str(run.get("algorithm") or fmt.missing)},
                {"label": t["methodology"]["k"], "value": str(run.get("k") or k)},
                {
                    "label": t["methodology"]["k_chosen_by"],
                    "value": t["methodology"]["k_sources"].get(k_source, k_source),
                },
                {"label": t["methodology"]["random_state"], "value": str(run.get("random_state"))},
                {"label": t["methodology"]["customers"], "value": fmt.number(customers)},
                {"label": t["methodology"]["features"], "value": fmt.number(run.get("features"))},
                {"label": t["methodology"]["source_file"], "value": str(run.get("source_file") or fmt.missing)},
            ],
        },
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


def write_pdf(html: str, base_dir: Path, allowed_dirs: Iterable[Path], pdf_path: Path) -> int:
    """Lay out and write the PDF; returns its number of pages."""
    fetcher = AssetFetcher(allowed_dirs)
    document = HTML(string=html, base_url=str(base_dir), url_fetcher=fetcher).render()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pdf_path.with_suffix(".pdf.tmp")
    document.write_pdf(tmp)
    tmp.replace(pdf_path)  # never leave a half-written report behind
    if fetcher.refused:
        logger.warning("%d resource(s) refused while rendering", len(fetcher.refused))
    return len(document.pages)


def render_report(warehouse: Path, output_dir: Path, lang: str = "en", templates_dir: Path | None = None) -> Path:
    """Write ``output_dir/segment_report.pdf`` (charts under ``output_dir/charts``) and return its path."""
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

    context = build_context(data, personas, chart_paths, vocab, lang)
    html = render_html(context, templates_dir)
    pdf_path = output_dir / REPORT_FILENAME
    pages = write_pdf(html, reports_dir, [reports_dir / "static", charts_dir], pdf_path)
    logger.info("wrote %s (%d pages) in %.1f s", pdf_path, pages, time.perf_counter() - started)
    return pdf_path
