"""Hostile text: data that looks like markup, a template, a formula or a URL stays text.

One real `make all` on an export whose file name, column names, category values and IDs
hold HTML (`<script>`, `<img src=http://…>`, `<link href=file:///etc/passwd>`), Jinja
(`{{ 7*7 }}`), spreadsheet formulas, very long strings and any Unicode. A local HTTP
server on 127.0.0.1 is the bait: the hostile URLs point at it, and it must receive no
request at all. The rendered PDF's text and the HTML companion are searched for the
strings, which must appear literally (escaped in the HTML, never as elements).
"""

from __future__ import annotations

import csv
import http.server
import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_command, pipeline_env
from pypdf import PdfReader

from segmentation.generate import generate

pytestmark = pytest.mark.slow

FAST = {"K": "3", "K_MAX": "3", "WEIGHTING": "none"}


class Bait(http.server.ThreadingHTTPServer):
    """Counts every request; the report must never make one."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _BaitHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _BaitHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def bait() -> Iterator[Bait]:
    server = Bait()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def squash(text: str) -> str:
    """Text without any white space, so that line breaks in the PDF do not matter."""
    return re.sub(r"\s+", "", text)


@dataclass
class Hostile:
    workdir: Path
    data: Path
    result: subprocess.CompletedProcess
    file_name: str
    columns: list[str]
    categories: list[str]
    ids: list[str]

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def pdf_text(self) -> str:
        reader = PdfReader(self.workdir / "output" / "segment_report.pdf")
        return squash(" ".join(page.extract_text() or "" for page in reader.pages))

    def html(self) -> str | None:
        path = self.workdir / "output" / "segment_report.html"
        return path.read_text(encoding="utf-8") if path.exists() else None


@pytest.fixture(scope="module")
def hostile(bait: Bait, tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    workdir = tmp_path_factory.mktemp("hostile")
    # a file name is one path component: no "/" in it, but markup, a template, quotes, a backtick command
    file_name = '{{ 7*7 }} <script>alert(1)<\\script> & "q" `echo pwn3d`.csv'
    folder = workdir / "inputs" / "<img src=x onerror=alert(1)>"
    folder.mkdir(parents=True)
    generated = workdir / "generated.csv"
    generate(generated, rows=400, seed=31)
    with generated.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    columns = [
        f'<link rel="stylesheet" href="{bait.url}/column.css">',
        "{{ 7*7 }}{% raw %}",
        f'=HYPERLINK("{bait.url}/formula","click")',
        "Δ" * 300,
    ]
    categories = [
        "A" * 5000 + "END",
        f"<img src={bait.url}/category.png>",
        "<link href=file:///etc/passwd>",
        "<script>alert('x')</script>",
        "{{ 7*7 }}",
        "\u202eevil\u202c 客户 🙂 e\u0301",
    ]
    ids = ["=1+2", "+SUM(A1)", "-3+4", "@cmd", "\tTAB", "\rCR", "<script>alert(2)</script>", "🙂" * 50]
    header, body = rows[0], rows[1:]
    out = [header + columns]
    for index, row in enumerate(body):
        out.append(row + ([f"<b>{index}</b>", "{{ 7*7 }}", "=1+1", "x"] if index % 50 == 0 else ["", "", "", ""]))
    for value in categories:  # unknown professions: quarantined, their values kept as exported
        out.append(["H-" + str(len(out)), "Male", "Yes", "40", "Yes", value, "1", "Low", "2", "Cat_6", "", "", "", ""])
    for customer_id in ids:  # valid customers whose ID a spreadsheet would read as a formula
        out.append([customer_id, "Female", "No", "33", "Yes", "Artist", "2", "High", "3", "Cat_4", "", "", "", ""])
    data = folder / file_name
    with data.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(out)

    result = subprocess.run(
        make_command(workdir, "all", DATA=str(data)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=pipeline_env(workdir, **FAST),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Hostile(workdir, data, result, file_name, columns, categories, ids)


def test_nothing_outside_the_report_is_fetched(hostile: Hostile, bait: Bait) -> None:
    assert bait.requests == []
    assert "refused to fetch" not in hostile.output  # escaped text is never even a URL to refuse


def test_file_name_is_literal_text_in_the_pdf(hostile: Hostile) -> None:
    text = hostile.pdf_text()
    assert squash(hostile.file_name) in text
    assert "pwn3d" in text and "`echopwn3d`" in text


def test_file_name_never_reaches_a_shell(hostile: Hostile) -> None:
    loading = [line for line in hostile.result.stdout.splitlines() if "==> Loading" in line]
    if "Loading $(DATA)" in (ROOT / "Makefile").read_text(encoding="utf-8"):
        pytest.xfail("the Makefile still pastes DATA into a shell command line (patch sent to the lead)")
    assert loading and "`echo pwn3d`" in loading[0], loading


def test_html_companion_escapes_everything(hostile: Hostile) -> None:
    html = hostile.html()
    if html is None:
        pytest.xfail("the report has no HTML companion yet")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;" in html
    assert "{{ 7*7 }}" in html  # shown, not evaluated
    assert not re.search(r"<(img|link|script)\b[^>]*(127\.0\.0\.1|file:|onerror)", html, flags=re.IGNORECASE)


def test_hostile_values_are_kept_as_data(hostile: Hostile) -> None:
    with duckdb.connect(str(hostile.workdir / "warehouse.duckdb"), read_only=True) as con:
        quarantined = {
            value
            for (value,) in con.sql(
                "select source_profession from marts.customer_quarantine where customer_id like 'H-%'"
            ).fetchall()
        }
        examples = [v for (v,) in con.sql("select source_value from marts.quarantine_examples").fetchall()]
        columns = [
            c
            for (c,) in con.sql(
                "select column_name from marts.data_quality_columns where not is_required order by column_position"
            ).fetchall()
        ]
        kept = {c for (c,) in con.sql("select customer_id from marts.customer_features").fetchall()}
    assert quarantined == set(hostile.categories)  # exactly as exported, the 5,003-character one too
    assert columns == hostile.columns
    assert {i.strip() for i in hostile.ids} <= kept
    assert all(len(v or "") <= 120 for v in examples) and "A" * 119 + "…" in examples


def test_hostile_categories_and_column_names_show_as_text(hostile: Hostile) -> None:
    text = hostile.pdf_text()
    # strings found nowhere else in the report (the file name holds "{{ 7*7 }}" and "<script>")
    candidates = (*hostile.categories[1:3], *hostile.columns[:1], *hostile.columns[2:3])
    shown = [value for value in candidates if squash(value) in text]
    if not shown:
        pytest.xfail("the report does not show quarantine examples or extra column names yet")
    html = hostile.html() or ""
    for value in shown:
        assert value not in html or "<" not in value  # in the HTML, only ever escaped


def test_csv_export_neutralises_formulas(hostile: Hostile) -> None:
    path = hostile.workdir / "output" / "segment_assignments.csv"
    if not path.exists():
        pytest.xfail("the report has no CSV export yet")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for customer_id in hostile.ids:
        cleaned = customer_id.strip()  # staging trims the ID
        expected = "'" + cleaned if cleaned[:1] in ("=", "+", "-", "@") else cleaned
        assert expected in cells, customer_id


def test_fetcher_refuses_and_logs_everything_but_the_report_assets(
    bait: Bait, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """WeasyPrint asked for network, file and escaping URLs: only the report's own asset is served."""
    from segmentation.report import write_pdf

    reports = ROOT / "reports"
    hostile_urls = [
        f"{bait.url}/image.png",
        f"{bait.url}/style.css",
        "file:///etc/passwd",
        "file:///etc/hostname",
        "../../../../etc/passwd",
        f"//127.0.0.1:{bait.server_address[1]}/protocol-relative.png",
    ]
    html = f"""<html><head>
      <link rel="stylesheet" href="static/style.css">
      <link rel="stylesheet" href="{hostile_urls[1]}">
      <style>@import url("{hostile_urls[2]}"); body {{ background: url("{hostile_urls[3]}") }}</style>
    </head><body>
      <p>text</p>
      <img src="{hostile_urls[0]}"><img src="{hostile_urls[4]}"><img src="{hostile_urls[5]}">
    </body></html>"""
    with caplog.at_level(logging.WARNING):
        pages = write_pdf(html, reports, [reports / "static"], tmp_path / "out.pdf")
    assert pages >= 1 and (tmp_path / "out.pdf").exists()
    assert bait.requests == []
    refusals = [r.getMessage() for r in caplog.records if "refused to fetch" in r.getMessage()]
    for fragment in ("/image.png", "/style.css", "/etc/passwd", "/etc/hostname", "protocol-relative"):
        assert any(fragment in message for message in refusals), (fragment, refusals)
    assert not any("static/style.css" in message for message in refusals)
