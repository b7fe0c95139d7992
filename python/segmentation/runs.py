"""Run-level safety: one run at a time per warehouse, and all-or-nothing publication.

A run builds into a working copy of the warehouse (`.build/<warehouse>` beside it,
same file name, because dbt's views name the DuckDB catalog after it) and only
renames it over the published file once every step has succeeded. A run killed at
any moment (even with kill -9) therefore leaves the previous complete results in
place, and the next run simply starts a fresh working copy. An advisory lock on
`<warehouse>.lock` keeps a second run on the same warehouse from starting, and one on
`dbt_project/.run.lock` makes a run on another warehouse of the same checkout wait its turn.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from .config import PROJECT_ROOT
from .errors import UserError

log = logging.getLogger(__name__)


def build_path(warehouse: Path) -> Path:
    return warehouse.parent / ".build" / warehouse.name


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def run_exclusively(warehouse: Path, command: Sequence[str]) -> int:
    """Run `command` while holding the warehouse's lock; refuse if another run holds it."""
    with exclusive(warehouse):
        return subprocess.call(list(command))


@contextmanager
def exclusive(warehouse: Path) -> Iterator[None]:
    """Hold the warehouse's lock (and the checkout's turn); refuse if another run holds it.

    The lock is released by the kernel when this process ends, however it ends, so
    a killed run never leaves a stale lock behind.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(
                f"the warehouse {warehouse} is in use by another run (process {holder}): "
                "wait for it to finish, or stop it, then run again."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        with project_turn():
            yield


@contextmanager
def project_turn() -> Iterator[None]:
    """One run at a time per checkout: the dbt files generated from a run's declaration
    (dbt_project/models/declared, macros/declared) are the checkout's, so a second run on
    another warehouse waits for the first instead of rewriting them under it."""
    path = PROJECT_ROOT / "dbt_project" / ".run.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another run is using this checkout's dbt project: waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def begin(warehouse: Path) -> Path:
    """Start a working copy from the published warehouse (or from nothing)."""
    build = build_path(warehouse)
    build.parent.mkdir(parents=True, exist_ok=True)
    for stale in (build, build.with_name(build.name + ".wal")):
        stale.unlink(missing_ok=True)
    if warehouse.exists():
        temporary = build.with_name(build.name + ".tmp")
        shutil.copyfile(warehouse, temporary)
        os.replace(temporary, build)
        log.info("working copy %s started from %s", build.name, warehouse.name)
    else:
        log.info("working copy %s started empty (no published warehouse yet)", build.name)
    return build


def publish(warehouse: Path) -> None:
    """Atomically replace the published warehouse by the finished working copy."""
    build = build_path(warehouse)
    if not build.exists():
        raise UserError(f"no working copy {build} to publish: run `make all`.")
    con = duckdb.connect(str(build))
    try:
        con.execute("checkpoint")  # fold the write-ahead log into the file before it moves
    finally:
        con.close()
    os.replace(build, warehouse)
    log.info("published %s", warehouse)
