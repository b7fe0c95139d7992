"""Drawing the report's charts: once per content, in worker processes, never a failure taken as drawn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from weasyprint.urls import path2url

from segmentation import charts
from segmentation.report.drawing import MANIFEST, ChartJob, Drawing, draw_all
from segmentation.report.render import AssetFetcher

PYTHON_DIR = Path(__file__).resolve().parents[1]


def percent(value: float) -> str:
    return f"{value:.0%}"


def jobs(charts_dir: Path, names: tuple[str, ...] = ("A", "B", "C", "D"), colour: str = "#0072B2") -> list[ChartJob]:
    """Real charts: a bar chart per name and a locator map."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=300), rng.normal(size=300)
    segments = rng.integers(1, 4, size=300)
    mix = [
        ChartJob(
            f"mix_{name}",
            charts.level_mix,
            charts_dir / f"mix_{name}.svg",
            ([{"label": name, "share": 0.6, "base_share": 0.3}, {"label": "z", "share": 0.4, "base_share": 0.7}],),
            {"colour": colour, "labels": {"this_segment": "this", "all_customers": "all"}, "percent": percent},
        )
        for name in names
    ]
    return [*mix, ChartJob("locator", charts.locator, charts_dir / "locator.png", (x, y, segments, 2, colour))]


def files(charts_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(charts_dir.iterdir()) if p.name != MANIFEST}


def test_workers_draw_the_same_files_as_one_process(tmp_path):
    serial = draw_all(jobs(tmp_path / "serial"), tmp_path / "serial", workers=1)
    parallel = draw_all(jobs(tmp_path / "parallel"), tmp_path / "parallel", workers=2)
    assert sorted(serial) == sorted(parallel) == ["locator", "mix_A", "mix_B", "mix_C", "mix_D"]
    assert files(tmp_path / "serial") == files(tmp_path / "parallel")
    assert all(path.is_file() for path in parallel.values())


def test_unchanged_charts_are_not_drawn_again_and_changed_ones_are(tmp_path):
    draw_all(jobs(tmp_path), tmp_path, workers=2)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = Drawing(jobs(tmp_path), tmp_path, workers=2)
    again.finish()
    assert (again.drawn, again.unchanged) == (0, 5)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.name != MANIFEST} == {
        k: v for k, v in before.items() if k != MANIFEST
    }
    old = files(tmp_path)
    changed = Drawing(jobs(tmp_path, colour="#D55E00"), tmp_path, workers=2)
    changed.finish()
    assert (changed.drawn, changed.unchanged) == (5, 0)
    assert all(files(tmp_path)[name] != content for name, content in old.items())
    (tmp_path / "mix_B.svg").unlink()  # a file gone is drawn again, whatever the record says
    assert Drawing(jobs(tmp_path, colour="#D55E00"), tmp_path, workers=1).drawn == 1


def test_charts_the_report_no_longer_has_are_removed(tmp_path):
    draw_all(jobs(tmp_path), tmp_path, workers=1)
    (tmp_path / "notes.txt").write_text("not a chart", encoding="utf-8")  # not ours: left alone
    fewer = Drawing(jobs(tmp_path, names=("A", "C")), tmp_path, workers=1)
    fewer.finish()
    assert (fewer.drawn, fewer.unchanged) == (0, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        MANIFEST,
        "locator.png",
        "mix_A.svg",
        "mix_C.svg",
        "notes.txt",
    ]
    recorded = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert sorted(recorded) == ["locator.png", "mix_A.svg", "mix_C.svg"]


def test_a_failed_chart_raises_and_is_drawn_again_next_time(tmp_path):
    broken = [*jobs(tmp_path), ChartJob("bad", charts.level_mix, tmp_path / "bad.svg", ([],), {"colour": "#000"})]
    drawing = Drawing(broken, tmp_path, workers=2)
    with pytest.raises(TypeError):
        drawing.finish()
    assert not (tmp_path / "bad.svg").exists()
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    # nothing of the failed render is taken as drawn: the next one draws every chart
    again = Drawing(jobs(tmp_path), tmp_path, workers=2)
    again.finish()
    assert (again.drawn, again.unchanged) == (5, 0)


def test_the_fetcher_waits_for_a_chart_before_reading_it(tmp_path):
    drawing = Drawing(jobs(tmp_path), tmp_path, workers=2)
    waited: list[Path] = []

    def wait(path: Path) -> None:
        waited.append(path)
        drawing.wait(path)

    fetcher = AssetFetcher([tmp_path], before_read=wait)
    response = fetcher.fetch(path2url(str(tmp_path / "mix_C.svg")))
    assert waited == [tmp_path / "mix_C.svg"]
    assert b"<svg" in response.read()  # read after the wait: the whole chart
    assert drawing.finish()["mix_C"] == tmp_path / "mix_C.svg"


def test_the_heatmap_colours_are_matplotlibs_rdbu_without_matplotlib():
    import matplotlib as mpl

    rdbu = mpl.colormaps["RdBu_r"]
    for position in np.linspace(0, 1, 4001):
        assert charts._diverging(position) == mpl.colors.to_hex(rdbu(position)), position
    assert charts.lift_colour(1.0) == mpl.colors.to_hex(rdbu(0.5))
    assert charts.std_diff_colour(-9) == mpl.colors.to_hex(rdbu(0.08))


def test_the_report_loads_matplotlib_only_to_draw():
    code = "import sys, segmentation.report.build; sys.exit('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(PYTHON_DIR)}, check=False)
    assert done.returncode == 0


def test_the_last_bits_of_a_threaded_sum_do_not_redraw_a_chart(tmp_path):
    def job(bic: float, xs: np.ndarray) -> ChartJob:
        return ChartJob(
            "c", charts.locator, tmp_path / "c.png", (xs, xs, np.ones(3, dtype=int), 1, "#000"), {"bic": bic}
        )

    xs = np.array([0.1, 0.2, 0.3])
    same = job(190966.66621817107, xs).fingerprint("code"), job(190966.6662181712, xs * (1 + 1e-15)).fingerprint("code")
    assert same[0] == same[1]
    assert job(190966.7, xs).fingerprint("code") != same[0]
    assert job(190966.66621817107, xs + 0.01).fingerprint("code") != same[0]
    assert job(190966.66621817107, xs).fingerprint("other code") != same[0]
