"""`make bench`, side by side: this project's `make all` against the seed notebook's method on the same file.

The pairs the speed targets are about, each measured in the same run on the same machine:

- a real-shaped export of 10,695 customers (the size of the real export behind the seed; the
  generator is calibrated to it), where the seed's method includes its t-SNE on every row;
- one million customers of the same shape, where the seed's t-SNE cannot finish and is left out;
- ten million customers, this project alone (the seed's method needs the whole one-hot table in
  memory several times over).

This project runs as a user runs it on their own file: `make init DATA=file` (profiling the file and
writing its declaration: set-up, not timed), then `make all DATA=file`, timed whole (one process: the
load, dbt, the quality check, the model, the profiles and the PDF report). The first `make all` after
`make init` is the one timed; a second, everyday run (a previous segmentation to match, dbt's parse
kept) is printed beside it. The seed's method runs in its own process on the same file: pandas
one-hot, StandardScaler, the elbow over k = 1…10 with n_init = 10 on every row, the final K-Means,
PCA, and at 10,695 rows scikit-learn's t-SNE on every row, as the notebook did. Both processes'
wall time and peak memory are measured the same way (`bench.run_measured`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .bench import MAKE_VARIABLES, StepResult, run_measured

log = logging.getLogger(__name__)

REAL_EXPORT_ROWS = 10_695  # the real export behind the seed notebook
PAIRS = ((REAL_EXPORT_ROWS, True), (1_000_000, False), (10_000_000, None))  # rows, seed method with t-SNE?
TARGETS = {REAL_EXPORT_ROWS: (4.0, None, None), 1_000_000: (6.0, 20.0, None), 10_000_000: (None, 60.0, 4.0)}
SEED_ID_COLUMN = "ID"  # the generator writes the seed's schema; the seed's method drops its id
SEED_NUMERIC = ("Age", "Work_Experience", "Family_Size")


@dataclass
class Pair:
    rows: int
    first: StepResult  # the first `make all` after `make init`
    everyday: StepResult | None  # a second run
    seed: StepResult | None  # the seed notebook's method on the same file
    tsne: bool = False

    @property
    def ratio(self) -> float | None:
        return self.seed.seconds / self.first.seconds if self.seed else None


def seed_method(path: Path, tsne: bool, random_state: int = 42) -> None:
    """The seed notebook's method, as it ran: every step on every row."""
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame = frame.drop(columns=[SEED_ID_COLUMN])
    for column in SEED_NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
        frame[column] = frame[column].fillna(frame[column].median())
    categorical = [c for c in frame.columns if c not in SEED_NUMERIC]
    for column in categorical:
        frame[column] = frame[column].fillna(frame[column].mode()[0])
    matrix = StandardScaler().fit_transform(pd.get_dummies(frame, columns=categorical))
    for k in range(1, 11):
        KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=random_state).fit(matrix)
        log.info("seed method: elbow k=%d (%.0f s)", k, time.perf_counter() - started)
    labels = KMeans(n_clusters=4, init="k-means++", n_init=10, random_state=random_state).fit_predict(matrix)
    PCA(n_components=2).fit_transform(matrix)
    if tsne:
        TSNE(n_components=2, random_state=random_state).fit_transform(matrix)
        log.info("seed method: t-SNE on %s rows (%.0f s)", f"{len(matrix):,}", time.perf_counter() - started)
    if len(labels) != len(frame):
        raise RuntimeError("the seed method lost rows")


def data_file(root: Path, rows: int, env: dict[str, str]) -> Path:
    """The generated customer file of `rows` rows (the bench's own cache under data/bench/)."""
    path = root / "data" / "bench" / f"customers_{rows}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "segmentation", "generate", str(path), "--rows", str(rows)]
        run_measured("generate", command, {**env, "PYTHONPATH": str(root / "python")}, root)
    return path


def bench_pair(rows: int, tsne: bool | None, root: Path, env_base: dict[str, str]) -> Pair:
    """`make init` then `make all` on one generated file, and the seed's method on the same file."""
    env = {key: value for key, value in env_base.items() if key not in MAKE_VARIABLES}
    for variable in ("K", "ALGO", "WEIGHTING", "K_MIN", "K_MAX", "ORDERS", "AS_OF", "DECLARATION", "ENGINE"):
        env.pop(variable, None)
    data = data_file(root, rows, env)
    work = root / "data" / "bench" / f"pair_{rows}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    variables = [
        f"DATA={data}",
        f"DECLARATION={work / 'declaration.yml'}",
        f"WAREHOUSE={work / 'warehouse.duckdb'}",
        f"MODELS_DIR={work / 'models'}",
        f"OUTPUT_DIR={work / 'output'}",
        f"DBT_TARGET_PATH={work / 'dbt_target'}",
    ]
    log.info("pair at %s customers: make init, make all (twice), the seed's method", f"{rows:,}")
    run_measured("make init", ["make", "--no-print-directory", "init", *variables], env, root)
    first = run_measured("make all (first)", ["make", "--no-print-directory", "all", *variables], env, root)
    everyday = run_measured("make all (again)", ["make", "--no-print-directory", "all", *variables], env, root)
    seed = None
    if tsne is not None:
        command = [sys.executable, "-m", "segmentation.bench_pairs", "seed-method", str(data)]
        command += ["--tsne"] if tsne else []
        seed = run_measured("seed method", command, {**env, "PYTHONPATH": str(root / "python")}, root)
    return Pair(rows, first, everyday, seed, bool(tsne))


def pair_lines(pairs: list[Pair]) -> list[str]:
    """The side-by-side table, with the targets of the speed issue."""
    lines = [
        "This project against the seed notebook's method, on the same generated file in the same run "
        "(`make all` timed whole after `make init`, one process; the seed's method in its own process):",
        "",
        "| customers | `make all` (first after init) | `make all` again | seed's method | ratio | target |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for pair in pairs:
        ratio_target, seconds_target, gib_target = TARGETS.get(pair.rows, (None, None, None))
        met = (
            (ratio_target is None or (pair.ratio or 0) >= ratio_target)
            and (seconds_target is None or pair.first.seconds < seconds_target)
            and (gib_target is None or pair.first.peak_rss_gib < gib_target)
        )
        target = ", ".join(
            part
            for part in (
                f"≥ {ratio_target:.0f}×" if ratio_target else "",
                f"< {seconds_target:.0f} s" if seconds_target else "",
                f"< {gib_target:.0f} GiB" if gib_target else "",
            )
            if part
        )
        seed = f"{pair.seed.seconds:.1f} s / {pair.seed.peak_rss_gib:.2f} GiB" if pair.seed else "–"
        seed += " (t-SNE on every row)" if pair.tsne else ""
        lines.append(
            f"| {pair.rows:,} | **{pair.first.seconds:.1f} s** / {pair.first.peak_rss_gib:.2f} GiB | "
            f"{pair.everyday.seconds:.1f} s | {seed} | "
            + (f"**{pair.ratio:.1f}×**" if pair.ratio else "–")
            + f" | {target}: {'met' if met else '**missed**'} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segmentation.bench_pairs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    method = commands.add_parser("seed-method", help="run the seed notebook's method on a file (timed by the caller)")
    method.add_argument("path")
    method.add_argument("--tsne", action="store_true", help="t-SNE on every row, as the notebook did")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    seed_method(Path(args.path), args.tsne)
    return 0


if __name__ == "__main__":
    sys.exit(main())
