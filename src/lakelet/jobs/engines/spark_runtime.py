"""The jars Spark needs for Lakelet's catalog, found or built offline.

Spark reads the catalog through Iceberg's Spark runtime and its JDBC catalog. The
runtime for Spark 3.5 ships in the ``snowpark-connect-deps-iceberg`` wheel, but without
the shaded Jackson classes it was built against; they are rebuilt here from pyspark's
own Jackson jars with jarjar (Debian's ``libjarjar-java``), and the completed jar is
kept in a cache folder, so the build runs once per machine. JDBC drivers come from
Debian's ``libxerial-sqlite-jdbc-java`` and ``libpostgresql-jdbc-java``.

``python -m lakelet.jobs.engines.spark_runtime`` builds the jar (``make spark``) and
prints its path.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

from lakelet.errors import MissingExtraError, UserError

ICEBERG_RUNTIME = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
ICEBERG_PACKAGE = "snowpark-connect-deps-iceberg"
ICEBERG_MODULE = "snowpark_connect_deps_iceberg"
JACKSON_ARTIFACTS = ("jackson-core", "jackson-databind", "jackson-annotations")
SHADED_PREFIX = "org/apache/iceberg/shaded/com/fasterxml/jackson/"
SHADE_RULE = "rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1\n"
PROBE_CLASS = SHADED_PREFIX + "databind/ObjectMapper.class"
JARJAR_MAIN = "com.tonicsystems.jarjar.Main"
JARJAR_JARS = ("jarjar.jar", "asm.jar", "asm-commons.jar", "asm-tree.jar")
JAVA_DIRS = (Path("/usr/share/java"),)
JDBC_DRIVERS = {
    "sqlite": ("sqlite-jdbc.jar", "libxerial-sqlite-jdbc-java"),
    "postgresql": ("postgresql.jar", "libpostgresql-jdbc-java"),
}
CACHE_ENV = "LAKELET_SPARK_CACHE"


class SparkSetupError(UserError):
    """Something the Spark engine needs on this machine is missing; says what to install."""


def cache_dir() -> Path:
    """``$LAKELET_SPARK_CACHE``, else ``$XDG_CACHE_HOME/lakelet/spark`` (``~/.cache``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lakelet" / "spark"


def java_binary() -> str:
    """The ``java`` Spark will start: ``$JAVA_HOME/bin/java``, else the one on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise SparkSetupError(
            "the Spark engine needs Java 17: install it with "
            "`apt-get install default-jre-headless` (or `make system-deps`), "
            "or set JAVA_HOME to a Java 17 installation"
        )
    return found


def pyspark_jars_dir() -> Path:
    spec = find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("pyspark", "spark", "the Spark engine")
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def iceberg_source_jar() -> Path:
    """The runtime jar as the pip package ships it (without shaded Jackson)."""
    spec = find_spec(ICEBERG_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(ICEBERG_PACKAGE, "spark", "the Spark engine's Iceberg runtime")
    path = Path(next(iter(spec.submodule_search_locations))) / "jars" / ICEBERG_RUNTIME
    if not path.is_file():
        raise SparkSetupError(
            f"{ICEBERG_PACKAGE} has no {ICEBERG_RUNTIME}; reinstall lakelet[spark]"
        )
    return path


def jackson_jars(jars_dir: Path) -> list[Path]:
    """pyspark's Jackson jars, one per artifact, all of one version."""
    found = []
    for artifact in JACKSON_ARTIFACTS:
        matches = sorted(jars_dir.glob(f"{artifact}-[0-9]*.jar"))
        if not matches:
            raise SparkSetupError(f"no {artifact}-*.jar in {jars_dir}; reinstall pyspark")
        found.append(matches[-1])
    return found


def runtime_jar_name(jackson: Sequence[Path]) -> str:
    version = re.sub(r"^jackson-core-|\.jar$", "", jackson[0].name)
    return ICEBERG_RUNTIME.replace(".jar", f"-jackson-{version}.jar")


def iceberg_runtime_jar(
    cache: Path | None = None,
    *,
    java_dirs: Sequence[Path] = JAVA_DIRS,
    pyspark_jars: Path | None = None,
    force: bool = False,
) -> Path:
    """The completed Iceberg runtime jar, built into ``cache`` unless already there."""
    cache = cache or cache_dir()
    jackson = jackson_jars(pyspark_jars or pyspark_jars_dir())
    target = cache / runtime_jar_name(jackson)
    if target.is_file() and not force:
        return target
    jarjar = _jarjar_classpath(java_dirs)
    java = java_binary()
    source = iceberg_source_jar()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakelet-jarjar-", dir=cache) as tmp:
        work = Path(tmp)
        merged, shaded, rules = work / "jackson.jar", work / "shaded.jar", work / "rules.txt"
        _merge_classes(jackson, merged)
        rules.write_text(SHADE_RULE, encoding="utf-8")
        command = [java, "-cp", jarjar, JARJAR_MAIN, "process", str(rules), str(merged)]
        done = subprocess.run([*command, str(shaded)], capture_output=True, text=True)
        if done.returncode != 0 or not shaded.is_file():
            raise SparkSetupError(
                f"jarjar could not shade Jackson for the Iceberg runtime: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        partial = work / target.name
        shutil.copyfile(source, partial)
        _add_shaded_classes(shaded, partial)
        os.replace(partial, target)  # atomic: a concurrent build leaves one whole jar
    return target


LOG_CONFIG = """\
# Lakelet's Spark driver log: errors only, so a run's output is not buried in JVM noise.
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def log_config(cache: Path | None = None) -> Path:
    """A log4j2 file for the Spark driver that keeps only errors (written once)."""
    path = (cache or cache_dir()) / "log4j2.properties"
    if not path.is_file() or path.read_text(encoding="utf-8") != LOG_CONFIG:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(LOG_CONFIG, encoding="utf-8")
        os.replace(partial, path)
    return path


def jdbc_driver_jar(kind: str, *, java_dirs: Sequence[Path] = JAVA_DIRS) -> Path:
    """The JDBC driver for a ``sqlite`` or ``postgresql`` catalog."""
    jar, package = JDBC_DRIVERS[kind]
    for folder in java_dirs:
        if (folder / jar).is_file():
            return folder / jar
    raise SparkSetupError(
        f"the Spark engine reads a {kind} catalog through a JDBC driver: install it with "
        f"`apt-get install {package}` (or `make system-deps`), or list its jar in "
        "[spark] jars"
    )


def _jarjar_classpath(java_dirs: Sequence[Path]) -> str:
    paths = []
    for jar in JARJAR_JARS:
        found = next((d / jar for d in java_dirs if (d / jar).is_file()), None)
        if found is None:
            raise SparkSetupError(
                f"building the Iceberg runtime for Spark needs jarjar and ASM ({jar} not found "
                f"in {', '.join(map(str, java_dirs))}): install them with "
                "`apt-get install libjarjar-java libasm-java` (or `make system-deps`)"
            )
        paths.append(str(found))
    return os.pathsep.join(paths)


def _merge_classes(jars: Sequence[Path], target: Path) -> None:
    """One jar holding the classes of ``jars`` (jarjar processes a single input)."""
    seen: set[str] = set()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for jar in jars:
            with zipfile.ZipFile(jar) as src:
                for info in src.infolist():
                    name = info.filename
                    if info.is_dir() or name in seen or not name.startswith("com/"):
                        continue  # manifests, services and module-info stay out
                    seen.add(name)
                    out.writestr(info, src.read(info))


def _add_shaded_classes(shaded: Path, runtime: Path) -> None:
    with zipfile.ZipFile(runtime, "a", zipfile.ZIP_DEFLATED) as out, zipfile.ZipFile(shaded) as src:
        present = set(out.namelist())
        for info in src.infolist():
            if info.filename.startswith(SHADED_PREFIX) and info.filename not in present:
                out.writestr(info, src.read(info))
        if PROBE_CLASS not in out.namelist():
            raise SparkSetupError(f"shading Jackson produced no {PROBE_CLASS}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lakelet.jobs.engines.spark_runtime",
        description="Build the Iceberg runtime jar for Lakelet's Spark engine (offline).",
    )
    parser.add_argument("--cache", type=Path, help=f"where to keep it (default: {cache_dir()})")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    try:
        print(iceberg_runtime_jar(args.cache, force=args.force))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
