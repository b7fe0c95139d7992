"""The PDF report, rendered for real by WeasyPrint from a small real DuckDB warehouse."""

from __future__ import annotations

import functools
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
import pypdfium2 as pdfium
import pytest
import yaml
from PIL import Image
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


def build_warehouse(
    path: Path, rename_professions: dict[str, str] | None = None, seed: int = 0, extended: bool = False
) -> Path:
    """A warehouse with every table the report reads, computed from simulated customers.

    extended: also the columns and tables of later pipeline versions (stability and the other
    measures of k, the selection rule, migration from a previous run, existing labels), which
    the report shows when present.
    """
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

    segments = customers[["customer_id", "segment_id"]].assign(run_id="run-2024-b")
    extra_tables = []
    if extended:
        selection["calinski_harabasz"] = 2400 - 150 * selection["k"] + 90 * (selection["k"] == 4)
        selection["davies_bouldin"] = 1.9 - 0.06 * selection["k"] + 0.009 * selection["k"] ** 2
        selection["stability"] = [0.71 if k == 3 else 0.93 if k == 4 else 0.6 + 0.02 * k for k in selection["k"]]
        selection["is_knee"] = selection["k"] == 3
        runs["knee_k"] = 3
        runs["selection_rule"] = ["user", "stable_near_elbow"]
        runs["categorical_weight"] = 0.5
        runs["algorithm"] = ["kmeans", "kprototypes"]
        runs["previous_run_id"] = [None, "old-run"]
        runs["label_column"] = [None, "Segmentation"]
        runs["label_ari"] = [None, 0.4123]
        runs["parameters"] = '{"selection": {"stability_threshold": 0.8}}'
        moved = customers.assign(previous=(customers["segment_id"] % 3) + 1)
        migration = moved.groupby(["previous", "segment_id"]).size().rename("customers").reset_index()
        migration = pd.concat(
            [
                migration,
                pd.DataFrame({"previous": [None, 2], "segment_id": [1, None], "customers": [37, 12]}),
            ]
        ).assign(run_id="run-2024-b", previous_run_id="old-run")
        labelled = customers.assign(label=np.where(customers["segment_id"] == 3, "D", "A"))
        labels = labelled.groupby(["label", "segment_id"]).size().rename("customers").reset_index()
        extra_tables = [
            (
                "segmentation.segment_migration",
                migration.rename(columns={"previous": "previous_segment_id"}),
                "previous_segment_id::integer as previous_segment_id, segment_id::integer as segment_id,"
                " customers::bigint as customers",
            ),
            (
                "segmentation.segment_label_crosstab",
                labels.assign(run_id="run-2024-b"),
                "segment_id::integer as segment_id, customers::bigint as customers",
            ),
        ]

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
            ("marts.customer_segments", segments, "segment_id::integer as segment_id"),
            *extra_tables,
        ):
            con.register("frame", frame)
            con.execute(f"create table {name} as select * replace ({casts}) from frame")
            con.unregister("frame")
    finally:
        con.close()
    return path


def pdf_pages(path: Path) -> list[str]:
    stat = Path(path).stat()
    return list(_pdf_pages(Path(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _pdf_pages(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Text extraction is the slow part of these tests: once per file version."""
    return tuple(page.extract_text() or "" for page in PdfReader(path).pages)


def squash(text: str) -> str:
    """Text without whitespace: line wrapping in the PDF must not hide a string."""
    return re.sub(r"\s+", "", text)


def rows_of(warehouse: Path, sql: str) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


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


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    warehouse = build_warehouse(root / "warehouse.duckdb")
    pdf, fetched = render_recording_fetches(warehouse, root / "output")
    return pdf, warehouse, fetched


@pytest.fixture(scope="module")
def rendered_fr(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_fr")
    warehouse = build_warehouse(root / "warehouse.duckdb", extended=True)  # every optional section, in French
    return report.render_report(warehouse, root / "output", lang="fr"), warehouse


@pytest.fixture(scope="module")
def rendered_extended(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_extended")
    warehouse = build_warehouse(root / "warehouse.duckdb", extended=True)
    return report.render_report(warehouse, root / "output"), warehouse


def page_index(pages: list[str], pattern: str) -> list[int]:
    return [i for i, text in enumerate(pages) if re.search(pattern, text)]


# --- the report ------------------------------------------------------------------------------


def test_pdf_has_one_page_per_part(rendered):
    pdf, _, _ = rendered
    pages = pdf_pages(pdf)
    assert pdf.name == "segment_report.pdf" and pdf.is_file()
    assert "Customer segments" in pages[0] and "IN THIS REPORT" in pages[0]  # cover with contents
    assert "Data set: customers.csv, 740 customers" in pages[0] and "run-2024-b" in pages[0]
    assert "Executive summary" in pages[1]
    assert page_index(pages, r"(?i)Segment \d of 4") == [2, 3, 4, 5]  # one page per persona, in order
    assert page_index(pages, "HOW SEGMENTS COMPARE") == [6]  # heatmap and maps on one page
    assert "The segments on a map" in pages[6]
    assert page_index(pages, "HOW THE SEGMENTS WERE BUILT") == [7, 8]  # running header
    assert "Where every row went" in pages[9]
    assert len(pages) == 10  # nothing overflows into an extra (or blank) page
    assert all(text.strip() for text in pages)
    for i, text in enumerate(pages[1:], start=2):
        assert f"Page {i} of 10" in text and "Customer segments · 14 March 2024" in text  # running footer


def test_contents_list_every_section_with_its_page(rendered):
    pdf, _, _ = rendered
    cover = " ".join(pdf_pages(pdf)[0].split())
    for label, page in (("Executive summary", 2), ("How segments compare", 7), ("How the segments were built", 8)):
        assert re.search(re.escape(label) + r"[ .]*" + str(page) + r"\b", cover), label
    assert re.search(r"Data quality[ .]*10\b", cover)


def test_pdf_names_every_persona_and_its_figures(rendered):
    pdf, warehouse, _ = rendered
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


def _personas(con, lang="en"):
    from segmentation.personas import build_personas, load_rules

    rows = {
        table: [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
        for table, cur in (
            (t, con.execute(f"select * from marts.{t}"))
            for t in ("segment_profiles", "segment_traits", "segment_profession_mix")
        )
    }
    rules = load_rules(load_settings().persona_rules_path)
    return build_personas(rows["segment_profiles"], rows["segment_traits"], rows["segment_profession_mix"], rules, lang)


def test_every_summary_figure_agrees_with_segment_profiles(rendered):
    pdf, warehouse, _ = rendered
    summary = " ".join(pdf_pages(pdf)[1].split())
    profiles = rows_of(warehouse, "select * from marts.segment_profiles order by segment_id")
    total = sum(p["customers"] for p in profiles)
    high = sum(p["customers"] * p["share_spending_high"] for p in profiles) / total
    largest = max(profiles, key=lambda p: p["customers"])
    assert f"{total:,} customers segmented" in summary
    assert f"{len(profiles)} segments" in summary
    assert f"{high:.0%} are high spenders" in summary
    assert f"{largest['share_of_customers']:.0%} of customers in the largest segment" in summary
    table = summary[summary.index("The personas at a glance") :]
    rows = re.findall(r"(\d+)% (\d[\d,]*) customers (\d+)%", table)  # share, count, share of high spenders
    assert [(int(a), int(n.replace(",", "")), int(b)) for a, n, b in rows] == [
        (round(100 * p["share_of_customers"]), p["customers"], round(100 * p["share_of_high_spenders"]))
        for p in profiles
    ]


def test_compare_page_shows_every_segments_lift_and_the_maps(rendered):
    pdf, warehouse, _ = rendered
    page = " ".join(pdf_pages(pdf)[6].split())
    lifts = {
        (r["segment_id"], r["level"]): r["lift"]
        for r in rows_of(warehouse, "select * from marts.segment_traits where feature = 'profession'")
    }
    lawyer = re.search(r"Lawyer \d+% ((?:×[\d.]+ ){4})", page)
    assert lawyer, page
    assert lawyer.group(1).split() == [f"×{lifts[(s, 'Lawyer')]:.1f}" for s in (1, 2, 3, 4)]
    assert "Spending" in page and "Profession" in page
    assert "Customer category" not in page  # excluded by the rules' compare section
    assert "Men" not in page.split()  # the complement of "Women" is not repeated
    assert "Principal component analysis" in page and "t-SNE" in page


def test_persona_pages_carry_a_locator_map(rendered):
    pdf, _, _ = rendered
    charts_dir = pdf.parent / "charts"
    for segment_id in (1, 2, 3, 4):
        image = Image.open(charts_dir / f"locator_segment_{segment_id}.png").convert("RGB")
        assert image.size == (round(46 / 25.4 * 200), round(38 / 25.4 * 200))  # 46 × 38 mm at 200 dpi
        colour = tuple(int(report.charts.SEGMENT_PALETTE[segment_id - 1][i : i + 2], 16) for i in (1, 3, 5))
        assert colour in {c for _, c in image.getcolors(1 << 16)}  # the segment, in its colour
    assert squash("Where they sit.") in squash(pdf_pages(pdf)[2])


def test_data_quality_page_accounts_for_every_row(rendered):
    pdf, _, _ = rendered
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
    pdf, _, _ = rendered
    names = sorted(p.name for p in (pdf.parent / "charts").iterdir())
    assert {"model_selection.svg", "segment_sizes.svg", "pca.png", "tsne.png"} <= set(names)
    assert len([n for n in names if n.startswith("profession_mix_segment_")]) == 4
    assert len([n for n in names if n.startswith("locator_segment_")]) == 4


def test_only_the_latest_run_is_shown(rendered):
    pdf, _, _ = rendered
    text = "".join(pdf_pages(pdf))
    assert "run-2024-b" in text and "old-run" not in text
    assert "14 March 2024" in text


def test_an_older_warehouse_gets_the_methodology_it_can_support(rendered):
    """No stability, migration or label columns: those parts are simply left out."""
    pdf, _, _ = rendered
    text = " ".join(" ".join(pdf_pages(pdf)[7:9]).split())
    assert "We tried 2 to 10 segments. We chose k = 4: it is where the elbow of the inertia curve lies" in text
    assert "(K-Means)" in text
    assert "STABILITY" not in text and "previous run" not in text and "existing label" not in text
    assert "Every measure, for every number of segments" in text


def test_pages_render_inside_their_margins_and_persona_pages_name_their_persona(rendered):
    """The PDF as a reader sees it: every page drawn to pixels (low resolution, to stay fast)."""
    pdf, warehouse, _ = rendered
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [p.name for p in _personas(con)]
    document = pdfium.PdfDocument(str(pdf))
    scale = 0.4  # 29 dpi: enough to see ink, an A4 page is 238 × 337 pixels
    mm = scale * 72 / 25.4
    try:
        for i in range(len(document)):
            page = document[i]
            pixels = np.asarray(page.render(scale=scale).to_pil().convert("L"))
            ink = pixels < 235
            height, width = ink.shape
            assert ink.mean() > 0.01, f"page {i + 1} is (nearly) blank"
            if i == 0:
                continue  # the cover bleeds to the edges by design
            side = round(17 * mm)  # margins are 18 mm; nothing may stray into them
            assert not ink[:, :side].any() and not ink[:, width - side :].any(), f"page {i + 1}: ink in a side margin"
            assert not ink[: round(9 * mm)].any() and not ink[height - round(9 * mm) :].any(), f"page {i + 1}"
            body = ink[round(21 * mm) : height - round(20 * mm), side : width - side]
            assert body.mean() > 0.01, f"page {i + 1}: no content within the margins"
            if 2 <= i < 2 + len(names):
                text = page.get_textpage().get_text_range()
                assert squash(names[i - 2]) in squash(text), f"page {i + 1} does not name its persona"
    finally:
        document.close()


# --- the methodology with every optional part ---------------------------------------------------


def test_methodology_explains_the_choice_of_k_and_the_changes(rendered_extended):
    pdf, _ = rendered_extended
    pages = pdf_pages(pdf)
    text = " ".join(" ".join(pages).split())
    assert (
        "We chose k = 4: the elbow of the inertia curve lies at k = 3, but its segments were not stable"
        " (mean ARI 0.71), so we took the most stable number of segments next to it (mean ARI 0.93 across"
        " bootstrap fits)." in text
    )
    assert "(K-Prototypes)" in text and "kprototypes" not in text
    assert re.search(r"CALINSKI.HARABASZ DAVIES.BOULDIN STABILITY \(ARI\)", text)
    assert re.search(r"3 ELBOW [\d,]+ 0\.260 1,950 [\d.]+ 0\.71 4 CHOSEN [\d,]+ 0\.310 1,890 [\d.]+ 0\.93", text)
    assert "How customers moved since the previous run" in text and "(old-run)" in text
    assert "New customers 37" in text and "No longer in the base" in text
    assert "Agreement with the existing labels" in text and "(Segmentation, rows)" in text
    assert "is 0.41:" in text
    assert "the dotted line marks 0.80, the level from which segments count as stable" in text
    assert "Weight of categorical features 0.50" in text and "most stable number next to the elbow" in text
    methodology = page_index(pages, "HOW THE SEGMENTS WERE BUILT")
    assert methodology and methodology[-1] == len(pages) - 2  # then data quality, nothing blank between


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
    from segmentation.personas import NumberFormat, load_rules, vocabulary

    rules = load_rules(load_settings().persona_rules_path)
    data = report.WarehouseData(
        run={"k": 4, "knee_k": 3, "selection_rule": rule},
        selection=[
            {"k": 3, "is_chosen": False, "is_knee": True, "silhouette": 0.26, "stability": 0.71},
            {"k": 4, "is_chosen": True, "is_knee": False, "silhouette": 0.31, "stability": 0.93},
        ],
        projection={},
        profiles=[{}] * 4,
        profession_mix=[],
        traits=[],
        quality=[],
    )
    for lang in ("en", "fr"):
        vocab = vocabulary(rules, lang)
        sentence = report._choice_sentence(data, vocab, NumberFormat.from_vocabulary(vocab))
        assert "{" not in sentence and "k = 4" in sentence and sentence.endswith(".")
        if lang == "en":
            assert expected in sentence


# --- language -------------------------------------------------------------------------------------


def test_the_report_can_be_french(rendered_fr):
    pdf, _ = rendered_fr
    pages = pdf_pages(pdf)
    assert "Synthèse" in pages[1]
    assert squash("Avocats seniors, gros budgets") in squash("".join(pages))
    assert re.search(r"SEGMENT 3 SUR 4", pages[4])
    assert "LES SEGMENTS COMPARÉS" in pages[6]
    assert "Les 777 lignes sont toutes prises en compte." in pages[-1]
    assert "14 mars 2024" in pages[-1]  # the running footer
    assert f"Page {len(pages)} sur {len(pages)}" in pages[-1]
    text = " ".join(" ".join(pages).split())
    assert "Nous avons retenu k = 4 : le coude de la courbe d'inertie se situe à k = 3" in text
    assert "0,93" in text and "0.93" not in text  # French decimals


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
    """The `lang` texts of persona_rules.yml (its {en: …, fr: …} mappings)."""
    if isinstance(node, dict):
        if lang in node:
            return [node[lang]]
        return [t for v in node.values() for t in _texts_in(v, lang)]
    if isinstance(node, list):
        return [t for v in node for t in _texts_in(v, lang)]
    return []


def test_the_french_report_has_no_english_left(rendered_fr):
    """Every English word of the vocabulary and rules that French does not share is absent."""
    pdf, warehouse = rendered_fr
    reports_dir = load_settings().reports_dir
    en = yaml.safe_load((reports_dir / "i18n" / "en.yml").read_text(encoding="utf-8"))
    fr = yaml.safe_load((reports_dir / "i18n" / "fr.yml").read_text(encoding="utf-8"))
    rules = yaml.safe_load((reports_dir / "persona_rules.yml").read_text(encoding="utf-8"))
    english = (_words(en) | _words(_texts_in(rules, "en"))) - _words(fr) - _words(_texts_in(rules, "fr"))
    assert {"customers", "segments", "spending", "chosen", "high", "the"} & english  # the check can fire
    text = " ".join(pdf_pages(pdf))
    for run in rows_of(warehouse, "select run_id, source_file from segmentation.segmentation_runs"):
        for data in (run["run_id"], run["source_file"], Path(run["source_file"]).name):  # names, not words
            text = text.replace(data, " ")
    left = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.casefold() in english})
    assert left == []


# --- companions -------------------------------------------------------------------------------------


def test_the_html_companion_is_self_contained(rendered):
    pdf, warehouse, _ = rendered
    html = (pdf.parent / "segment_report.html").read_text(encoding="utf-8")
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert sources and all(url.startswith(("data:image/", "#")) for url in sources), sources
    assert len([u for u in sources if u.startswith("data:image/png;base64,")]) == 2 + 4  # maps, locators
    assert "<link" not in html and "@import" not in html
    assert "<style>" in html and "--brand" in html and "@media screen" in html  # stylesheets inlined
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for persona in _personas(con):
            assert persona.name in html


def test_the_pdf_loads_only_the_projects_own_files(rendered):
    pdf, _, fetched = rendered
    static = load_settings().reports_dir / "static"
    allowed = (static.resolve().as_uri(), (pdf.parent / "charts").resolve().as_uri())
    assert fetched and all(url.startswith(allowed) for url in fetched), fetched
    assert any(url.endswith("style.css") for url in fetched) and any(url.endswith(".png") for url in fetched)


def test_the_crm_export_is_written_beside_the_report(rendered):
    pdf, warehouse, _ = rendered
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = {p.segment_id: p.name for p in _personas(con)}
    exported = pd.read_csv(pdf.parent / "segment_assignments.csv", dtype={"customer_id": str})
    assert list(exported.columns) == ["customer_id", "segment_id", "persona_name"]
    assert len(exported) == sum(s["n"] for s in SEGMENTS.values())
    assert (exported["persona_name"] == exported["segment_id"].map(names)).all()


def test_outputs_are_replaced_atomically(tmp_path, rendered):
    pdf, _, _ = rendered
    assert not [p.name for p in pdf.parent.iterdir() if p.name.endswith(".tmp")]  # nothing left behind
    target = tmp_path / "segment_report.pdf"
    target.write_bytes(b"the previous report")

    def fails_half_way(path: Path) -> None:
        path.write_bytes(b"%PDF-1.7 half")
        raise KeyboardInterrupt  # a run stopped while writing

    with pytest.raises(KeyboardInterrupt):
        report._write_atomically(target, fails_half_way)
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
    from segmentation.personas import NumberFormat

    rows = [
        {"previous_segment_id": 1, "segment_id": 1, "customers": 5},
        {"previous_segment_id": 1, "segment_id": 2, "customers": 9},
        {"previous_segment_id": None, "segment_id": 2, "customers": 3},
        {"previous_segment_id": 2, "segment_id": None, "customers": 4},
    ]
    labels = {1: "1", 2: "2", None: "new"}
    args = (rows, "previous_segment_id", [1, 2, None], labels, [1, 2, None], NumberFormat())
    stayed = report._crosstab(*args, diagonal=True)
    flags = [[c["top"] for c in r["cells"]] for r in stayed]
    assert flags == [[True, False, False], [False, True, False], [False, False, False]]  # new: never "stayed"
    assert [c["text"] for c in stayed[0]["cells"]] == ["5", "9", "0"] and stayed[0]["cells"][2]["zero"]
    largest = report._crosstab(*args)
    assert [c["top"] for c in largest[0]["cells"]] == [False, True, False]


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
