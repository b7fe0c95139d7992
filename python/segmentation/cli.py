"""Command line: a thin shell that parses arguments and calls the package.

Every user-caused problem surfaces as one line `error: …` and exit code 2; the
Makefile calls one sub-command per pipeline step.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .config import load_settings
from .errors import ToolFailed, UserError

log = logging.getLogger("segmentation")


def _cmd_generate(args: argparse.Namespace) -> None:
    if args.shape != "default":
        from .shapes import generate_shape

        if args.labels:
            raise UserError(f"--labels is for the default shape only; the {args.shape} shape has no label column.")
        generate_shape(args.shape, Path(args.output), args.rows, args.seed, Path(args.truth) if args.truth else None)
        return
    from .generate import generate

    generate(
        Path(args.output),
        rows=10_000 if args.rows is None else args.rows,
        seed=args.seed,
        truth_path=Path(args.truth) if args.truth else None,
        labels=args.labels,
    )


def _cmd_generate_orders(args: argparse.Namespace) -> None:
    from .orders_gen import write_orders

    write_orders(Path(args.output), args.rows, args.seed, args.shape, Path(args.truth) if args.truth else None)


def _declare(data: str | None, explicit: str | None = None, orders: str | None = None):
    """Validate the run's declaration and write the dbt properties generated from it."""
    from . import dbt_yaml
    from .declaration import find_declaration, load_declaration
    from .orders_ingest import for_run

    settings = load_settings()
    explicit = explicit or os.environ.get("DECLARATION", "").strip() or None
    declaration = load_declaration(find_declaration(settings.dbt_project_dir, data or orders, explicit))
    declaration = for_run(declaration, orders, os.environ.get("AS_OF"))
    dbt_yaml.write(declaration, settings.dbt_project_dir)
    log.debug("declaration: %s", declaration.path)
    return declaration


def _cmd_declare(args: argparse.Namespace) -> None:
    _declare(args.input or os.environ.get("DATA"), orders=args.orders or os.environ.get("ORDERS") or None)


def _cmd_init(args: argparse.Namespace) -> None:
    from .starter import init_declaration

    if not args.input and not args.orders:
        raise UserError("init needs a file: DATA=customers.csv, ORDERS=order_lines.csv, or both.")
    output = Path(args.output) if args.output else None
    if args.orders:
        from .orders_starter import init_orders_declaration

        customers = Path(args.input) if args.input else None
        path, decisions = init_orders_declaration(Path(args.orders), customers, output, args.force)
    else:
        path, decisions = init_declaration(Path(args.input), output, args.force)
    for decision in decisions:
        log.info("%s", decision)
    if os.environ.get("ENGINE", "duckdb").strip() != "spark":
        _parse_declared(path, args.input, args.orders)
    shown = os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else path
    given = " ".join(f"{key}={value}" for key, value in (("DATA", args.input), ("ORDERS", args.orders)) if value)
    log.info("wrote %s: review it, then: make all %s", shown, given)


def _parse_declared(path: Path, data: str | None, orders: str | None) -> None:
    """dbt parses the project generated from the new declaration: a starter that dbt would
    refuse is reported now, and the first `make all` starts from dbt's saved parse (set-up
    done here rather than in the run: a second and a half of a small file's run)."""
    from .run_all import Dbt
    from .runs import project_turn

    log.info("checking the declaration with dbt parse")
    with project_turn():  # the generated dbt files are the checkout's: not under another run
        _declare(data, explicit=str(path), orders=orders)
        Dbt(load_settings()).parse()


def _cmd_ingest(args: argparse.Namespace) -> None:
    ingest_files(args.input, args.orders, args.declaration_of)


def ingest_files(data: str | None, orders: str | None, declaration_of: str | None = None) -> None:
    """Check the declaration and the input files, load them into raw.customers and raw.orders."""
    from .ingest import load_raw_file
    from .orders_ingest import load_orders, orders_only_customers
    from .warehouse import connect

    explicit = None
    if declaration_of:  # scoring: clean the new file as the model's own data were
        from .declaration import declaration_of as declared

        explicit = declared(Path(declaration_of))
    if not data and not orders:
        raise UserError("no input file given: set DATA=customers.csv, ORDERS=order_lines.csv, or both.")
    declaration = _declare(data, explicit, orders)
    if data and not declaration.spec.get("customer_table", True):
        raise UserError(f"{declaration.path} declares order lines only: leave DATA= out, or declare its columns.")
    with connect(load_settings().warehouse) as con:
        load_orders(con, declaration, Path(orders) if orders else None)
        if not data:
            orders_only_customers(con, declaration)
            return
        load_raw_file(
            con,
            Path(data),
            declaration.file_columns(required=True),
            optional=declaration.file_columns(required=False),
            declaration=str(declaration.path),
        )


def _cmd_check_quality(args: argparse.Namespace) -> None:
    from .quality import check_quality

    check_quality(load_settings().warehouse)


def _cmd_segment(args: argparse.Namespace) -> None:
    from .pipeline import run_segmentation

    run_segmentation(load_settings())


def _cmd_spark(args: argparse.Namespace) -> None:
    from .spark.run import run_on_spark

    run_on_spark(load_settings(), order_lines=bool(args.orders or os.environ.get("ORDERS")))


def _cmd_check_java(args: argparse.Namespace) -> None:
    from .spark.session import check_java

    check_java()


def _cmd_score(args: argparse.Namespace) -> None:
    from .scoring import score_customers

    score_customers(load_settings(), Path(args.features_warehouse).resolve(), Path(args.manifest).resolve())


PANGO_ADVICE = (
    "WeasyPrint cannot load the Pango library, which it needs to lay out the PDF. Install it, e.g. on "
    "Debian/Ubuntu: sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"
)


def _cmd_report(args: argparse.Namespace) -> None:
    from .export import ASSIGNMENTS_FILENAME

    try:
        from .report import HTML_FILENAME, render_report
    except OSError as error:  # cffi's dlopen of libpango/libgobject failed
        raise UserError(f"{PANGO_ADVICE} ({error})") from None

    settings = load_settings()
    lang = args.lang or os.environ.get("REPORT_LANG") or "en"
    pdf = render_report(settings.warehouse, settings.output_dir, lang=lang)
    log.info("report written: %s (beside it: %s, %s)", pdf, HTML_FILENAME, ASSIGNMENTS_FILENAME)


def _cmd_run(args: argparse.Namespace) -> None:
    from .run_all import run_pipeline

    # WeasyPrint's system libraries are checked by the process that renders the report, as it
    # imports them while dbt runs, before the first step that needs them (`run_all._in_worker`)
    lang = args.lang or os.environ.get("REPORT_LANG") or "en"
    run_pipeline(Path(args.warehouse).resolve(), args.input, args.orders, lang)


def _cmd_exclusive(args: argparse.Namespace) -> None:
    from .runs import run_exclusively

    command = [part for part in args.command_line if part != "--"]
    if not command:
        raise UserError("exclusive needs a command to run, e.g. exclusive -- make pipeline")
    code = run_exclusively(Path(args.warehouse).resolve(), command)
    if code:
        raise SystemExit(code)


def _cmd_begin(args: argparse.Namespace) -> None:
    from .runs import begin

    begin(Path(args.warehouse).resolve())


def _cmd_publish(args: argparse.Namespace) -> None:
    from .runs import publish

    publish(Path(args.warehouse).resolve())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segmentation", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write the seeded synthetic customer export")
    generate.add_argument("output", help="file to write (.csv or .parquet)")
    generate.add_argument("--rows", type=int, help="rows to write (default 10000; a shape's own default)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--truth", help="also write the planted segment of each customer to this file")
    generate.add_argument(
        "--labels", action="store_true", help="add a company-style Segmentation column (A-D) from the planted personas"
    )
    generate.add_argument(
        "--shape",
        default="default",
        choices=["default", "retail", "tiny", "services_fr", "mall"],
        help="table to write: the default export, or another shape to try init on",
    )
    generate.set_defaults(func=_cmd_generate)

    orders = commands.add_parser("generate-orders", help="write seeded order lines (the default customers' or a shape)")
    orders.add_argument("output", help="file to write (.csv or .parquet)")
    orders.add_argument("--rows", type=int, help="default shape: the customer export's rows; online_retail: customers")
    orders.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    orders.add_argument("--shape", default="default", choices=["default", "online_retail"], help="which order lines")
    orders.add_argument("--truth", help="online_retail: also write each customer's planted group to this file")
    orders.set_defaults(func=_cmd_generate_orders)

    declare = commands.add_parser(
        "declare", help="validate the table declaration (DECLARATION=, else by the file's name) and generate dbt's YAML"
    )
    declare.add_argument("input", nargs="?", help="the input file the declaration is for (default: DATA)")
    declare.add_argument("--orders", help="the order lines file (default: ORDERS)")
    declare.set_defaults(func=_cmd_declare)

    init = commands.add_parser(
        "init", help="profile a customer file and write its starter declaration (dbt_project/declarations/<stem>.yml)"
    )
    init.add_argument("input", nargs="?", help="customer export (.csv or .parquet)")
    init.add_argument("--orders", help="order lines (.csv or .parquet): adds the orders section")
    init.add_argument("--output", help="declaration to write (default dbt_project/declarations/<file stem>.yml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing declaration")
    init.set_defaults(func=_cmd_init)

    ingest = commands.add_parser(
        "ingest",
        help="check the input file and load it, as text, into raw.customers (CSV_SEP, CSV_ENCODING override detection)",
    )
    ingest.add_argument("input", nargs="?", help="customer export (.csv or .parquet)")
    ingest.add_argument("--orders", help="order lines (.csv or .parquet), loaded into raw.orders")
    ingest.add_argument("--declaration-of", help="use the declaration the data of this (published) warehouse had")
    ingest.set_defaults(func=_cmd_ingest)

    quality = commands.add_parser(
        "check-quality", help="stop when more than MAX_QUARANTINE_SHARE (default 0.20) of the rows were quarantined"
    )
    quality.set_defaults(func=_cmd_check_quality)

    segment = commands.add_parser("segment", help="cluster the customer_features mart and write segments back")
    segment.set_defaults(func=_cmd_segment)

    spark = commands.add_parser(
        "spark",
        help="ENGINE=spark: dbt, quality check, segments (latent class model by default; ALGO=kmeans: "
        "MLlib K-Means) and profiles on Spark, in one process",
    )
    spark.add_argument(
        "--orders", help="the order lines file the run loaded (default: ORDERS); without, no order model"
    )
    spark.set_defaults(func=_cmd_spark)
    check_java = commands.add_parser("check-java", help="ENGINE=spark: check that Java 17 or newer is installed")
    check_java.set_defaults(func=_cmd_check_java)

    score = commands.add_parser("score", help="assign segments to a cleaned new file with the latest saved model")
    score.add_argument("features_warehouse", help="warehouse holding the new file's customer_features mart")
    score.add_argument("manifest", help="dbt manifest.json of that build (gives the mart's contract)")
    score.set_defaults(func=_cmd_score)

    report = commands.add_parser("report", help="render the persona report (PDF)")
    report.add_argument("--lang", choices=["en", "fr"], help="report language (default: REPORT_LANG or en)")
    report.set_defaults(func=_cmd_report)
    run = commands.add_parser(
        "run", help="`make all` in one process: begin, ingest, dbt, quality, segment, profiles, publish, report"
    )
    run.add_argument("warehouse", help="published warehouse file")
    run.add_argument("input", nargs="?", help="customer export (.csv or .parquet)")
    run.add_argument("--orders", help="order lines (.csv or .parquet)")
    run.add_argument("--lang", choices=["en", "fr"], help="report language (default: REPORT_LANG or en)")
    run.set_defaults(func=_cmd_run)

    exclusive = commands.add_parser("exclusive", help="run a command holding the warehouse's lock (one run at a time)")
    exclusive.add_argument("warehouse", help="published warehouse file")
    exclusive.add_argument("command_line", nargs=argparse.REMAINDER, help="-- command and arguments")
    exclusive.set_defaults(func=_cmd_exclusive)

    begin = commands.add_parser("begin", help="start the run's working copy of the warehouse")
    begin.add_argument("warehouse", help="published warehouse file")
    begin.set_defaults(func=_cmd_begin)

    publish = commands.add_parser("publish", help="atomically replace the warehouse by the finished working copy")
    publish.add_argument("warehouse", help="published warehouse file")
    publish.set_defaults(func=_cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("fontTools", "weasyprint", "weasyprint.progress", "matplotlib", "numba", "openTSNE"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # WeasyPrint repeats this once per font and page when the optional system library
    # is absent; the PDF is the same, and the README names the package to install.
    logging.getLogger("weasyprint").addFilter(lambda record: "HarfBuzz-Subset" not in record.getMessage())
    try:
        args.func(args)
    except UserError as exc:
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)  # one line, whatever the data
        return 2
    except ToolFailed as exc:
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; the warehouse keeps its previous complete results.", file=sys.stderr)
        return 130
    return 0
