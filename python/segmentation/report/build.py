"""From the warehouse to the three files: PDF, self-contained HTML twin, CRM export."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from markupsafe import Markup

from segmentation import charts
from segmentation.config import load_settings
from segmentation.export import ASSIGNMENTS_FILENAME, write_assignments
from segmentation.personas import Catalog, build_personas
from segmentation.report import behaviour, compare, cover, methodology, order_quality, persona_page, quality, summary
from segmentation.report.common import PageInputs
from segmentation.report.figures import start_charts
from segmentation.report.i18n import NumberFormat, load_rules, vocabulary
from segmentation.report.render import data_url, inline_stylesheets, render_html, write_atomically, write_pdf
from segmentation.report.warehouse import WarehouseData, read_warehouse

logger = logging.getLogger(__name__)

REPORT_FILENAME = "segment_report.pdf"
HTML_FILENAME = "segment_report.html"
CHARTS_DIRNAME = "charts"


def build_context(inputs: PageInputs, inline_css: Markup | None = None) -> dict:
    """Everything the templates show, as ready-to-print strings, one builder per page.

    inline_css: the stylesheets, for the HTML companion only.
    """
    persona_pages = persona_page.build_all(inputs)
    return {
        "lang": inputs.lang,
        "t": inputs.vocab,
        "doc": cover.document(inputs),
        "inline_css": inline_css,
        "palette": [inputs.colours[p.segment_id] for p in inputs.personas],
        "toc": cover.contents(inputs, persona_pages),
        "summary": summary.build(inputs, persona_pages),
        "personas": persona_pages,
        "compare": compare.build(inputs),
        "behaviour": behaviour.build(inputs),
        "methodology": methodology.build(inputs),
        "quality": quality.build(inputs),
        "order_quality": order_quality.build(inputs),
    }


def prepare(data: WarehouseData, rules: Mapping, lang: str) -> tuple[Catalog, list, dict, NumberFormat]:
    """The catalog in the report's language, the personas, the vocabulary and number format."""
    vocab = vocabulary(rules, lang)
    catalog = Catalog.from_rows(data.catalog, data.levels, lang)
    personas = build_personas(data.profiles, data.traits, catalog, rules, lang)
    return catalog, personas, vocab, NumberFormat.from_vocabulary(vocab)


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
    catalog, personas, vocab, fmt = prepare(data, rules, lang)
    logger.info("named %d personas: %s", len(personas), "; ".join(p.name for p in personas))
    colours = charts.segment_colours([p["segment_id"] for p in data.profiles])
    # The charts are drawn in worker processes while this one renders the HTML and lays out
    # the PDF's styles; WeasyPrint's fetcher waits for each chart as the layout reaches it.
    drawing = start_charts(data, personas, catalog, colours, vocab, fmt, charts_dir)

    def inputs(chart: Mapping[str, str]) -> PageInputs:
        return PageInputs(data, personas, catalog, colours, chart, vocab, rules, fmt, lang)

    try:
        # The CRM export is DuckDB's work (it releases the GIL): it runs beside the PDF layout, and
        # beside the HTML companion's render when it is the longer (ten million customers).
        csv_path = output_dir / ASSIGNMENTS_FILENAME
        with ThreadPoolExecutor(max_workers=1) as background:
            export = background.submit(
                write_assignments, Path(warehouse), csv_path, {p.segment_id: p.name for p in personas}
            )
            file_urls = {key: path.resolve().as_uri() for key, path in drawing.paths.items()}
            html = render_html(build_context(inputs(file_urls)), templates_dir)
            pdf_path = output_dir / REPORT_FILENAME
            allowed = [reports_dir / "static", charts_dir]
            pages = write_pdf(html, reports_dir, allowed, pdf_path, before_read=drawing.wait)
            chart_paths = drawing.finish()
            logger.info("wrote %s (%d pages) in %.1f s", pdf_path, pages, time.perf_counter() - started)

            embedded = {key: data_url(path) for key, path in chart_paths.items()}
            css = inline_stylesheets(reports_dir / "static")
            companion = render_html(build_context(inputs(embedded), inline_css=css), templates_dir)
            html_path = output_dir / HTML_FILENAME
            write_atomically(html_path, lambda tmp: tmp.write_text(companion, encoding="utf-8"))
            logger.info("wrote %s (self-contained, %.1f MB)", html_path, html_path.stat().st_size / 1e6)
            rows = export.result()
    finally:
        drawing.close()
    logger.info("wrote %s (%s customers)", csv_path, f"{rows:,}")
    return pdf_path
