"""`make bench ENGINE=spark`: the pipeline on local Spark at a million customers, in the DuckDB bench's table.

The same generated file (cached under data/bench/), the same steps as `make all ENGINE=spark`
(begin, ingest, the one Spark process, publish, report), each its own process, and the same
table (bench.render). Peak memory is the whole process tree's (the Spark step's Python
driver, its JVM and the Python workers together), sampled every half second: the JVM is not
a child whose rusage the step's process collects.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ..bench import SizeResult, StepResult, read_run, render, run_measured, work_env, write_table
from ..config import PROJECT_ROOT

log = logging.getLogger(__name__)

SPARK_SIZES = (1_000_000,)
SAMPLE_SECONDS = 0.5


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue  # the process ended meanwhile, or has no memory of its own
    return total


def run_tree_measured(name: str, command: list[str], env: dict[str, str], cwd: Path) -> StepResult:
    """Run one step; wall time and the peak summed RSS of its process tree."""
    started = time.perf_counter()
    with open(cwd / "data" / "bench" / f"spark_{name.split()[0]}.log", "w") as output:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"bench step {name} failed ({process.returncode}): see {output.name}")
    log.info("  %-16s %7.1f s  peak %.2f GiB (process tree)", name, seconds, peak / 2**30)
    return StepResult(name, seconds, peak / 2**30)


STAGE = re.compile(r"segmentation\.pipeline: (.+) done in ([0-9.]+) s$")


def stage_lines(log_file: Path, rows: int) -> list[str]:
    """Where the Spark step's time goes: its own stage log (JVM start, dbt on Spark, the fit, the copies)."""
    stages = [m.groups() for line in log_file.read_text().splitlines() if (m := STAGE.search(line))]
    lines = [f"Inside the Spark step at {rows:,} rows (its stages, as logged):", "", "| stage | s |", "|---|---:|"]
    return lines + [f"| {name} | {float(seconds):.1f} |" for name, seconds in stages]


def bench_spark_size(rows: int, root: Path, env_base: dict[str, str]) -> SizeResult:
    python = sys.executable
    data_dir = root / "data" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    work = data_dir / f"spark_run_{rows}"
    data, truth = data_dir / f"customers_{rows}.parquet", data_dir / f"truth_{rows}.parquet"
    result = SizeResult(rows)
    env = work_env(root, work, env_base)
    env.pop("SPARK_REMOTE", None)  # the bench measures local Spark
    published, building = work / "warehouse.duckdb", work / ".build" / "warehouse.duckdb"
    log.info("%s customers on Spark", f"{rows:,}")
    if not data.exists() or not truth.exists():
        command = [python, "-m", "segmentation", "generate", str(data), "--rows", str(rows), "--truth", str(truth)]
        result.steps.append(run_measured("generate", command, env, root))
    published.unlink(missing_ok=True)
    steps = [
        ("begin", [python, "-m", "segmentation", "begin", str(published)], building),
        ("ingest", [python, "-m", "segmentation", "ingest", str(data)], building),
        ("spark (dbt, quality, segment, profiles)", [python, "-m", "segmentation", "spark"], building),
        ("publish", [python, "-m", "segmentation", "publish", str(published)], building),
        ("report", [python, "-m", "segmentation", "report"], published),
    ]
    for name, command, warehouse in steps:
        result.steps.append(run_tree_measured(name, command, {**env, "SEGMENTATION_WAREHOUSE": str(warehouse)}, root))
    read_run(result, published, truth)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench ENGINE=spark", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SPARK_SIZES)), help="comma-separated row counts")
    parser.add_argument("--output", default=str(PROJECT_ROOT / "reports" / "output" / "bench_spark.md"))
    args, _ = parser.parse_known_args(argv)  # the DuckDB bench's other flags do not apply
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip())
    results = [bench_spark_size(rows, PROJECT_ROOT, dict(os.environ)) for rows in sizes]
    table = render(results, None).replace("# Benchmark", "# Benchmark on Spark (ENGINE=spark, local)", 1)
    table = table.split("\nMemory of the clustering step")[0]  # no separate segment step on Spark
    for rows in sizes:
        table += "\n".join(["", *stage_lines(PROJECT_ROOT / "data" / "bench" / "spark_spark.log", rows)]) + "\n"
    write_table(table, Path(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
