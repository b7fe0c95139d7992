"""The PDF report, rendered for real by WeasyPrint from a small real DuckDB warehouse."""

from __future__ import annotations

import http.server
import logging
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from weasyprint.urls import path2url

from segmentation import report
from segmentation.config import load_settings

PROFESSIONS = ["Artist", "Doctor", "Engineer", "Entertainment", "Executive", "Healthcare", "Homemaker", "Lawyer"]

# Four seed-like segments (sizes, demographics, profession and spending mixes).
SEGMENTS = {
    1: dict(
        n=300,
        age=47,
        married=0.8,
        graduated=0.8,
        female=0.45,
        family=2.6,
        spend=(0.2, 0.65, 0.15),
        professions={"Artist": 0.35, "Engineer": 0.2, "Executive": 0.15, "Entertainment": 0.15, "Doctor": 0.15},
    ),
    2: dict(
        n=200,
        age=27,
        married=0.08,
        graduated=0.25,
        female=0.4,
        family=4.4,
        spend=(0.93, 0.05, 0.02),
        professions={"Healthcare": 0.45, "Artist": 0.2, "Doctor": 0.15, "Entertainment": 0.2},
    ),
    3: dict(
        n=130,
        age=76,
        married=0.92,
        graduated=0.6,
        female=0.45,
        family=2.0,
        spend=(0.15, 0.15, 0.7),
        professions={"Lawyer": 1.0},
    ),
    4: dict(
        n=110,
        age=38,
        married=0.85,
        graduated=0.5,
        female=0.9,
        family=2.6,
        spend=(0.6, 0.3, 0.1),
        professions={"Homemaker": 1.0},
    ),
}
QUARANTINE = {"age_out_of_range": 7, "negative_work_experience": 4, "unknown_profession": 3, "missing_customer_id": 2}
DUPLICATES = 21
IMPUTED = {"work_experience": 61, "family_size": 18, "profession": 9, "ever_married": 0}


def build_warehouse(path: Path, rename_professions: dict[str, str] | None = None, seed: int = 0) -> Path:
    """A warehouse with every table the report reads, computed from simulated customers."""
    rng = np.random.default_rng(seed)
    frames = []
    for segment_id, s in SEGMENTS.items():
        n = s["n"]
        professions = list(s["professions"])
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"C{segment_id}{i:04d}" for i in range(n)],
                    "segment_id": segment_id,
                    "age": rng.normal(s["age"], 5, n).round(),
                    "is_married": rng.random(n) < s["married"],
                    "has_degree": rng.random(n) < s["graduated"],
                    "gender": np.where(rng.random(n) < s["female"], "Female", "Male"),
                    "family_size": np.clip(rng.normal(s["family"], 1, n).round(), 1, 9),
                    "work_experience": np.clip(rng.normal(2.5, 2, n).round(), 0, 14),
                    "profession": rng.choice(professions, n, p=[s["professions"][p] for p in professions]),
                    "spending_score": rng.choice(["Low", "Average", "High"], n, p=list(s["spend"])),
                    "var_1": rng.choice(["Cat_4", "Cat_6"], n),
                }
            )
        )
    customers = pd.concat(frames, ignore_index=True)
    if rename_professions:
        customers["profession"] = customers["profession"].replace(rename_professions)
    # As in dbt: spending_score is the category, spending_level its ordinal code.
    customers["spending_level"] = customers["spending_score"].map({"Low": 0.0, "Average": 1.0, "High": 2.0})
    total = len(customers)
    high_total = (customers["spending_score"] == "High").sum()

    profiles = (
        customers.groupby("segment_id")
        .agg(
            customers=("customer_id", "size"),
            mean_age=("age", "mean"),
            share_married=("is_married", "mean"),
            share_graduated=("has_degree", "mean"),
            share_female=("gender", lambda g: (g == "Female").mean()),
            mean_family_size=("family_size", "mean"),
            mean_work_experience=("work_experience", "mean"),
            share_spending_low=("spending_score", lambda g: (g == "Low").mean()),
            share_spending_average=("spending_score", lambda g: (g == "Average").mean()),
            share_spending_high=("spending_score", lambda g: (g == "High").mean()),
            high=("spending_score", lambda g: (g == "High").sum()),
        )
        .reset_index()
    )
    profiles.insert(2, "share_of_customers", profiles["customers"] / total)
    profiles["share_of_high_spenders"] = profiles.pop("high") / high_total

    base_share = customers["profession"].value_counts(normalize=True)
    mix = customers.groupby(["segment_id", "profession"]).size().rename("customers").reset_index()
    mix["share"] = mix["customers"] / mix.groupby("segment_id")["customers"].transform("sum")
    mix["base_share"] = mix["profession"].map(base_share)
    mix["lift"] = mix["share"] / mix["base_share"]
    mix["profession_rank"] = mix.groupby("segment_id")["share"].rank(method="first", ascending=False).astype(int)

    trait_rows = []
    for segment_id, seg in customers.groupby("segment_id"):
        for feature in ("age", "work_experience", "family_size", "spending_level", "is_married", "has_degree"):
            value, base = float(seg[feature].mean()), float(customers[feature].mean())
            trait_rows.append((segment_id, feature, None, value, base, value / base))
        for feature in ("gender", "profession", "spending_score", "var_1"):
            for level in sorted(customers[feature].unique()):
                value, base = float((seg[feature] == level).mean()), float((customers[feature] == level).mean())
                trait_rows.append((segment_id, feature, level, value, base, value / base))
    traits = pd.DataFrame(trait_rows, columns=["segment_id", "feature", "level", "segment_value", "base_value", "lift"])

    quarantined = sum(QUARANTINE.values())
    quality = pd.DataFrame(
        [
            ("accounting", "rows_read", total + DUPLICATES + quarantined),
            ("accounting", "customers_kept", total),
            ("accounting", "duplicate_records_merged", DUPLICATES),
            ("accounting", "rows_quarantined", quarantined),
            *(("quarantine", k, v) for k, v in QUARANTINE.items()),
            *(("imputation", k, v) for k, v in IMPUTED.items()),
        ],
        columns=["section", "item", "rows"],
    )

    runs = pd.DataFrame(
        {
            "run_id": ["old-run", "run-2024-b"],
            "started_at": [datetime(2024, 1, 1, 9), datetime(2024, 3, 14, 9)],
            "finished_at": [datetime(2024, 1, 1, 9, 5), datetime(2024, 3, 14, 9, 6)],
            "k": [3, 4],
            "k_source": ["user", "elbow"],
            "algorithm": ["kmeans", "kmeans"],
            "random_state": [42, 42],
            "parameters": ['{"n_init": 10}', '{"n_init": 10}'],
            "customers": [total, total],
            "features": [27, 27],
            "silhouette_sample": [10_000, 10_000],
            "tsne_sample": [3_000, 3_000],
            "source_file": ["data/raw/customers.csv"] * 2,
        }
    )
    ks = np.arange(2, 11)
    selection = pd.concat(
        [
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "k": ks,
                    "inertia": 6000 * ks**-0.7,
                    "silhouette": [0.21, 0.26, 0.31, 0.27, 0.24, 0.22, 0.2, 0.19, 0.18],
                    "is_chosen": ks == chosen,
                    "is_knee": ks == 4,
                }
            )
            for run_id, chosen in (("old-run", 3), ("run-2024-b", 4))
        ]
    )
    sample = customers.sample(n=min(400, total), random_state=seed)
    centres = {1: (0, 0), 2: (4, 1), 3: (-3, 3), 4: (1, -4)}
    centre = np.array([centres[s] for s in sample["segment_id"]], dtype=float)
    projection = pd.DataFrame(
        {
            "run_id": "run-2024-b",
            "customer_id": sample["customer_id"].to_numpy(),
            "segment_id": sample["segment_id"].to_numpy(),
            "pca_x": centre[:, 0] + rng.normal(0, 1.2, len(sample)),
            "pca_y": centre[:, 1] + rng.normal(0, 1.2, len(sample)),
            "tsne_x": 6 * centre[:, 0] + rng.normal(0, 2, len(sample)),
            "tsne_y": 6 * centre[:, 1] + rng.normal(0, 2, len(sample)),
        }
    )

    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts; create schema segmentation")
        for name, frame, casts in (
            ("marts.segment_profiles", profiles, "segment_id::integer as segment_id, customers::bigint as customers"),
            (
                "marts.segment_profession_mix",
                mix,
                "segment_id::integer as segment_id, profession::varchar as profession, customers::bigint as customers",
            ),
            ("marts.segment_traits", traits, "segment_id::integer as segment_id, level::varchar as level"),
            ("marts.data_quality_summary", quality, "rows::bigint as rows"),
            ("segmentation.segmentation_runs", runs, "k::integer as k"),
            ("segmentation.segment_model_selection", selection, "k::integer as k"),
            (
                "segmentation.segment_projection",
                projection,
                "segment_id::integer as segment_id, pca_x::real as pca_x, pca_y::real as pca_y,"
                " tsne_x::real as tsne_x, tsne_y::real as tsne_y",
            ),
        ):
            con.register("frame", frame)
            con.execute(f"create table {name} as select * replace ({casts}) from frame")
            con.unregister("frame")
    finally:
        con.close()
    return path


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def squash(text: str) -> str:
    """Text without whitespace: line wrapping in the PDF must not hide a string."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    warehouse = build_warehouse(root / "warehouse.duckdb")
    pdf = report.render_report(warehouse, root / "output")
    return pdf, warehouse


# --- the report ------------------------------------------------------------------------------


def test_pdf_has_one_page_per_part(rendered):
    pdf, _ = rendered
    pages = pdf_pages(pdf)
    assert pdf.name == "segment_report.pdf" and pdf.is_file()
    assert "Customer segments" in pages[0] and "IN THIS REPORT" in pages[0]  # cover with contents
    assert "Executive summary" in pages[1]
    persona_pages = [i for i, text in enumerate(pages) if re.search(r"Segment \d of 4", text, re.IGNORECASE)]
    assert persona_pages == [2, 3, 4, 5]  # one page per persona, in order
    methodology = [i for i, text in enumerate(pages) if "HOW THE SEGMENTS WERE BUILT" in text]  # running header
    assert methodology == [6, 7]  # steps and choice of k; maps and run details
    assert "Where every row went" in pages[8]
    assert len(pages) == 9  # nothing overflows into an extra (or blank) page
    assert all(text.strip() for text in pages)


def test_pdf_names_every_persona_and_its_figures(rendered):
    pdf, warehouse = rendered
    pages = pdf_pages(pdf)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [p.name for p in _personas(con)]
    for i, name in enumerate(names):
        assert squash(name) in squash(pages[1])  # persona table
        assert squash(name) in squash(pages[0])  # contents
        assert squash(name) in squash(pages[2 + i])  # its own page
    assert "Senior lawyers, high spenders" in names
    assert "Mid-life homemakers, careful spenders" in names
    assert "SHAREOFHIGHSPENDERS" in squash(pages[1])  # the persona table's last column


def _personas(con):
    from segmentation.personas import build_personas, load_rules

    rows = {
        table: [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
        for table, cur in (
            (t, con.execute(f"select * from marts.{t}"))
            for t in ("segment_profiles", "segment_traits", "segment_profession_mix")
        )
    }
    rules = load_rules(load_settings().persona_rules_path)
    return build_personas(rows["segment_profiles"], rows["segment_traits"], rows["segment_profession_mix"], rules)


def test_data_quality_page_accounts_for_every_row(rendered):
    pdf, _ = rendered
    text = pdf_pages(pdf)[-1]
    kept = sum(s["n"] for s in SEGMENTS.values())
    read = kept + DUPLICATES + sum(QUARANTINE.values())
    assert f"{read:,}" in text and f"{kept:,}" in text
    assert f"−{DUPLICATES}" in text and f"−{sum(QUARANTINE.values())}" in text
    assert f"All {read:,} rows are accounted for." in text
    for label, rows in (("Age outside the plausible range", 7), ("Negative work experience", 4), ("Total", 16)):
        assert re.search(r"\s+".join(label.split()) + rf"\s+{rows}\b", text), label
    assert re.search(r"Work\s+experience\s+61\b", text)


def test_charts_are_written_beside_the_pdf(rendered):
    pdf, _ = rendered
    charts_dir = pdf.parent / "charts"
    names = sorted(p.name for p in charts_dir.iterdir())
    assert {"elbow.svg", "silhouette.svg", "segment_sizes.svg", "pca.png", "tsne.png"} <= set(names)
    assert len([n for n in names if n.startswith("profession_mix_segment_")]) == 4


def test_only_the_latest_run_is_shown(rendered):
    pdf, _ = rendered
    text = "".join(pdf_pages(pdf))
    assert "run-2024-b" in text and "old-run" not in text
    assert "14 March 2024" in text


def test_the_report_can_be_french(tmp_path):
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb")
    pages = pdf_pages(report.render_report(warehouse, tmp_path / "output", lang="fr"))
    assert len(pages) == 9
    assert "Synthèse" in pages[1]
    assert squash("Avocats seniors, gros budgets") in squash("".join(pages))
    assert re.search(r"SEGMENT 3 SUR 4", pages[4])
    assert "Les 777 lignes sont toutes prises en compte." in pages[-1]
    assert "14 mars 2024" in pages[-1]  # the running footer
    assert "Page 9 sur 9" in pages[-1]


def test_the_row_bar_always_sums_to_the_whole():
    widths = report._flow_widths({"customers_kept": 8327, "duplicate_records_merged": 1667, "rows_quarantined": 6})
    assert widths["rows_quarantined"] == pytest.approx(0.6)  # a sliver stays visible
    assert sum(widths.values()) == pytest.approx(100)
    assert "rows_quarantined" not in report._flow_widths({"customers_kept": 10, "rows_quarantined": 0})


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


def test_hostile_text_is_printed_literally_and_fetches_nothing(tmp_path, http_server, caplog):
    img = f'<img src="{http_server}/x.png">'
    warehouse = build_warehouse(
        tmp_path / "warehouse.duckdb",
        rename_professions={"Lawyer": img, "Homemaker": "{{ 7*7 }}", "Artist": '<link rel="stylesheet" href="/etc">'},
    )
    with caplog.at_level(logging.WARNING):
        pdf = report.render_report(warehouse, tmp_path / "output")
    text = squash("".join(pdf_pages(pdf)))
    assert squash(img) in text
    assert squash("{{ 7*7 }}") in text and "49professionals" not in text
    assert squash('<link rel="stylesheet" href="/etc">') in text
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
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb")
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
