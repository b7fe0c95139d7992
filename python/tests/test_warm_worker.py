"""The warm worker: steps run in a forked process that imported their libraries beforehand.

Real processes: the worker is forked, steps run in it and their results or errors come back
as if run here; a worker that dies is one clear failure, and a worker outlives no parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from segmentation.errors import ToolFailed, UserError
from segmentation.warm_worker import WarmWorker


def _where_and_env(name: str) -> tuple[int, str | None, bool]:
    return os.getpid(), os.environ.get(name), "json" in sys.modules


def _refuse(message: str) -> None:
    raise UserError(message)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_steps_run_in_one_warm_child_with_the_environment_given() -> None:
    worker = WarmWorker(modules=("json",)).start()
    try:
        assert worker.warmed() is None
        first = worker.run("first", _where_and_env, "WARM_WORKER_TEST", environment={"WARM_WORKER_TEST": "a"})
        second = worker.run("second", _where_and_env, "WARM_WORKER_TEST")
    finally:
        worker.close()
    assert first[0] != os.getpid() and first[0] == second[0]  # one child, not this process
    assert first[1:] == ("a", True) and second[1] == "a"  # the environment stays for later steps
    assert "WARM_WORKER_TEST" not in os.environ


def test_a_user_error_in_the_child_is_raised_here_as_itself() -> None:
    worker = WarmWorker(modules=()).start()
    try:
        with pytest.raises(UserError, match=r"^the file is empty: give one with rows$"):
            worker.run("segment", _refuse, "the file is empty: give one with rows")
    finally:
        worker.close()


def test_a_child_that_dies_is_one_clear_failure() -> None:
    worker = WarmWorker(modules=()).start()
    try:
        with pytest.raises(ToolFailed, match="the segment step's process ended abruptly"):
            worker.run("segment", _die)
    finally:
        worker.close()


def test_a_system_library_that_cannot_load_is_reported_by_the_warm_up(tmp_path, monkeypatch) -> None:
    (tmp_path / "needs_pango_for_test.py").write_text("raise OSError(\"cannot load library 'libpango-1.0-0'\")\n")
    (tmp_path / "broken_for_test.py").write_text("raise ImportError('a broken install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for modules, expected in (
        (("json", "needs_pango_for_test"), "cannot load library 'libpango-1.0-0'"),
        (("broken_for_test",), None),  # not a system library: left to the step that imports it, which fails loudly
    ):
        worker = WarmWorker(modules=modules).start()
        try:
            assert worker.warmed() == expected
        finally:
            worker.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_the_child_dies_with_its_parent() -> None:
    """kill -9 of the run alone (not its process group) must not leave a step running on."""
    script = textwrap.dedent(
        """
        import sys, time
        from segmentation.warm_worker import WarmWorker
        worker = WarmWorker(modules=()).start()
        worker.warmed()
        print(worker._pool._processes and next(iter(worker._pool._processes)), flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):  # killed, not yet reaped by its new parent
            return
        time.sleep(0.05)
    pytest.fail(f"the worker {child} outlived its parent")


def _heed_ctrl_c() -> None:
    """In the child before it starts: Ctrl-C at its default (a shell's background job, as a CI
    runner may start the suite, ignores it, and Python would then keep ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_step_stops_the_worker_at_once_without_a_traceback() -> None:
    """Ctrl-C reaches the whole process group: the run stops now (not after the worker's step),
    and only the parent speaks."""
    script = textwrap.dedent(
        """
        import sys, time
        from segmentation.warm_worker import WarmWorker
        worker = WarmWorker(modules=()).start()
        worker.warmed()
        print("started", flush=True)
        try:
            worker.run("segment", time.sleep, 60)
        except KeyboardInterrupt:
            worker.close(stop=True)
            print("interrupted", flush=True)
            sys.exit(130)
        """
    )
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    run = subprocess.Popen(
        [sys.executable, "-c", script], **pipes, text=True, start_new_session=True, preexec_fn=_heed_ctrl_c
    )
    assert run.stdout.readline().strip() == "started"
    time.sleep(0.5)
    started = time.monotonic()
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130 and out.strip() == "interrupted"
    assert time.monotonic() - started < 10
    assert "Traceback" not in err, err
