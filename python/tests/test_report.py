"""The PDF report, rendered for real by WeasyPrint from small real DuckDB warehouses of three schemas.

The warehouses (tests/warehouses.py) hold the marts dbt generates from a declaration: the
seed-like table, a retailer's table (income, spend, purchases, children) and a tiny one
(one category, two numbers). Nothing in the report may depend on which.
"""

from __future__ import annotations

import functools
import http.server
import logging
import re
import threading
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pytest
import warehouses
import yaml
from PIL import Image
from pypdf import PdfReader
from weasyprint.urls import path2url

from segmentation import charts, report
from segmentation.config import load_settings
from segmentation.report import quality
from segmentation.report.build import prepare
from segmentation.report.common import PageInputs, crosstab
from segmentation.report.i18n import NumberFormat, load_rules, vocabulary
from segmentation.report.methodology import choice_sentence

SEED_COLUMNS = ("gender", "married", "graduated", "profession", "work experience", "work_experience", "spending score",
                "spending_score", "family size", "family_size", "var_1", "has_degree", "is_married")  # fmt: skip


def pdf_pages(path: Path) -> list[str]:
    stat = Path(path).stat()
    return list(_pdf_pages(Path(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _pdf_pages(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Text extraction is the slow part of these tests: once per file version."""
    return tuple(page.extract_text() or "" for page in PdfReader(path).pages)


def squash(text: str) -> str:
    """Text without whitespace: line wrapping in the PDF must not hide a string."""
    return re.sub(r"\s+", "", text)


def spaced(text: str) -> str:
    return " ".join(text.split())


def rows_of(warehouse: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def personas_of(warehouse: Path, lang: str = "en"):
    rules = load_rules(load_settings().persona_rules_path)
    return prepare(report.read_warehouse(warehouse), rules, lang)[1]


def render_recording_fetches(warehouse: Path, output: Path, lang: str = "en") -> tuple[Path, list[str]]:
    """Render, and record every URL WeasyPrint asked the restricted fetcher for."""
    fetched: list[str] = []
    original = report.AssetFetcher.fetch

    def recording(self, url, headers=None):
        fetched.append(url)
        return original(self, url, headers)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report.AssetFetcher, "fetch", recording)
        pdf = report.render_report(warehouse, output, lang=lang)
    return pdf, fetched


class Rendered:
    """Warehouses and their reports, built once per test module and on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple, tuple[Path, Path, list[str]]] = {}

    def __call__(self, schema: str, lang: str = "en", **options) -> tuple[Path, Path, list[str]]:
        key = (schema, lang, tuple(sorted(options.items())))
        if key not in self.cache:
            name = "_".join([schema, lang, *(k for k, v in sorted(options.items()) if v)])
            warehouse = warehouses.build(self.root / f"{name}.duckdb", schema, **options)
            pdf, fetched = render_recording_fetches(warehouse, self.root / name, lang)
            self.cache[key] = (pdf, warehouse, fetched)
        return self.cache[key]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Rendered:
    return Rendered(tmp_path_factory.mktemp("report"))


def page_index(pages: list[str], pattern: str) -> list[int]:
    return [i for i, text in enumerate(pages) if re.search(pattern, text)]


# --- the pages ---------------------------------------------------------------------------------


def test_pdf_has_one_page_per_part(rendered):
    pdf, _, _ = rendered("seed")
    pages = pdf_pages(pdf)
    assert pdf.name == "segment_report.pdf" and pdf.is_file()
    assert "Customer segments" in pages[0] and "IN THIS REPORT" in pages[0]  # cover with contents
    assert "Data set: customers.csv, 740 customers" in pages[0] and "run-2024-b" in pages[0]
    assert "Executive summary" in pages[1]
    assert page_index(pages, r"(?i)Segment \d of 4") == [2, 3, 4, 5]  # one page per persona, in order
    compare = page_index(pages, "HOW SEGMENTS COMPARE")
    methodology = page_index(pages, "HOW THE SEGMENTS WERE BUILT")
    quality_pages = page_index(pages, "DATA QUALITY")
    assert compare[0] == 6 and methodology[0] == compare[-1] + 1 and quality_pages == [len(pages) - 1]
    assert all(text.strip() for text in pages)
    for i, text in enumerate(pages[1:], start=2):
        assert f"Page {i} of {len(pages)}" in text and "Customer segments · 14 March 2024" in text


def test_contents_list_every_section_with_its_page(rendered):
    pdf, _, _ = rendered("seed")
    pages = pdf_pages(pdf)
    cover = spaced(pages[0])
    for label, pattern in (
        ("Executive summary", "EXECUTIVE SUMMARY"),
        ("How segments compare", "HOW SEGMENTS COMPARE"),
    ):
        page = page_index(pages, pattern)[0] + 1
        assert re.search(re.escape(label) + r"[ .]*" + str(page) + r"\b", cover), label


@pytest.mark.parametrize("schema", ["seed", "retail", "tiny"])
def test_every_persona_is_named_distinctly_on_its_page_the_summary_and_the_contents(rendered, schema):
    pdf, warehouse, _ = rendered(schema)
    pages = pdf_pages(pdf)
    names = [p.name for p in personas_of(warehouse)]
    assert len({n.casefold() for n in names}) == len(names)
    for i, name in enumerate(names):
        assert squash(name) in squash(pages[0])  # contents
        assert squash(name) in squash(pages[1])  # persona table
        assert squash(name) in squash(pages[2 + i])  # its own page


@pytest.mark.parametrize("schema", ["seed", "retail", "tiny"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_names_are_worded_with_the_declared_labels_and_words(schema, lang, tmp_path):
    warehouse = warehouses.build(tmp_path / "w.duckdb", schema)
    rules = load_rules(load_settings().persona_rules_path)
    declared = set()
    for f in rows_of(warehouse, "select * from marts.feature_catalog"):
        declared |= {f[f"{key}_{lang}"] for key in ("label", "high", "low") if f[f"{key}_{lang}"]}
    declared |= {r[f"label_{lang}"] for r in rows_of(warehouse, "select * from marts.feature_levels")}
    declared |= {r["level"] for r in rows_of(warehouse, "select distinct level from marts.segment_traits")} - {None}
    refined = {w[lang] for levels in rules["refinements"]["levels"].values() for w in levels.values()}
    for persona in personas_of(warehouse, lang):
        name = persona.name.casefold()
        assert any(w.casefold() in name for w in declared | refined), persona.name


def test_retail_report_speaks_of_its_own_columns_only(rendered):
    for lang in ("en", "fr"):
        pdf, _, _ = rendered("retail", lang)
        text = " ".join(pdf_pages(pdf)).casefold()
        left = [column for column in SEED_COLUMNS if column in text]
        assert left == [], (lang, left)
        label = "income" if lang == "en" else "revenu"
        assert label in text and ("affluent" if lang == "en" else "aisés") in text


def test_every_summary_figure_agrees_with_segment_profiles(rendered):
    pdf, warehouse, _ = rendered("retail")
    summary = spaced(pdf_pages(pdf)[1])
    profiles = rows_of(warehouse, "select * from marts.segment_profiles order by segment_id")
    total = sum(p["customers"] for p in profiles)
    largest = max(profiles, key=lambda p: p["customers"])
    assert f"{total:,} customers segmented" in summary and f"{len(profiles)} segments" in summary
    assert f"{largest['share_of_customers']:.0%} of customers in the largest segment" in summary
    table = summary[summary.index("The personas at a glance") :]
    rows = re.findall(r"(\d+)% (\d[\d,]*) customers", table)
    assert [(int(a), int(n.replace(",", ""))) for a, n in rows] == [
        (round(100 * p["share_of_customers"]), p["customers"]) for p in profiles
    ]


def test_the_heatmap_shows_every_segments_lift_on_every_feature(rendered):
    pdf, warehouse, _ = rendered("retail")
    pages = pdf_pages(pdf)
    page = spaced(" ".join(pages[i] for i in page_index(pages, "HOW SEGMENTS COMPARE")))
    lifts = {
        r["segment_id"]: r["lift"]
        for r in rows_of(warehouse, "select * from marts.segment_traits where feature = 'income'")
    }
    income = re.search(r"income [\d,]+ € ((?:×[\d.]+ ){3})", page)
    assert income, page
    assert income.group(1).split() == [f"×{lifts[s]:.1f}" for s in (1, 2, 3)]
    for label in ("education", "doctorate", "children at home", "responded to the last campaign"):
        assert label in page
    assert "Principal component analysis" in page and "t-SNE" in page


def test_persona_pages_show_key_figures_the_mix_of_their_telling_category_and_a_locator(rendered):
    pdf, warehouse, _ = rendered("seed")
    charts_dir = pdf.parent / "charts"
    personas = personas_of(warehouse)
    pages = pdf_pages(pdf)
    for i, persona in enumerate(personas):
        assert persona.mix_feature is not None
        assert (charts_dir / f"mix_segment_{persona.segment_id}.svg").is_file()
        label = next(r["label_en"] for r in rows_of(warehouse, "select * from marts.feature_catalog")
                     if r["feature"] == persona.mix_feature)  # fmt: skip
        assert f"MIX BY {label.upper()}" in pages[2 + i]
        top = persona.traits[0]
        assert top.shown.feature.label in pages[2 + i]
        image = Image.open(charts_dir / f"locator_segment_{persona.segment_id}.png").convert("RGB")
        colour = tuple(int(charts.SEGMENT_PALETTE[persona.segment_id - 1][j : j + 2], 16) for j in (1, 3, 5))
        assert colour in {c for _, c in image.getcolors(1 << 16)}
    lawyers = pages[2 + next(i for i, p in enumerate(personas) if "awyer" in p.name)]
    assert re.search(r"profession: Lawyer\s+100%\s+/\s+1\d%", lawyers)
    assert "years" in lawyers  # units of the declaration


def test_data_quality_words_reasons_from_the_rule_and_the_label(rendered):
    pdf, warehouse, _ = rendered("retail")
    text = spaced(pdf_pages(pdf)[-1])
    accounting = {r["item"]: r["rows"] for r in rows_of(warehouse, "select * from marts.data_quality_summary")}
    read = accounting["rows_read"]
    assert f"All {read:,} rows are accounted for." in text
    quarantine = {
        r["item"]: r["rows"]
        for r in rows_of(warehouse, "select * from marts.data_quality_summary where section = 'quarantine'")
    }
    for reason, words in (
        ("income_out_of_range", "income: value outside the accepted range"),
        ("unparseable_income", "income: value not readable"),
        ("unknown_education", "education: value not recognised"),
    ):
        assert f"{words} {quarantine[reason]}" in text, words
    assert "2n Cycle" in text and "666666" in text  # examples, as in the file
    assert re.search(r"age \d+ \d", text) and "children at home" in text  # imputed, by their labels
    assert "Notes" in text  # a column of the file not declared


def test_methodology_shows_the_criteria_present_and_the_model_and_why(rendered):
    pdf, _, _ = rendered("tiny", bic=True, reason="user")
    pages = pdf_pages(pdf)
    text = spaced(" ".join(pages[i] for i in page_index(pages, "HOW THE SEGMENTS WERE BUILT")))
    assert "Model used: latent class model. It was chosen by the analyst." in text
    assert re.search(r"STABILITY \(ARI\) BIC ICL", text)
    assert "BIC: the Bayesian information criterion" in text
    plain, _, _ = rendered("tiny")
    plain_text = " ".join(pdf_pages(plain))
    assert "BIC" not in plain_text and "Model used" not in plain_text and "K-Means" in plain_text
    assert "3 declared features (region, spend, visits)" in spaced(plain_text)


def test_migration_since_the_previous_run_is_shown_when_recorded(rendered):
    pdf, _, _ = rendered("tiny", previous_run=True)
    text = spaced(" ".join(pdf_pages(pdf)))
    assert "How customers moved since the previous run" in text and "(old-run)" in text


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("user", "The number of segments, k = 4, was set by the analyst; for comparison, the elbow"),
        ("elbow", "We chose k = 4: it is where the elbow of the inertia curve lies. No number of segments"),
        ("elbow_stable", "and its segments are stable (mean ARI 0.93 across bootstrap fits)."),
        ("best_silhouette_stable", "(silhouette 0.31, mean ARI 0.93)."),
        ("a_rule_from_the_future", "We chose k = 4."),
    ],
)
def test_every_selection_rule_reads_as_one_sentence(rule, expected):
    rules = load_rules(load_settings().persona_rules_path)
    data = report.WarehouseData(
        run={"k": 4, "knee_k": 3, "selection_rule": rule},
        selection=[
            {"k": 3, "is_chosen": False, "is_knee": True, "silhouette": 0.26, "stability": 0.71},
            {"k": 4, "is_chosen": True, "is_knee": False, "silhouette": 0.31, "stability": 0.93},
        ],
        projection={},
        profiles=[],
        traits=[],
        catalog=[],
        levels=[],
        quality=[],
    )
    for lang in ("en", "fr"):
        vocab = vocabulary(rules, lang)
        inputs = PageInputs(data, [], None, {}, {}, vocab, rules, NumberFormat.from_vocabulary(vocab), lang)
        sentence = choice_sentence(inputs)
        assert "{" not in sentence and "k = 4" in sentence and sentence.endswith(".")
        if lang == "en":
            assert expected in sentence


def test_pages_render_inside_their_margins(rendered):
    """The PDF as a reader sees it: every page drawn to pixels (low resolution, to stay fast)."""
    pdf, _, _ = rendered("retail")
    document = pdfium.PdfDocument(str(pdf))
    scale = 0.4
    mm = scale * 72 / 25.4
    try:
        for i in range(1, len(document)):  # the cover bleeds to the edges by design
            pixels = np.asarray(document[i].render(scale=scale).to_pil().convert("L"))
            ink = pixels < 235
            height, width = ink.shape
            side = round(17 * mm)
            assert not ink[:, :side].any() and not ink[:, width - side :].any(), f"page {i + 1}: ink in a side margin"
            assert not ink[: round(9 * mm)].any() and not ink[height - round(9 * mm) :].any(), f"page {i + 1}"
            assert ink[round(21 * mm) : height - round(20 * mm), side : width - side].mean() > 0.01, f"page {i + 1}"
    finally:
        document.close()


# --- language -------------------------------------------------------------------------------------


def test_the_report_can_be_french(rendered):
    pdf, warehouse, _ = rendered("retail", "fr")
    pages = pdf_pages(pdf)
    text = spaced(" ".join(pages))
    assert "Synthèse" in pages[1] and re.search(r"SEGMENT 3 SUR 3", pages[4])
    for persona in personas_of(warehouse, "fr"):
        assert squash(persona.name) in squash(text)
    assert "revenu : valeur hors de la plage acceptée" in text
    assert "14 mars 2024" in pages[-1] and f"Page {len(pages)} sur {len(pages)}" in pages[-1]
    assert "0,93" in text and "0.93" not in text


def _words(node) -> set[str]:
    """Words of three letters or more in every text of a YAML tree ({placeholders} left out)."""
    if isinstance(node, dict):
        return set().union(set(), *(_words(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(set(), *(_words(v) for v in node))
    if isinstance(node, str):
        return {w.casefold() for w in re.findall(r"[A-Za-z]{3,}", re.sub(r"\{\w+\}", " ", node))}
    return set()


def _texts_in(node, lang: str) -> list:
    if isinstance(node, dict):
        if lang in node:
            return [node[lang]]
        return [t for v in node.values() for t in _texts_in(v, lang)]
    if isinstance(node, list):
        return [t for v in node for t in _texts_in(v, lang)]
    return []


def test_the_french_report_has_no_english_left(rendered):
    """Every English word of the vocabulary and rules that French does not share is absent."""
    pdf, warehouse, _ = rendered("seed", "fr")
    reports_dir = load_settings().reports_dir
    en = yaml.safe_load((reports_dir / "i18n" / "en.yml").read_text(encoding="utf-8"))
    fr = yaml.safe_load((reports_dir / "i18n" / "fr.yml").read_text(encoding="utf-8"))
    rules = yaml.safe_load((reports_dir / "persona_rules.yml").read_text(encoding="utf-8"))
    english = (_words(en) | _words(_texts_in(rules, "en"))) - _words(fr) - _words(_texts_in(rules, "fr"))
    assert {"customers", "segments", "chosen", "high", "the"} & english  # the check can fire
    text = " ".join(pdf_pages(pdf))
    data = [
        v
        for r in rows_of(warehouse, "select run_id, source_file from segmentation.segmentation_runs")
        for v in r.values()
    ]
    data += [Path(v).name for v in data]
    for sql in (  # values and column names of the file: data, not words
        "select distinct level from marts.segment_traits where level is not null",
        "select column_name from marts.data_quality_columns",
        "select column_name from marts.quarantine_examples where column_name is not null",
        "select source_value from marts.quarantine_examples where source_value is not null",
    ):
        data += [next(iter(r.values())) for r in rows_of(warehouse, sql)]
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    left = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.casefold() in english})
    assert left == []


# --- companions -------------------------------------------------------------------------------------


def test_the_html_companion_is_self_contained(rendered):
    pdf, warehouse, _ = rendered("seed")
    html = (pdf.parent / "segment_report.html").read_text(encoding="utf-8")
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert sources and all(url.startswith(("data:image/", "#")) for url in sources), sources
    assert len([u for u in sources if u.startswith("data:image/png;base64,")]) == 2 + 4  # maps, locators
    assert "<link" not in html and "@import" not in html
    assert "<style>" in html and "--brand" in html and "@media screen" in html
    for persona in personas_of(warehouse):
        assert persona.name in html


def test_the_pdf_loads_only_the_projects_own_files(rendered):
    pdf, _, fetched = rendered("seed")
    static = load_settings().reports_dir / "static"
    allowed = (static.resolve().as_uri(), (pdf.parent / "charts").resolve().as_uri())
    assert fetched and all(url.startswith(allowed) for url in fetched), fetched
    assert any(url.endswith("style.css") for url in fetched) and any(url.endswith(".png") for url in fetched)


def test_the_crm_export_is_written_beside_the_report(rendered):
    pdf, warehouse, _ = rendered("retail")
    names = {p.segment_id: p.name for p in personas_of(warehouse)}
    exported = pd.read_csv(pdf.parent / "segment_assignments.csv", dtype={"customer_id": str})
    assert list(exported.columns) == ["customer_id", "segment_id", "persona_name"]
    assert len(exported) == sum(warehouses.RETAIL.sizes.values())
    assert (exported["persona_name"] == exported["segment_id"].map(names)).all()


def test_outputs_are_replaced_atomically(tmp_path, rendered):
    pdf, _, _ = rendered("seed")
    assert not [p.name for p in pdf.parent.iterdir() if p.name.endswith(".tmp")]
    target = tmp_path / "segment_report.pdf"
    target.write_bytes(b"the previous report")

    def fails_half_way(path: Path) -> None:
        path.write_bytes(b"%PDF-1.7 half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        report.write_atomically(target, fails_half_way)
    assert target.read_bytes() == b"the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["segment_report.pdf"]


def test_stylesheets_that_could_close_the_style_element_are_refused(tmp_path):
    for name in (*report.STYLESHEETS, report.SCREEN_STYLESHEET):
        (tmp_path / name).write_text("p { color: red }")
    assert "color: red" in report.inline_stylesheets(tmp_path)
    (tmp_path / "style.css").write_text("p::after { content: '</style><script>' }")
    with pytest.raises(report.ReportError, match="cannot be inlined"):
        report.inline_stylesheets(tmp_path)


def test_migration_highlights_who_stayed_and_labels_the_largest_cell():
    rows = [
        {"previous_segment_id": 1, "segment_id": 1, "customers": 5},
        {"previous_segment_id": 1, "segment_id": 2, "customers": 9},
        {"previous_segment_id": None, "segment_id": 2, "customers": 3},
        {"previous_segment_id": 2, "segment_id": None, "customers": 4},
    ]
    labels = {1: "1", 2: "2", None: "new"}
    args = (rows, "previous_segment_id", [1, 2, None], labels, [1, 2, None], NumberFormat())
    stayed = crosstab(*args, diagonal=True)
    assert [[c["top"] for c in r["cells"]] for r in stayed] == [[True, False, False], [False, True, False], [False] * 3]
    assert [c["text"] for c in stayed[0]["cells"]] == ["5", "9", "0"] and stayed[0]["cells"][2]["zero"]
    assert [c["top"] for c in crosstab(*args)[0]["cells"]] == [False, True, False]


def test_the_row_bar_always_sums_to_the_whole():
    widths = quality.flow_widths({"customers_kept": 8327, "duplicate_records_merged": 1667, "rows_quarantined": 6})
    assert widths["rows_quarantined"] == pytest.approx(0.6)
    assert sum(widths.values()) == pytest.approx(100)
    assert "rows_quarantined" not in quality.flow_widths({"customers_kept": 10, "rows_quarantined": 0})


@pytest.mark.parametrize(
    "reason, expected",
    [
        ("empty_row", ("empty_row", None)),
        ("missing_customer_id", ("missing_id", None)),
        ("unparseable_tenure_days", ("unparseable", "tenure_days")),
        ("tenure_days_out_of_range", ("out_of_range", "tenure_days")),
        ("unknown_region", ("unknown_level", "region")),
    ],
)
def test_reason_codes_are_read_even_without_examples(reason, expected):
    assert quality.reason_rule(reason, [])[:2] == expected


# --- security ----------------------------------------------------------------------------------


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        _CountingHandler.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    """A real local server: proves that no request leaves the renderer."""
    _CountingHandler.requests = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_values_and_labels_are_printed_literally_and_fetch_nothing(tmp_path, http_server, caplog):
    img = f'<img src="{http_server}/x.png">'
    script = "<script>alert(1)</script>"
    expression = "{{ 'zq' ~ 'jv' }}"
    warehouse = warehouses.build(
        tmp_path / "warehouse.duckdb",
        "retail",
        rename={"education": {"PhD": img, "Basic": expression, "Master": '<link rel="stylesheet" href="/etc">'}},
        relabel={"income": script, "kidhome": "{% raw %}{{ config }}"},
    )
    with caplog.at_level(logging.WARNING):
        pdf = report.render_report(warehouse, tmp_path / "output")
    text = squash("".join(pdf_pages(pdf)))
    for value in (img, expression, '<link rel="stylesheet" href="/etc">', script, "{% raw %}{{ config }}"):
        assert squash(value) in text, value
    assert "zqjv" not in text  # evaluated, the expression would print this (a port number can hold "49")
    html = (pdf.parent / "segment_report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"<(img|link)\b[^>]*(127\.0\.0\.1|/etc)", html)
    assert _CountingHandler.requests == []
    assert not [r for r in caplog.records if "refused to fetch" in r.getMessage()]  # escaped: never a URL


def test_templates_cannot_reach_outside_the_report_assets(tmp_path, http_server, caplog):
    """Even a template that asks for outside resources gets none of them."""
    templates = tmp_path / "templates"
    templates.mkdir()
    secret = tmp_path / "secret.css"
    secret.write_text("body { background: red }")
    (templates / "report.html").write_text(
        "<html><head>"
        '<link rel="stylesheet" href="static/style.css">'
        f'<link rel="stylesheet" href="{path2url(str(secret))}">'
        f'<link rel="stylesheet" href="{http_server}/style.css">'
        "</head><body><p>{{ doc.title }}</p>"
        f'<img src="{http_server}/pixel.png"><img src="static/../../../../../etc/hostname">'
        f'<img src="{path2url(str(secret))}"></body></html>'
    )
    warehouse = warehouses.build(tmp_path / "warehouse.duckdb", "tiny")
    with caplog.at_level(logging.WARNING, logger="segmentation.report"):
        pdf = report.render_report(warehouse, tmp_path / "output", templates_dir=templates)
    assert "Customer segments" in pdf_pages(pdf)[0]
    assert _CountingHandler.requests == []
    refused = [r.getMessage() for r in caplog.records if "refused to fetch" in r.getMessage()]
    assert any(http_server in m for m in refused)
    assert any("secret.css" in m for m in refused)
    assert any("hostname" in m for m in refused)


def test_fetcher_serves_only_the_allowed_directories(tmp_path):
    static = load_settings().reports_dir / "static"
    charts_dir = tmp_path / "charts"
    charts_dir.mkdir()
    (charts_dir / "a.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (charts_dir / "link.svg").symlink_to(outside)
    fetcher = report.AssetFetcher([static, charts_dir])

    css = fetcher.fetch(path2url(str(static / "style.css")))
    assert css.content_type == "text/css" and css.read()
    assert fetcher.fetch(path2url(str(charts_dir / "a.svg"))).content_type == "image/svg+xml"
    for url in (
        "http://example.com/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
        "data:text/css,body{}",
        path2url(str(outside)),
        path2url(str(static)) + "../../../../../../etc/passwd",
        path2url(str(charts_dir / "link.svg")),  # a symlink out of the directory
        "file://example.com/etc/passwd",  # a remote host in a file URL
    ):
        with pytest.raises(report.FetchRefused):
            fetcher.fetch(url)
    assert len(fetcher.refused) == 8


def test_templates_are_autoescaped_even_with_other_names(tmp_path):
    (tmp_path / "page.j2").write_text("{{ value }}")
    env = report.template_environment(tmp_path)
    assert env.get_template("page.j2").render(value="<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"


def test_missing_tables_fail_with_a_clear_message(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(report.ReportError, match="lacks a table"):
        report.read_warehouse(path)
