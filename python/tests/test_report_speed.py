"""What makes the PDF quicker must not change it: lean SVG charts, the trimmed default stylesheet, opaque PNGs.

Each is checked the way a reader would see it: the same document rendered both ways by the real
WeasyPrint, every page drawn to pixels by PDFium and compared.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import jinja2
import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image
from weasyprint import HTML
from weasyprint.html import UA
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import path2url

from segmentation import charts
from segmentation.config import load_settings
from segmentation.report.chart_files import lean_svg
from segmentation.report.render import (
    AssetFetcher,
    ReportHTML,
    font_configuration,
    report_ua_css,
    template_environment,
    warm_up,
)


def pixels(pdf: bytes, scale: float = 2.0) -> list[np.ndarray]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [np.asarray(page.render(scale=scale).to_pil().convert("RGB"), dtype=int) for page in document]
    finally:
        document.close()


def render(document: type[HTML], html: str, assets: Path) -> bytes:
    fetcher = AssetFetcher([assets])
    return document(string=html, base_url=str(assets), url_fetcher=fetcher).write_pdf()


def page_with(image: Path) -> str:
    return f'<html><body style="margin: 0"><img src="{path2url(str(image))}" style="width: 170mm"></body></html>'


def nodes(svg: bytes) -> int:
    return sum(1 for _ in ElementTree.fromstring(svg).iter())


def matplotlib_svg(path: Path) -> bytes:
    """A chart as matplotlib writes it (charts._save leans it): the panels of the choice of k."""
    panels = [
        {"title": "Inertia", "note": "lower", "values": [9.0, 6.5, 5.0, 4.6], "digits": 0},
        {"title": "Stability", "note": "higher", "values": [0.9, 0.8, None, 0.7], "digits": 2, "threshold": 0.75},
    ]
    labels = {"k": "k", "chosen": "chosen k = 3", "knee": "knee: k = 3"}
    charts.selection_panels(path, [2, 3, 4, 5], panels, 3, 3, labels)
    return path.read_bytes()


def test_a_lean_chart_draws_the_same_pixels_with_half_the_nodes(tmp_path, monkeypatch):
    lean = matplotlib_svg(tmp_path / "lean.svg")
    monkeypatch.setattr("segmentation.report.chart_files.lean_svg", lambda data: data)
    raw = matplotlib_svg(tmp_path / "raw.svg")
    assert lean == lean_svg(raw)
    assert nodes(lean) < 0.6 * nodes(raw)
    assert b"<metadata" not in lean and b"style=" not in lean and b"<style" not in lean
    before = pixels(render(HTML, page_with(tmp_path / "raw.svg"), tmp_path))
    after = pixels(render(HTML, page_with(tmp_path / "lean.svg"), tmp_path))
    assert len(before) == len(after) == 1
    assert np.array_equal(before[0], after[0])
    assert (before[0] < 128).any()  # something was drawn


def test_lean_svg_keeps_what_draws_or_is_referred_to():
    svg = b"""<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
      <defs><style type="text/css">*{stroke-linecap: butt}</style></defs>
      <g id="kept"><path id="p" d="M 0 0 L 1 1" style="stroke: #000; stroke-linecap: square"/></g>
      <g id="bare"><g><text transform="rotate(-0 1 2)" x="1" y="2">a</text></g></g>
      <g transform="translate(1 1)"><use xlink:href="#kept"/></g>
      <text transform="rotate(90 1 2)">b</text>
    </svg>"""
    root = ElementTree.fromstring(lean_svg(svg))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.find("svg:g[@id='kept']", ns) is not None  # referred to by a <use>
    assert root.find("svg:g[@id='bare']", ns) is None
    assert root.find("svg:g[@transform]", ns) is not None
    path = root.find(".//svg:path", ns)
    assert path.get("stroke-linecap") == "square" and path.get("stroke") == "#000"  # the element's style wins
    texts = root.findall("svg:text", ns)
    assert [t.get("transform") for t in texts] == [None, "rotate(90 1 2)"]
    assert all(e.get("stroke-linecap") for e in root.iter())  # the * rule, on every element


def test_a_file_that_is_not_xml_is_left_as_it_is():
    broken = b'<svg xmlns="http://www.w3.org/2000/svg"><text>\x01</text></svg>'
    assert lean_svg(broken) == broken


def test_a_stylesheet_with_more_than_one_rule_is_left_as_css():
    svg = b"""<svg xmlns="http://www.w3.org/2000/svg"><style>*{fill: red} path{fill: blue}</style>
      <path d="M 0 0 L 1 1" style="stroke: #000"/></svg>"""
    lean = lean_svg(svg)
    assert b"<style>*{fill: red} path{fill: blue}</style>" in lean and b'style="stroke: #000"' in lean


def test_the_default_stylesheet_is_trimmed_only_of_notes_and_markers_outside_lists():
    trimmed = report_ua_css(UA)
    assert trimmed is not None, "WeasyPrint's default stylesheet changed: review report_ua_css"
    removed = set(UA.splitlines()) - set(trimmed.splitlines())
    assert all(line.startswith(("::footnote-", "::note-", "::marker")) for line in removed)
    assert "li::marker {" in trimmed
    assert report_ua_css(UA.replace("::note-callback", "::note-backlink")) is None  # unexpected: left whole


def test_the_trimmed_stylesheet_lays_out_the_same_pages(tmp_path):
    items = "".join(f"<li>item {i}</li>" for i in range(12))
    html = f"""<html lang="en"><body><h1>Title</h1><p>Some <strong>text</strong> and a
      <a href="#x">link</a>.</p><ol>{items}</ol><ul>{items}</ul><table><tr><th>a</th><td>1</td></tr></table>
      <p id="x">{"words " * 400}</p></body></html>"""
    assert np.array_equal(
        np.stack(pixels(render(HTML, html, tmp_path), 1.0)), np.stack(pixels(render(ReportHTML, html, tmp_path), 1.0))
    )


def test_scatter_pngs_are_written_opaque(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=200), rng.normal(size=200)
    path = charts.locator(tmp_path / "locator.png", x, y, rng.integers(1, 3, size=200), 1, "#0072B2")
    with Image.open(path) as image:
        assert image.mode == "RGB"
        assert image.info["dpi"] == pytest.approx((charts.SCATTER_DPI, charts.SCATTER_DPI), abs=0.01)
        assert (np.asarray(image) < 128).any()


def test_warm_up_compiles_every_template_once_per_process(tmp_path):
    templates = load_settings().reports_dir / "templates"
    warm_up(templates)
    environment = template_environment(templates)
    assert environment is template_environment(templates)
    names = environment.list_templates(extensions=("html",))
    assert "report.html" in names and len(environment.cache) == len(names)  # every one compiled, once
    (tmp_path / "broken.html").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(jinja2.TemplateSyntaxError):
        warm_up(tmp_path)


def test_the_shared_font_configuration_writes_the_same_pdf_as_a_fresh_one():
    html = "<p>Body <b>bold</b> <i>italic</i> <span style='font-family: DejaVu Sans Condensed'>narrow 1,234</span></p>"
    fresh = ReportHTML(string=html).write_pdf(font_config=FontConfiguration())
    shared = [ReportHTML(string=html).write_pdf(font_config=font_configuration()) for _ in range(2)]
    assert font_configuration() is font_configuration()
    assert shared == [fresh, fresh]
