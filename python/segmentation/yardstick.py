"""The yardstick of `make bench`: agreement with the planted personas, beside the best achievable.

For every algorithm and encoding the project offers, the real segment step (its own k rule)
runs on the same cleaned table; its segments are compared with the planted personas (adjusted
Rand index, persona customers only and with the noise customers), beside the generator's
Bayes oracle on that same table: the ceiling no method can pass on average.
"""

from __future__ import annotations

import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .bench import DRAW_SIZE, adjusted_rand_from_counts, run_measured, work_env

log = logging.getLogger(__name__)

__all__ = ["DRAW_SIZE", "YARDSTICK_LARGE", "YardstickRow", "yardstick_draw", "yardstick_lines"]

YARDSTICK_METHODS = (
    ("mixture", "auto"),
    ("kmeans", "auto"),
    ("kmeans", "none"),
    ("kmeans", "balanced"),
    ("minibatch", "auto"),
    ("kprototypes", "auto"),
)
YARDSTICK_DRAWS = 3
YARDSTICK_LARGE = 1_000_000


@dataclass
class YardstickRow:
    rows: int
    seed: int
    method: str  # "algorithm / weighting", or "Bayes oracle"
    k: int | None
    ari_all: float  # the four personas and the noise customers
    ari_personas: float  # persona customers only


def _agreement(con: duckdb.DuckDBPyConnection, truth: Path, labels_sql: str) -> tuple[float, float]:
    """(ARI with noise, ARI persona customers only) of `labels_sql` (customer_id, label) against the truth."""
    counts = con.execute(
        f"select truth.planted_segment, found.label, count(*) from ({labels_sql}) as found "
        "inner join read_parquet(?) as truth on truth.ID = found.customer_id group by all",
        [str(truth)],
    ).fetchall()
    personas = [row for row in counts if row[0] != "noise"]
    return adjusted_rand_from_counts(counts), adjusted_rand_from_counts(personas)


def yardstick_draw(rows: int, seed: int, root: Path, env_base: dict[str, str]) -> list[YardstickRow]:
    """One generator draw: the cleaned mart once, then the segment step once per method, and the oracle.

    Each method is the real segment step (its own k rule), run as `make all` runs it, with
    ALGO and WEIGHTING set; the oracle is the generator's posterior-maximum persona on the same
    cleaned table: the ceiling.
    """
    from .generate import bayes_oracle

    python = sys.executable
    dbt = str(Path(python).parent / "dbt")
    work = root / "data" / "bench" / f"yardstick_{rows}_seed{seed}"
    data, truth = work / "customers.parquet", work / "truth.parquet"
    env = work_env(root, work, env_base, SEGMENTATION_WAREHOUSE=str(work / "warehouse.duckdb"))
    log.info("yardstick: %s customers, generator seed %d", f"{rows:,}", seed)
    if not data.exists() or not truth.exists():
        generate = [python, "-m", "segmentation", "generate", str(data), "--rows", str(rows), "--seed", str(seed)]
        run_measured("generate", [*generate, "--truth", str(truth)], env, root)
    (work / "warehouse.duckdb").unlink(missing_ok=True)
    run_measured("ingest", [python, "-m", "segmentation", "ingest", str(data)], env, root)
    run_measured("dbt build", [dbt, "build", "--exclude", "source:segmentation+"], env, root / "dbt_project")
    results = []
    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
        features = con.sql("select * from marts.customer_features").to_arrow_table()
        ids = features.select(["customer_id"])
        con.register("oracle", ids.append_column("label", bayes_oracle(features)))
        con.register("oracle_personas", ids.append_column("label", bayes_oracle(features, noise=False)))
        with_noise, _ = _agreement(con, truth, "select * from oracle")
        _, personas = _agreement(con, truth, "select * from oracle_personas")
        results.append(YardstickRow(rows, seed, "Bayes oracle", None, with_noise, personas))
    for algorithm, weighting in YARDSTICK_METHODS:
        method_env = {**env, "ALGO": algorithm, "WEIGHTING": weighting}
        run_measured(f"segment {algorithm}/{weighting}", [python, "-m", "segmentation", "segment"], method_env, root)
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
            k = int(con.sql("select count(distinct segment_id) from segmentation.segment_assignments").fetchall()[0][0])
            labels = "select customer_id, segment_id as label from segmentation.segment_assignments"
            results.append(YardstickRow(rows, seed, f"{algorithm} / {weighting}", k, *_agreement(con, truth, labels)))
        last = results[-1]
        log.info("  %s / %s: k=%d, ARI %.3f (personas %.3f)", algorithm, weighting, k, last.ari_all, last.ari_personas)
    return results


def yardstick_lines(rows: list[YardstickRow]) -> list[str]:
    """Mean ARI over the draws, per size and method, beside the oracle's ceiling."""
    lines = [
        "Agreement with the planted personas (adjusted Rand index; mean over the generator draws, min–max in "
        "brackets), each method as the segment step runs it (its own k), beside the Bayes oracle: the "
        "generator's own parameters applied to the same cleaned table (the most probable persona: the best "
        "accuracy any method can reach; the adjusted Rand index, a different measure, can pass it by a little, "
        "and the oracle models the cleaning's changes only in part).",
        "",
        "| customers | method | draws | k | ARI, persona customers | ARI, with noise | persona ARI / oracle's |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for size in sorted({r.rows for r in rows}):
        at_size = [r for r in rows if r.rows == size]
        ceiling = statistics.fmean(r.ari_personas for r in at_size if r.method == "Bayes oracle")
        methods = list(dict.fromkeys(r.method for r in at_size))
        for method in ["Bayes oracle", *(m for m in methods if m != "Bayes oracle")]:
            group = [r for r in at_size if r.method == method]
            personas = [r.ari_personas for r in group]
            noisy = [r.ari_all for r in group]
            ks = ", ".join(sorted({str(r.k) for r in group if r.k is not None})) or "–"
            lines.append(
                f"| {size:,} | {method} | {len(group)} | {ks} | {statistics.fmean(personas):.3f} "
                f"({min(personas):.3f}–{max(personas):.3f}) | {statistics.fmean(noisy):.3f} "
                f"({min(noisy):.3f}–{max(noisy):.3f}) | {statistics.fmean(personas) / ceiling:.0%} |"
            )
    return lines
