"""The persona report: warehouse → personas → one context per page → HTML (Jinja2) → PDF (WeasyPrint).

- ``warehouse``: reads the published warehouse (the only module that talks to DuckDB);
- ``i18n``: vocabulary and rules files, numbers and dates in the report's language;
- ``cover``, ``summary``, ``persona_page``, ``compare``, ``methodology``, ``quality``:
  one context builder per page (Python prepares every string; templates only place them);
- ``figures``: the charts of a render (``drawing`` draws them, ``chart_files`` makes their
  files quick for WeasyPrint); ``render``: templates, the restricted fetcher, atomic writes,
  ``warm_up`` (templates and fonts loaded ahead of a render); ``build``: ``render_report``,
  the entry point.

Everything is driven by the declaration's catalog (labels, units, words, levels): no
module or template names a column. Names are imported lazily, so that ``personas`` can
use ``report.i18n`` without loading WeasyPrint.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "render_report": "build",
    "build_context": "build",
    "prepare": "build",
    "REPORT_FILENAME": "build",
    "HTML_FILENAME": "build",
    "CHARTS_DIRNAME": "build",
    "AssetFetcher": "render",
    "FetchRefused": "render",
    "STYLESHEETS": "render",
    "SCREEN_STYLESHEET": "render",
    "template_environment": "render",
    "render_html": "render",
    "write_pdf": "render",
    "warm_up": "render",
    "write_atomically": "render",
    "inline_stylesheets": "render",
    "data_url": "render",
    "ReportError": "warehouse",
    "WarehouseData": "warehouse",
    "read_warehouse": "warehouse",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"segmentation.report.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'segmentation.report' has no attribute {name!r}")
