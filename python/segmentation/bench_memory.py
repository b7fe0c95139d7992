"""Peak memory of a process and all its descendants together, for the bench (Linux).

`wait4`'s peak resident memory is the largest single process's, but `make all` runs two at
once (the pipeline and its warm worker, which forks chart workers in turn). This samples the
proportional set size (PSS: shared pages split between the processes that share them, so a
fork's copy-on-write pages are not counted twice) of the whole tree, and keeps the largest sum;
a sample costs tens of milliseconds for gigabytes, so the samples are spaced to take at most a
tenth of one core.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

PROC = Path("/proc")
INTERVAL = 0.1  # seconds between samples, at least
SAMPLING_SHARE = 0.1  # of one core, at most: PSS walks the page tables (70 ms for 2 GB)


def _parents() -> dict[int, int]:
    """Every process's parent, read from /proc/<pid>/stat (this kernel may lack task/*/children)."""
    parents = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # the fields after the command (which may hold spaces and parentheses): state, ppid, …
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # ended meanwhile
            continue
    return parents


def _pss_bytes(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def tree_pss_bytes(root: int) -> int:
    """The summed PSS of `root` and every process below it, now."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += _pss_bytes(pid)
        pending.extend(children.get(pid, ()))
    return total


class TreePeak:
    """Sample a process tree's summed PSS on a thread until `stop`; `peak_bytes` is the largest seen."""

    def __init__(self, root: int, interval: float = INTERVAL) -> None:
        self.root = root
        self.interval = interval
        self.peak_bytes = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tree-peak", daemon=True)

    @staticmethod
    def available() -> bool:
        return (PROC / "self" / "smaps_rollup").exists()

    def start(self) -> TreePeak:
        if self.available():
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stopped.is_set():
            started = time.perf_counter()
            self.peak_bytes = max(self.peak_bytes, tree_pss_bytes(self.root))
            cost = time.perf_counter() - started  # so the sampling takes little from the run it measures
            self._stopped.wait(max(self.interval, cost * (1 - SAMPLING_SHARE) / SAMPLING_SHARE))

    def stop(self) -> int:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.peak_bytes
