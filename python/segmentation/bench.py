"""`make bench`: the real pipeline at 10 thousand, 1 million and 10 million customers.

Each size gets its own generated Parquet file (cached under data/bench/) and its own
warehouse. Every pipeline step runs as its own process, exactly as `make all` runs
it, so that wall time and peak resident memory are measured per step (os.wait4 gives
the child's own rusage). The clustering step reports its inner stages itself
(`segmentation_runs.stage_seconds`). On the 1 million file, the same run also times
a faithful re-implementation of the seed notebook's method (pandas one-hot,
StandardScaler, K-Means elbow for k = 1…10 with n_init=10 on the whole table, final
K-Means and PCA; its t-SNE cannot finish at that size and is left out) and prints the
ratio. Agreement with the planted segments (adjusted Rand index) is printed per size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import comb
from pathlib import Path

import duckdb

from .config import PROJECT_ROOT

log = logging.getLogger(__name__)

DEFAULT_SIZES = (10_000, 1_000_000, 10_000_000)
SEED_METHOD_SIZE = 1_000_000
BUDGETS = {10_000: (20.0, None), 1_000_000: (60.0, 3.0), 10_000_000: (300.0, 8.0)}  # seconds, GiB
INNER_STAGES = ("read", "features", "k_selection", "fit_assign", "projection", "write_back")


@dataclass
class StepResult:
    name: str
    seconds: float
    peak_rss_gib: float


@dataclass
class SizeResult:
    rows: int
    steps: list[StepResult] = field(default_factory=list)
    inner: dict[str, float] = field(default_factory=dict)
    ari: float | None = None
    k: int | None = None

    @property
    def total(self) -> float:
        return sum(step.seconds for step in self.steps if step.name != "generate")

    @property
    def peak(self) -> float:
        return max((step.peak_rss_gib for step in self.steps), default=0.0)


def run_measured(name: str, command: list[str], env: dict[str, str], cwd: Path) -> StepResult:
    """Run one step as a child process; wall time and that child's peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"bench step {name} failed ({process.returncode}):\n{output[-4000:]}")
    peak = usage.ru_maxrss * 1024 / 2**30  # ru_maxrss is in KiB on Linux
    log.info("  %-16s %7.1f s  peak %.2f GiB", name, seconds, peak)
    return StepResult(name, seconds, peak)


def adjusted_rand_from_counts(counts: list[tuple[str, int, int]]) -> float:
    """ARI from a contingency table (planted label, found segment, customers)."""
    n = sum(c for _, _, c in counts)
    rows: dict[str, int] = {}
    cols: dict[int, int] = {}
    for planted, found, c in counts:
        rows[planted] = rows.get(planted, 0) + c
        cols[found] = cols.get(found, 0) + c
    index = sum(comb(c, 2) for _, _, c in counts)
    sum_rows = sum(comb(c, 2) for c in rows.values())
    sum_cols = sum(comb(c, 2) for c in cols.values())
    expected = sum_rows * sum_cols / comb(n, 2)
    maximum = (sum_rows + sum_cols) / 2
    return float((index - expected) / (maximum - expected)) if maximum != expected else 1.0


def bench_size(rows: int, root: Path, env_base: dict[str, str]) -> SizeResult:
    """Generate (cached) and run every pipeline step on `rows` customers."""
    python = sys.executable
    dbt = str(Path(python).parent / "dbt")
    data_dir = root / "data" / "bench"
    work = data_dir / f"run_{rows}"
    data = data_dir / f"customers_{rows}.parquet"
    truth = data_dir / f"truth_{rows}.parquet"
    result = SizeResult(rows)
    log.info("%s customers", f"{rows:,}")
    env = {
        **env_base,
        "PYTHONPATH": str(root / "python"),
        "SEGMENTATION_MODELS_DIR": str(work / "models"),
        "SEGMENTATION_OUTPUT_DIR": str(work / "output"),
        "DBT_TARGET_PATH": str(work / "dbt_target"),
        "DBT_LOG_PATH": str(work / "dbt_target" / "logs"),
        "DBT_PROFILES_DIR": str(root / "dbt_project"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("K", None)
    published = work / "warehouse.duckdb"
    building = work / ".build" / "warehouse.duckdb"
    if not data.exists() or not truth.exists():
        result.steps.append(
            run_measured(
                "generate",
                [python, "-m", "segmentation", "generate", str(data), "--rows", str(rows), "--truth", str(truth)],
                env,
                root,
            )
        )
    published.unlink(missing_ok=True)  # each bench run starts from an empty warehouse
    steps = [
        ("begin", [python, "-m", "segmentation", "begin", str(published)], building),
        ("ingest", [python, "-m", "segmentation", "ingest", str(data)], building),
        ("dbt build", [dbt, "build", "--exclude", "source:segmentation+"], building),
        ("segment", [python, "-m", "segmentation", "segment"], building),
        ("dbt profiles", [dbt, "build", "--select", "source:segmentation+"], building),
        ("publish", [python, "-m", "segmentation", "publish", str(published)], building),
        ("report", [python, "-m", "segmentation", "report"], published),
    ]
    for name, command, warehouse in steps:
        cwd = root / "dbt_project" if command[0] == dbt else root
        result.steps.append(run_measured(name, command, {**env, "SEGMENTATION_WAREHOUSE": str(warehouse)}, cwd))
    with duckdb.connect(str(published), read_only=True) as con:
        stage_seconds, k = con.sql(
            "select stage_seconds, k from segmentation.segmentation_runs order by finished_at desc limit 1"
        ).fetchall()[0]
        result.inner = json.loads(stage_seconds or "{}")
        result.k = int(k)
        counts = con.execute(
            "select truth.planted_segment, assignments.segment_id, count(*) "
            "from segmentation.segment_assignments as assignments "
            "inner join read_parquet(?) as truth on truth.ID = assignments.customer_id group by all",
            [str(truth)],
        ).fetchall()
    result.ari = adjusted_rand_from_counts(counts)
    return result


def seed_method(path: Path, random_state: int = 42) -> float:
    """The seed notebook's method on the same file, timed in this process (seconds)."""
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    frame = pd.read_parquet(path).drop(columns=["ID"])
    numeric = ["Age", "Work_Experience", "Family_Size"]
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame[column] = frame[column].fillna(frame[column].median())
    categorical = [c for c in frame.columns if c not in numeric]
    for column in categorical:
        frame[column] = frame[column].fillna(frame[column].mode()[0])
    encoded = pd.get_dummies(frame, columns=categorical)
    matrix = StandardScaler().fit_transform(encoded)
    inertia = []
    for k in range(1, 11):
        inertia.append(
            KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=random_state).fit(matrix).inertia_
        )
        log.info("  seed method: k=%d fitted (%.0f s)", k, time.perf_counter() - started)
    labels = KMeans(n_clusters=4, init="k-means++", n_init=10, random_state=random_state).fit_predict(matrix)
    PCA(n_components=2).fit_transform(matrix)
    assert len(labels) == len(frame)
    return time.perf_counter() - started


def render(results: list[SizeResult], seed_seconds: float | None) -> str:
    """The markdown table printed and written to reports/output/bench.md."""
    sizes = [r.rows for r in results]
    step_names = [s.name for s in results[-1].steps if s.name != "generate"]
    lines = [
        f"# Benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}",
        "",
        "| step | " + " | ".join(f"{n:,} rows" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]

    def cell(result: SizeResult, name: str) -> str:
        step = next((s for s in result.steps if s.name == name), None)
        return f"{step.seconds:.1f} s / {step.peak_rss_gib:.2f} GiB" if step else "cached"

    lines.append("| generate data (s / peak RSS) | " + " | ".join(cell(r, "generate") for r in results) + " |")
    for name in step_names:
        lines.append(f"| {name} | " + " | ".join(cell(r, name) for r in results) + " |")
        if name == "segment":
            for inner in INNER_STAGES:
                values = [f"{r.inner[inner]:.1f} s" if inner in r.inner else "–" for r in results]
                lines.append(f"| &nbsp;&nbsp;↳ {inner.replace('_', ' ')} | " + " | ".join(values) + " |")
    lines.append(
        "| **whole pipeline** (without generation) | " + " | ".join(f"**{r.total:.1f} s**" for r in results) + " |"
    )
    lines.append("| peak RSS of any step | " + " | ".join(f"{r.peak:.2f} GiB" for r in results) + " |")
    lines.append("| k chosen | " + " | ".join(str(r.k) for r in results) + " |")
    lines.append("| ARI vs planted segments | " + " | ".join(f"{r.ari:.3f}" for r in results) + " |")
    budget_cells = []
    for r in results:
        seconds, gib = BUDGETS.get(r.rows, (None, None))
        ok = (seconds is None or r.total <= seconds) and (gib is None or r.peak <= gib)
        budget = f"< {seconds:.0f} s" + (f", < {gib:.0f} GiB" if gib else "") if seconds else "–"
        budget_cells.append(f"{budget}: {'met' if ok else '**missed**'}")
    lines.append("| budget | " + " | ".join(budget_cells) + " |")
    if seed_seconds is not None:
        ours = next((r.total for r in results if r.rows == SEED_METHOD_SIZE), None)
        lines += [
            "",
            f"Seed notebook method on the same {SEED_METHOD_SIZE:,}-row file (one-hot, StandardScaler, elbow k = 1…10 "
            f"with n_init = 10 on every row, final K-Means, PCA; no t-SNE): **{seed_seconds:.1f} s**.",
        ]
        if ours:
            lines.append(
                f"This pipeline, end to end with its report: **{ours:.1f} s**, **{seed_seconds / ours:.1f}×** faster."
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated row counts")
    parser.add_argument("--skip-largest", action="store_true", help="leave out the largest size (quick run)")
    parser.add_argument("--no-seed-method", action="store_true", help="do not time the seed notebook's method")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "reports" / "output" / "bench.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    if args.skip_largest and len(sizes) > 1:
        sizes = sizes[:-1]
    env = dict(os.environ)
    results = [bench_size(rows, PROJECT_ROOT, env) for rows in sizes]
    seed_seconds = None
    if not args.no_seed_method and SEED_METHOD_SIZE in sizes:
        log.info("seed notebook method on %s customers", f"{SEED_METHOD_SIZE:,}")
        seed_seconds = seed_method(PROJECT_ROOT / "data" / "bench" / f"customers_{SEED_METHOD_SIZE}.parquet")
    table = render(results, seed_seconds)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
