"""A second interpreter for `make all`'s steps that need the heavy libraries, warmed while dbt runs.

The segment step imports scikit-learn and openTSNE, the report WeasyPrint, Jinja2 and
matplotlib: about two seconds of CPU before any work. dbt's build is single-threaded Python,
so on two cores one of them is idle while it runs. A process forked at the start of the run
loads the inputs (so that their Python does not take turns with dbt's on one lock), imports
those libraries once told to (`warm`), then runs the steps when their turn comes: still one
after the other, in the order and with the guarantees of `run_all`; only the load and the
imports overlap dbt's work.

The fork happens before the run takes the warehouse's lock and before any thread starts:
the child holds neither the lock nor a warehouse connection (the load opens the working copy
and closes it before dbt builds), and inherits the logging set-up.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypeVar

from .errors import ToolFailed

log = logging.getLogger(__name__)

T = TypeVar("T")

# in the order the steps need them: the segment step's first, matplotlib (charts) last
WARM_MODULES = ("segmentation.pipeline", "segmentation.report", "matplotlib.pyplot")


def _die_with(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies (a `kill -9` of the run alone must
    not leave a step writing on in the background); elsewhere the pool's closed pipe ends it."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    # Ctrl-C reaches the whole process group: the parent reports it in one line and stops this
    # process (`close(stop=True)`), which therefore prints nothing of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm(modules: tuple[str, ...], then: Callable[[], object] | None) -> str | None:
    """Import `modules`, then call `then`; the message of a system library that failed to load
    (cffi's dlopen), if any."""
    try:
        for name in modules:
            importlib.import_module(name)
        if then is not None:
            then()
    except OSError as error:
        return str(error)
    except Exception:  # a broken install fails loudly in the step that needs it, not here
        return None
    return None


def _call(function: Callable[..., T], environment: dict[str, str], args: tuple) -> T:
    os.environ.update(environment)
    return function(*args)


def _forked_now() -> ProcessPoolExecutor:
    """A one-process pool whose process is forked now, warm with this one's imports: the pool forks
    at its first task, before it starts its own threads. The process dies with this one, and
    Ctrl-C is left to this one."""
    fork = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=1, mp_context=fork, initializer=_die_with, initargs=(os.getpid(),))
    pool.submit(os.getpid)
    return pool


@contextmanager
def side_process() -> Iterator[ProcessPoolExecutor]:
    """A process forked from this one now (`_forked_now`), for work beside it; ended on leaving."""
    pool = _forked_now()
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WarmWorker:
    """One forked process: `start` it first, then `run` steps in it one at a time; `close` at the end.

    A step's exception (a `UserError` too) is raised again here, as if the step had run in
    this process; a worker that dies (killed, out of memory) is reported as the step failing.
    """

    def __init__(self, modules: tuple[str, ...] = WARM_MODULES, then: Callable[[], object] | None = None) -> None:
        self.modules = modules
        self.then = then  # more warming after the imports (a module-level function)
        self._pool: ProcessPoolExecutor | None = None
        self._warming: Future | None = None

    def start(self) -> WarmWorker:
        """Fork the worker now (before the run's lock and any thread of its own)."""
        self._pool = _forked_now()
        return self

    def warm(self) -> None:
        """Start the imports now: when this process leaves a core idle (dbt's parse or build, Python
        on one core), not while it needs both (the parse beside the load), where they would only
        slow it down."""
        if self._warming is None and self._pool is not None:
            self._warming = self._pool.submit(_warm, self.modules, self.then)

    def warmed(self) -> str | None:
        """Wait for the imports (started now if `warm` was not called); the message of a system
        library that failed to load, if one did."""
        self.warm()
        try:
            return self._warming.result() if self._warming is not None else None
        except BrokenProcessPool:
            return None  # the next step reports it

    def run(self, what: str, function: Callable[..., T], *args, environment: dict[str, str] | None = None) -> T:
        if self._pool is None:
            raise RuntimeError("WarmWorker.run before start")
        try:
            return self._pool.submit(_call, function, dict(environment or {}), args).result()
        except BrokenProcessPool:
            raise ToolFailed(
                f"the {what} step's process ended abruptly (killed, or out of memory): "
                "see the messages above; the published results are unchanged."
            ) from None

    def close(self, stop: bool = False) -> None:
        """End the worker after its current step; with `stop` (the run was interrupted or failed:
        whatever the step would still write goes to a working copy that is thrown away), at once."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        if stop:
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
