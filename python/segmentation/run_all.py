"""`python -m segmentation run`: `make all`'s steps in one process (DuckDB engine).

The steps are the same modules the Makefile's targets call one by one, with the same
arguments and guarantees: the warehouse's lock for the whole run, a working copy that is
published only when every step has succeeded, and the report rendered from the published
warehouse. What one process saves is start-up: one interpreter and its imports instead of
eight, and dbt through its programmatic runner, parsed once, the manifest kept in memory
for both builds. dbt's own imports (a second and a half) start on a thread with the run, and
the parse follows on it while the inputs load. The declaration, the load, the segment step and
the report run in a second process forked at the start (`warm_worker`): there the load's Python
does not take turns with dbt's on this process's lock, so on two cores the first build starts
as soon as the manifest is ready; then the worker imports the segment step's and the report's
libraries (two seconds), on the core that dbt's parse and build (Python, one core) leave
idle. dbt's artefacts (manifest.json,
run_results.json) are written while the report renders: the segment step takes the mart's
contract from the manifest in memory. The marts only the report reads from the declaration
are built with the profiles.
In the segment step the worker forks a process of its own (`warm_worker.side_process`, warm
with its imports), where K-Means chooses its k while the worker fits the latent class model
(on threads of one process they shared Python's lock: a third longer in all), and which then
computes the 2-D maps (PCA, t-SNE) while the step ends and dbt builds the profiles (which do
not read them); they are written to the working copy after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import Settings, load_settings
from .errors import ToolFailed, UserError
from .warm_worker import WarmWorker, side_process

log = logging.getLogger(__name__)

# The descriptive marts only the report reads (the declaration's labels and levels): built with the
# profiles, beside the 2-D maps, rather than ahead of the segment step, whose build they started
# first (dbt starts tied nodes in name order) and slowed by a fifth of a second.
REPORT_CATALOGS = ("feature_catalog", "feature_levels")
# dbt's artefacts (manifest.json, run_results.json: 0.5 s of JSON) are written by `Dbt.write_artifacts`,
# while the report is rendered: the segment step takes the contract from the manifest in memory;
# run_results.json holds both builds' results
MART_BUILD = ("--exclude", "source:segmentation+", *REPORT_CATALOGS, "--no-write-json")
PROFILES_BUILD = ("--select", "source:segmentation+", *REPORT_CATALOGS, "--no-write-json")


@contextmanager
def step(title: str, key: str, timings: dict[str, float]) -> Iterator[None]:
    """The Makefile's `==>` banner, then the step's duration (and kept for the closing summary)."""
    sys.stderr.flush()
    sys.stdout.write(f"\n\033[1m==> {title}\033[0m\n")
    sys.stdout.flush()
    started = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - started
    log.info("%s done in %.1f s", key, timings[key])


class Dbt:
    """dbt-duckdb in this process: one parse, then builds that reuse its manifest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.manifest = None
        self._parsing: threading.Thread | None = None
        self._parse_error: BaseException | None = None
        self._importing: threading.Thread | None = None
        self._unwritten = None  # the builds' results, while their artefacts are not written yet
        self._writing = threading.Lock()

    def _invoke(self, command: list[str], what: str, defer_artifacts: bool = False):
        from dbt.cli.main import dbtRunner

        profiles = os.environ.get("DBT_PROFILES_DIR") or str(self.settings.dbt_project_dir)
        where = ["--project-dir", str(self.settings.dbt_project_dir), "--profiles-dir", profiles]
        try:
            result = dbtRunner(manifest=self.manifest).invoke([*command, *where])
        finally:
            release_warehouse(self.settings.warehouse)
        if defer_artifacts and result.result is not None:
            self._unwritten = result.result if self._unwritten is None else _merged(self._unwritten, result.result)
        if isinstance(result.exception, KeyboardInterrupt):
            raise KeyboardInterrupt
        if not result.success:
            self.write_artifacts()  # what failed is in run_results.json, as after `make mart`
            raise ToolFailed(
                f"dbt {what} failed: see the messages above and {self.settings.dbt_target_dir / 'logs' / 'dbt.log'}; "
                "the published results are unchanged."
            )
        return result

    def parse(self) -> None:
        # the build writes manifest.json (what Python reads); the parse need not write it first
        self.manifest = self._invoke(["parse", "--quiet", "--no-write-json"], "parse").result

    def import_in_background(self) -> None:
        """Import dbt (a second and a half of Python) on a thread now, while the run starts and the
        declaration is written: the parse, which needs the declaration, then finds it imported."""
        if self._importing is None:
            importing = threading.Thread(target=importlib.import_module, args=("dbt.cli.main",), name="dbt-import")
            importing.start()
            self._importing = importing

    def parse_in_background(self) -> None:
        """Start the parse on a thread; the first build waits for it (and raises its error).

        The parse reads the project's files only (the generated declaration files must be
        written already) and never opens the warehouse, so the load can go on meanwhile.
        """

        def parse() -> None:
            try:
                self.parse()
            except BaseException as error:  # handed to the build, in the main thread
                self._parse_error = error

        self._parsing = threading.Thread(target=parse, name="dbt-parse")
        self._parsing.start()

    def wait_for_parse(self, raise_error: bool = True) -> None:
        """Join the background parse (a run that failed before its build still waits for
        it, so that nothing writes dbt's files once the run has let go of its lock)."""
        if self._importing is not None:  # a run that failed before its parse: nothing imports on at its end
            self._importing.join()
        if self._parsing is None:
            return
        self._parsing.join()
        self._parsing = None
        error, self._parse_error = self._parse_error, None
        if error is not None and raise_error:
            raise error

    def build(self, *args: str, defer_artifacts: bool = False) -> None:
        """`dbt build` with `args`; with `defer_artifacts` (and `--no-write-json` among them), the
        artefacts dbt would have written are written by `write_artifacts`, later."""
        self.wait_for_parse()
        if self.manifest is None:
            self.parse()
        command = ["build", "--exclude-resource-type", "unit_test", *args]
        self._invoke(command, f"build {' '.join(args)}", defer_artifacts)

    def write_artifacts(self) -> None:
        """Write what a deferred build left unwritten: manifest.json (with semantic_manifest.json)
        and run_results.json, the files dbt itself writes at the end of `dbt build`."""
        from dbt.parser.manifest import write_manifest

        with self._writing:
            result, self._unwritten = self._unwritten, None
            if result is None:
                return
            target = str(self.settings.dbt_target_dir)
            write_manifest(self.manifest, target)
            result.write(os.path.join(target, "run_results.json"))

    def contract(self):
        """The feature mart's contract, from the manifest in memory."""
        from .contract import contract_from_manifest

        return contract_from_manifest(self.manifest)


def _merged(first, second):
    """One run's results from two builds' (dbt's RunExecutionResult), for one run_results.json."""
    return dataclasses.replace(
        first, results=[*first.results, *second.results], elapsed_time=first.elapsed_time + second.elapsed_time
    )


def release_warehouse(warehouse: Path) -> None:
    """Make dbt-duckdb let go of the warehouse file, so that the next step can open it read-write.

    dbt-duckdb keeps one DuckDB database per process (its connection manager's environment);
    it is closed here, and dropped, so the next build opens a fresh one.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None and getattr(environment, "conn", None) is not None:
            environment.close()
    DuckDBConnectionManager.close_all_connections()


def _check_openable(warehouse: Path) -> None:
    from .warehouse import connect

    with connect(warehouse):
        pass


def run_pipeline(warehouse: Path, data: str | None, orders: str | None, lang: str) -> None:
    """begin → ingest → dbt mart → quality → segment → dbt profiles → publish → report, holding the lock."""
    from .runs import exclusive

    timings: dict[str, float] = {}
    started = time.perf_counter()
    worker = WarmWorker(then=_warm_report).start()  # before the lock and any thread: the child holds neither
    try:
        with exclusive(warehouse):
            _run_steps(warehouse, data, orders, lang, worker, timings)
    except BaseException:
        worker.close(stop=True)  # e.g. Ctrl-C during the segment step: not after it
        raise
    worker.close()
    summary = ", ".join(f"{key} {seconds:.1f} s" for key, seconds in timings.items())
    log.info("all steps done in %.1f s (%s)", time.perf_counter() - started, summary)


def _run_steps(
    warehouse: Path, data: str | None, orders: str | None, lang: str, worker: WarmWorker, timings: dict[str, float]
) -> None:
    from .runs import build_path

    build = build_path(warehouse)
    os.environ["SEGMENTATION_WAREHOUSE"] = str(build)  # dbt's profile reads it too
    settings = load_settings()
    dbt = Dbt(settings)
    dbt.import_in_background()
    inputs = " ".join(name for name in (data, orders) if name)
    steps: list[tuple[str, str, Callable[[], object]]] = [
        ("begin", f"Starting a working copy of {warehouse}", lambda: _begin(warehouse)),
        ("ingest", f"Loading {inputs} into {warehouse}", lambda: _ingest(dbt, data, orders, worker)),
        ("mart", "dbt build: staging → intermediate → marts (tests included)", lambda: _dbt_mart(dbt, build, orders)),
        ("quality", f"Checking the share of quarantined rows (at most {_max_share()})", lambda: _quality(settings)),
        ("segment", "Clustering customers", lambda: _in_worker(worker, "segment", _segment, settings, dbt.contract())),
        ("profiles", "dbt build: segment profiles", lambda: _dbt_profiles(dbt, build)),
        (
            "maps",
            "Writing the 2-D maps (computed while dbt built the profiles)",
            lambda: _in_worker(worker, "maps", _write_projection, settings),
        ),
        ("publish", f"Publishing {warehouse}", lambda: _publish(warehouse)),
        (
            "report",
            "Rendering the persona report",
            lambda: _beside_artifacts(dbt, _in_worker, worker, "report", _report, warehouse, settings, lang),
        ),
    ]
    try:
        for key, title, action in steps:
            with step(title, key, timings):
                action()
    finally:
        dbt.wait_for_parse(raise_error=False)
        dbt.write_artifacts()  # a run stopped before its report still leaves them


def _warm_report() -> None:
    """In the worker, after its imports: the report's templates compiled, stylesheet parsed, fonts loaded."""
    from .report import warm_up

    warm_up(load_settings().reports_dir / "templates")


def _in_worker(worker: WarmWorker, what: str, function: Callable[..., object], *args) -> None:
    """Run a step in the warm worker, once its imports are done (and WeasyPrint's libraries load)."""
    problem = worker.warmed()
    if problem is not None:
        from .cli import PANGO_ADVICE

        raise UserError(f"{PANGO_ADVICE} ({problem})")
    worker.run(what, function, *args, environment=_worker_environment())


def _worker_environment() -> dict[str, str]:
    """What the run set after the worker was forked: the working copy's path."""
    return {"SEGMENTATION_WAREHOUSE": os.environ["SEGMENTATION_WAREHOUSE"]}


def _beside_artifacts(dbt: Dbt, function: Callable[..., object], *args) -> None:
    """`function(*args)` while this process writes dbt's artefacts (the worker renders the
    report on one core; this process waits for it, idle)."""
    writing = threading.Thread(target=dbt.write_artifacts, name="dbt-artifacts")
    writing.start()
    try:
        function(*args)
    finally:
        writing.join()


def _max_share() -> str:
    return os.environ.get("MAX_QUARANTINE_SHARE", "").strip() or "0.20"


def _begin(warehouse: Path) -> None:
    from .runs import begin

    begin(warehouse)


def _ingest(dbt: Dbt, data: str | None, orders: str | None, worker: WarmWorker) -> None:
    """The declaration, then the load, in the worker: their Python (the declaration's checks, the
    dialect's sniffing) runs beside dbt's import and parse, not taking turns with them on this
    process's lock (the first build started 0.3 s sooner on the default data). dbt parses once the
    declaration's files are written; the load's errors are raised here, as the step's."""
    worker.run("ingest", _write_declaration, data, orders, environment=_worker_environment())
    dbt.parse_in_background()
    worker.run("ingest", _load_inputs, data, orders, environment=_worker_environment())
    worker.warm()  # the parse, if still going, leaves a core idle; the parse and the load did not


def _write_declaration(data: str | None, orders: str | None) -> None:
    """In the worker: the files dbt parses (`ingest_files` finds them unchanged)."""
    from .cli import _declare

    _declare(data, orders=orders)


def _load_inputs(data: str | None, orders: str | None) -> None:
    """In the worker: the load."""
    from .cli import ingest_files

    ingest_files(data, orders)


def _dbt_mart(dbt: Dbt, build: Path, orders: str | None) -> None:
    """The mart build; without order lines, none of the order models, and no stale one left behind
    (the report and the quality check read them)."""
    from .contract import EXCLUDE_ORDER_LINES, tagged_models
    from .warehouse import drop_relations

    dbt.build(*MART_BUILD, *(() if orders else EXCLUDE_ORDER_LINES), defer_artifacts=True)
    if orders:
        _check_openable(build)
    else:
        drop_relations(build, tagged_models(dbt.manifest.nodes.values()))


def _quality(settings: Settings) -> None:
    from .quality import check_quality

    check_quality(settings.warehouse)


# In the worker: the segment step's 2-D maps, computed on while dbt builds the profiles, in a
# process of the worker's own (where K-Means chose its k beside the latent class model's), which
# lasts from the segment step to the maps'
_projecting = None
_side = contextlib.ExitStack()


def _segment(settings: Settings, contract) -> None:
    global _projecting
    from .pipeline import segment_before_projection

    side_pool = _side.enter_context(side_process())
    try:
        _projecting = segment_before_projection(settings, contract, side_pool)
    except BaseException:
        _side.close()
        raise


def _write_projection(settings: Settings) -> None:
    global _projecting
    from .pipeline import write_projection

    projecting, _projecting = _projecting, None
    with _side:
        write_projection(settings, projecting)


def _dbt_profiles(dbt: Dbt, build: Path) -> None:
    dbt.build(*PROFILES_BUILD, defer_artifacts=True)
    _check_openable(build)


def _publish(warehouse: Path) -> None:
    from .runs import publish

    publish(warehouse)


def _report(warehouse: Path, settings: Settings, lang: str) -> None:
    from .export import ASSIGNMENTS_FILENAME
    from .report import HTML_FILENAME, render_report

    os.environ["SEGMENTATION_WAREHOUSE"] = str(warehouse)  # the report reads the published warehouse
    pdf = render_report(warehouse, settings.output_dir, lang=lang)
    log.info("report written: %s (beside it: %s, %s)", pdf, HTML_FILENAME, ASSIGNMENTS_FILENAME)
