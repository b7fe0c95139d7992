"""Drawing a render's charts: each chart once per content, the others in parallel processes.

A chart is a pure function of its arguments, so a fingerprint of them (and of the code that
draws) says whether the file already in ``charts/`` is the one this render would draw: a
report rendered again from the same warehouse draws nothing. The charts that must be drawn
are spread over forked worker processes (matplotlib holds the GIL while it draws, so
threads would take turns); where fork is unavailable, or there is little to draw, they are
drawn here, one after the other.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MANIFEST = ".fingerprints.json"  # chart file name → fingerprint of what drew it
MAX_WORKERS = 4
_CODE_MODULES = (
    "segmentation.charts",
    "segmentation.report.behaviour",
    "segmentation.report.figures",
    "segmentation.report.chart_files",
)


@dataclass(frozen=True)
class ChartJob:
    """One chart to draw: ``draw(path, *args, **kwargs)`` writes ``path`` and returns it."""

    key: str
    draw: Callable[..., Path]
    path: Path
    args: tuple = ()
    kwargs: Mapping = field(default_factory=dict)

    def fingerprint(self, code: str) -> str:
        """The arguments and the drawing code, hashed: equal fingerprints draw equal files."""
        payload = pickle.dumps(
            (
                code,
                self.draw.__module__,
                self.draw.__qualname__,
                self.path.name,
                _stable(self.args),
                _stable(self.kwargs),
            ),
            protocol=5,
        )
        return hashlib.sha256(payload).hexdigest()

    def __call__(self) -> Path:
        return self.draw(self.path, *self.args, **self.kwargs)


def _stable(value):
    """The value with its floats rounded to what a chart can show (10 significant digits, float32 arrays).

    Sums over threads differ in their last bits from one run to the next (a BIC of 190966.66621817107,
    then ...7112): the same chart, which must not be drawn again for it.
    """
    if isinstance(value, float | np.floating):
        return float(f"{value:.10g}")
    if isinstance(value, np.ndarray):
        return value.astype(np.float32) if value.dtype.kind == "f" else value
    if isinstance(value, Mapping):
        return {key: _stable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_stable(item) for item in value)
    return value


def code_version() -> str:
    """The source of the modules that draw, and matplotlib's version: a change in either redraws."""
    import importlib
    import importlib.metadata

    digest = hashlib.sha256(importlib.metadata.version("matplotlib").encode())
    for name in _CODE_MODULES:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    return digest.hexdigest()


class Drawing:
    """Charts being drawn: wait for one (the PDF's fetcher asks as it meets each) or for all.

    The layout's first half (stylesheets, cascade) needs no chart, so it runs here while the
    workers draw. ``finish`` raises the first drawing error, so a failed chart can never
    hide behind WeasyPrint's "image left out" warning.
    """

    def __init__(self, jobs: Sequence[ChartJob], charts_dir: Path, workers: int | None = None) -> None:
        self.started = time.perf_counter()
        self.charts_dir = charts_dir
        self.paths = {job.key: job.path for job in jobs}
        charts_dir.mkdir(parents=True, exist_ok=True)
        known = _read_manifest(charts_dir)
        code = code_version()
        self.fingerprints = {job.path.name: job.fingerprint(code) for job in jobs}
        todo = [j for j in jobs if known.get(j.path.name) != self.fingerprints[j.path.name] or not j.path.is_file()]
        for job in todo:
            known.pop(job.path.name, None)  # forgotten before drawing: a failed draw is never taken as current
        _write_manifest(charts_dir, known)
        self.known, self.drawn, self.unchanged = known, len(todo), len(jobs) - len(todo)
        self.done_at = self.started
        self.futures: dict[Path, Future] = {}
        self.pool: ProcessPoolExecutor | None = None
        self.workers = workers = _workers(workers, len(todo))
        if workers <= 1:
            for job in todo:
                job()
            self.done_at = time.perf_counter()
            return
        # The first chart is drawn here: the fonts and caches it loads are inherited by every worker.
        todo[0]()
        # fork: the workers start with everything imported, in a few milliseconds. Each freezes the heap
        # it inherits, so that its garbage collections walk only what its charts allocate (and never
        # touch, hence copy, the parent's pages): a seventh less CPU for the charts.
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=gc.freeze
        )
        self.futures = {job.path.resolve(): self.pool.submit(job) for job in todo[1:]}
        for future in self.futures.values():
            future.add_done_callback(self._done)

    def _done(self, _future: Future) -> None:
        self.done_at = time.perf_counter()

    def wait(self, path: Path) -> None:
        """Return once the chart at ``path`` is written (at once for any other file)."""
        future = self.futures.get(Path(path).resolve())
        if future is not None:
            future.result()

    def finish(self) -> dict[str, Path]:
        """Wait for every chart, record their fingerprints; returns every chart's path by key."""
        try:
            for future in self.futures.values():
                future.result()
        finally:
            self.close()
        # charts this report no longer has (a segment gone, an earlier run's) are removed with
        # their record: the folder holds this report's charts, not every run's
        stale = [name for name in self.known if name not in self.fingerprints and Path(name).name == name]
        for name in stale:
            (self.charts_dir / name).unlink(missing_ok=True)
        _write_manifest(self.charts_dir, self.fingerprints)
        logger.info(
            "charts: %d drawn in %d process(es), %d unchanged, %d removed, in %.2f s",
            self.drawn,
            self.workers,
            self.unchanged,
            len(stale),
            self.done_at - self.started,
        )
        return dict(self.paths)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def draw_all(jobs: Sequence[ChartJob], charts_dir: Path, workers: int | None = None) -> dict[str, Path]:
    """Draw the jobs whose file is missing or out of date; returns every job's path by key."""
    return Drawing(jobs, charts_dir, workers).finish()


def _workers(requested: int | None, jobs: int) -> int:
    if requested is None:
        requested = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, MAX_WORKERS)
    if jobs < 3 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(requested, jobs))


def _read_manifest(charts_dir: Path) -> dict[str, str]:
    try:
        known = json.loads((charts_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in known.items()} if isinstance(known, dict) else {}


def _write_manifest(charts_dir: Path, known: Mapping[str, str]) -> None:
    path = charts_dir / MANIFEST
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(dict(sorted(known.items())), indent=0), encoding="utf-8")
    os.replace(temporary, path)
