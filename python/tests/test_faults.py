"""Faults: kill -9 at any moment, two runs at once, a write cut in the middle.

Real processes only: `make all` in its own process group, killed with SIGKILL at random
moments of each step (dbt, clustering, publication, rendering); after every kill the
published warehouse must open and hold one complete run, and the next `make all` must
succeed without any clean-up. Two lanes of kills run side by side to keep the time down.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, make_command, pipeline_env
from pypdf import PdfReader

from segmentation.generate import generate

pytestmark = pytest.mark.slow

FAST = {"K": "3", "K_MAX": "3", "WEIGHTING": "none"}
STEP_TIMEOUT = 240


class Run:
    """`make all` in its own process group, its output read line by line as it comes."""

    def __init__(self, workdir: Path, data: Path) -> None:
        self.lines: list[str] = []
        self.started = time.monotonic()
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            make_command(workdir, "all", DATA=str(data)),
            cwd=ROOT,
            env=pipeline_env(workdir, **FAST),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = STEP_TIMEOUT) -> bool:
        """Block until a line matches (True) or the run ends first (False)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if any(regex.search(line) for line in self.lines):
                    return True
                if self.process.poll() is not None and not self._reader.is_alive():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no line matching {pattern!r} after {timeout} s")
                self._changed.wait(min(remaining, 0.2))

    def kill(self) -> float:
        """SIGKILL the whole process group (make, the CLI, dbt, WeasyPrint); returns seconds since start."""
        elapsed = time.monotonic() - self.started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return elapsed

    def finish(self, timeout: float = 2 * STEP_TIMEOUT) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Published:
    run_id: str
    runs: int


def one_complete_run(workdir: Path) -> Published:
    """The published warehouse opens, and all its tables describe the same, latest run."""
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        runs = con.sql(
            "select run_id, k, customers from segmentation.segmentation_runs "
            "order by finished_at desc nulls last, started_at desc"
        ).fetchall()
        latest, k, customers = runs[0]
        assert con.sql("select distinct run_id from segmentation.segment_assignments").fetchall() == [(latest,)]
        assert con.sql("select distinct run_id from marts.customer_segments").fetchall() == [(latest,)]
        assert con.sql("select count(*) from segmentation.segment_assignments").fetchall() == [(customers,)]
        assert con.sql("select count(*) from marts.customer_features").fetchall() == [(customers,)]
        assert con.sql("select count(*) from marts.customer_segments").fetchall() == [(customers,)]
        assert con.sql("select count(*) from marts.segment_profiles").fetchall() == [(k,)]
        ledger = dict(
            con.sql("select item, rows from marts.data_quality_summary where section = 'accounting'").fetchall()
        )
    assert ledger["customers_kept"] == customers
    report = workdir / "output" / "segment_report.pdf"
    assert len(PdfReader(report).pages) > 0  # the old report or the new one, never half of one
    return Published(latest, len(runs))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    generate(path, rows=600, seed=23)
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    workdir = tmp_path_factory.mktemp("baseline")
    run = Run(workdir, data)
    assert run.finish() == 0, run.output[-4000:]
    return workdir


def _copy(baseline: Path, workdir: Path) -> Path:
    for name in ("warehouse.duckdb", "output", "dbt_target", "models"):
        source = baseline / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, workdir / name)
    return workdir


# where to kill: (a line that marks the step, the random delay range after it)
KILL_POINTS = {
    "at a random moment": (r"Starting a working copy", (0.0, 15.0)),
    "during dbt": (r"==> dbt build: staging", (0.5, 6.0)),
    "during the clustering step": (r"==> Clustering customers", (0.5, 6.0)),
    "during publication": (r"==> Publishing", (0.0, 0.4)),
    "during rendering": (r"==> Rendering the persona report", (0.3, 3.0)),
}
LANES = [["at a random moment", "during publication"], ["during the clustering step", "during dbt", "during rendering"]]


@dataclass
class Kill:
    where: str
    after_seconds: float
    finished_first: bool
    published: Published


@pytest.fixture(scope="module")
def killed(baseline: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Kill]]:
    seed = int(os.environ.get("FAULT_SEED") or time.time())  # printed below: FAULT_SEED=… replays a failure
    rng = random.Random(seed)
    print(f"FAULT_SEED={seed}")

    def lane(points: list[str]) -> tuple[Path, list[Kill]]:
        workdir = _copy(baseline, tmp_path_factory.mktemp("killed"))
        kills = []
        for where in points:
            pattern, (low, high) = KILL_POINTS[where]
            run = Run(workdir, data)
            reached = run.wait_for(pattern)
            time.sleep(rng.uniform(low, high))
            finished_first = run.process.poll() is not None
            elapsed = run.kill()
            assert reached or finished_first, run.output[-3000:]
            kills.append(Kill(where, round(elapsed, 1), finished_first, one_complete_run(workdir)))
        return workdir, kills

    with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
        results = list(pool.map(lane, LANES))
    return [workdir for workdir, _ in results], [kill for _, kills in results for kill in kills]


def test_kill_9_at_any_moment_leaves_one_complete_run(baseline: Path, killed: tuple[list[Path], list[Kill]]) -> None:
    before = one_complete_run(baseline)
    _, kills = killed
    assert [k.where for k in kills] == [w for lane in LANES for w in lane]
    for kill in kills:
        # one_complete_run already held after each kill; a run cut before publication left the
        # baseline as it was, one cut after it published a whole new run
        assert kill.published.run_id == before.run_id or kill.published.runs > before.runs, kill
    print("\n".join(f"killed {k.where} after {k.after_seconds} s: run {k.published.run_id}" for k in kills))


def test_next_run_succeeds_and_a_concurrent_one_is_refused(killed: tuple[list[Path], list[Kill]], data: Path) -> None:
    workdir = killed[0][0]  # killed twice, never cleaned up
    before = one_complete_run(workdir)
    first = Run(workdir, data)
    assert first.wait_for(r"Starting a working copy")
    second = Run(workdir, data)
    assert second.finish(timeout=60) != 0
    refusals = [line for line in second.lines if line.startswith("error:")]
    assert len(refusals) == 1 and "in use by another run" in refusals[0], second.output
    assert "Traceback" not in second.output
    assert first.finish() == 0, first.output[-4000:]
    after = one_complete_run(workdir)
    assert after.run_id != before.run_id and after.runs == before.runs + 1


PAUSING_WRITE = """
import sys, time
import segmentation.warehouse as warehouse

original = warehouse.write_results


class PausingConnection:
    # a connection that stops for good right after the first table of the transaction is written
    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args, **kwargs):
        result = self._con.execute(sql, *args, **kwargs)
        if sql.lstrip().lower().startswith("create or replace table segmentation."):
            print("MID-WRITE", flush=True)
            time.sleep(600)
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


warehouse.write_results = lambda con, *args, **kwargs: original(PausingConnection(con), *args, **kwargs)
from segmentation.cli import main

sys.exit(main(["segment"]))
"""


def test_python_step_killed_mid_write_keeps_the_previous_results(baseline: Path, tmp_path: Path) -> None:
    """The clustering step's write is one transaction: cut in the middle, nothing of it remains."""
    working_copy = tmp_path / "warehouse.duckdb"
    shutil.copy2(baseline / "warehouse.duckdb", working_copy)
    env = pipeline_env(
        tmp_path,
        **FAST,
        SEGMENTATION_WAREHOUSE=str(working_copy),
        DBT_TARGET_PATH=str(baseline / "dbt_target"),
    )
    before = one_complete_run(baseline)
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSING_WRITE],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = []
        for line in process.stdout:
            output.append(line)
            if line.startswith("MID-WRITE"):
                break
        assert output and output[-1].startswith("MID-WRITE"), "".join(output)[-3000:]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    with duckdb.connect(str(working_copy), read_only=True) as con:
        assert con.sql("select distinct run_id from segmentation.segment_assignments").fetchall() == [(before.run_id,)]
        assert con.sql("select count(*) from segmentation.segmentation_runs").fetchall() == [(before.runs,)]
    # and the next run on the same file needs no clean-up
    rerun = subprocess.run(
        [sys.executable, "-m", "segmentation", "segment"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    with duckdb.connect(str(working_copy), read_only=True) as con:
        assert con.sql("select count(*) from segmentation.segmentation_runs").fetchall() == [(before.runs + 1,)]
        assert con.sql("select count(distinct run_id) from segmentation.segment_assignments").fetchall() == [(1,)]
