"""The Spark session: Java checked first, every path under the run's directory, ANSI off.

One session serves dbt (dbt-spark's `method: session` reuses the process's session) and
the MLlib fits. Locally it is `local[*]` (SPARK_MASTER overrides) with the in-memory
catalog and a fresh warehouse directory per run, so no Derby metastore or
`spark-warehouse/` lands in the working directory; `SPARK_REMOTE=sc://host:15002` connects
to a cluster through Spark Connect instead.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from ..errors import UserError

log = logging.getLogger(__name__)

JAVA_ADVICE = (
    "install Java 17 or newer, e.g. on Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless "
    "(or set JAVA_HOME), or run with ENGINE=duckdb."
)
MIN_JAVA = 17
# dbt-spark's session turns ANSI mode off; the session dbt shares must behave the same
SESSION_CONF = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": os.environ.get("SPARK_SHUFFLE_PARTITIONS", "").strip() or "4",
}


def remote_url() -> str | None:
    return os.environ.get("SPARK_REMOTE", "").strip() or None


def java_version(java: str | None = None) -> int | None:
    """Major version of the `java` on JAVA_HOME or PATH, None when there is none."""
    if java is None:
        home = os.environ.get("JAVA_HOME", "").strip()
        java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return None
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_java() -> None:
    """Spark 4 needs Java 17+; say so in one line before the JVM fails in fifty."""
    if (remote_url() or "").startswith("sc://"):  # the cluster runs the JVM
        return
    version = java_version()
    if version is None:
        raise UserError(f"ENGINE=spark needs Java, which was not found: {JAVA_ADVICE}")
    if version < MIN_JAVA:
        raise UserError(f"ENGINE=spark needs Java {MIN_JAVA} or newer (found Java {version}): {JAVA_ADVICE}")


def check_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise UserError(
            "ENGINE=spark needs PySpark and dbt-spark: .venv/bin/pip install -r requirements-spark.txt "
            "(make does it when ENGINE=spark is given)."
        ) from None


def start_session(work_dir: Path, app_name: str = "customer-segmentation"):
    """A session whose warehouse, metastore and scratch files all live under `work_dir` (made fresh)."""
    check_pyspark()
    check_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    remote = remote_url()
    # the JVM runs here: local[*], or a Spark Connect server started in this process (SPARK_REMOTE=local[2])
    local = not (remote or "").startswith("sc://")
    if remote:
        log.info("Spark Connect: %s", remote)
        builder = builder.remote(remote)
        # dbt-spark asks every statement's session for Hive support: a static setting, which Spark
        # Connect declines with a warning per statement; the session's catalog serves dbt as it is
        warnings.filterwarnings("ignore", message="Failed to set spark.sql.catalogImplementation")
    else:
        os.environ.pop("SPARK_REMOTE", None)  # an empty value still makes PySpark refuse a master
        builder = builder.master(os.environ.get("SPARK_MASTER", "").strip() or "local[*]")
    if local:
        if work_dir.exists():
            shutil.rmtree(work_dir)
        (work_dir / "tmp").mkdir(parents=True)
        # the workers' Python (mapInArrow scoring) is this process's, with its numpy and scikit-learn
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        java_options = f"-Dderby.system.home={work_dir / 'derby'} -Djava.io.tmpdir={work_dir / 'tmp'}"
        builder = (
            builder.config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.warehouse.dir", str(work_dir / "warehouse"))
            .config("spark.local.dir", str(work_dir / "tmp"))
            .config("spark.driver.extraJavaOptions", java_options)
            .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "").strip() or "2g")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
        )
        log.info("Spark %s, warehouse %s", remote or "local", work_dir / "warehouse")
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not remote:
        session.sparkContext.setLogLevel("ERROR")
    return session
