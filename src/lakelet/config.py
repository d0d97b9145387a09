"""Settings: defaults < ``lakelet.toml`` < ``LAKELET__SECTION__KEY`` env < explicit args.

Every section is a frozen dataclass; the loader checks each key and value against it,
so a typo is an error naming the key, the file and the nearest valid key instead of a
setting silently ignored. Named sections (``[crawlers.NAME]``, ``[jobs.NAME]``) map a
name to a section dataclass.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lakelet.errors import ConfigError

CONFIG_FILE = "lakelet.toml"
ENV_PREFIX = "LAKELET__"


@dataclass(frozen=True)
class ProjectSection:
    name: str = "lakelet"


@dataclass(frozen=True)
class LakeSection:
    """Where the lake lives: a folder (relative to the project) or ``s3://bucket/prefix``."""

    root: str = "lake"
    buckets: list[str] = field(default_factory=lambda: ["raw", "curated"])


@dataclass(frozen=True)
class S3Section:
    """S3 connection; unset values fall back to the usual ``AWS_*`` variables."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None


@dataclass(frozen=True)
class CatalogSection:
    """Iceberg SQL catalog: SQLite in ``.lakelet/`` by default, or ``postgresql://``."""

    uri: str = "sqlite:///.lakelet/catalog.db"
    name: str = "lakelet"


@dataclass(frozen=True)
class WarehouseSection:
    uri: str = "duckdb:///.lakelet/warehouse.duckdb"


@dataclass(frozen=True)
class MetadataSection:
    """Runs, events, rejects and crawl state: SQLite by default, or ``postgresql://``."""

    uri: str = "sqlite:///.lakelet/metadata.db"


@dataclass(frozen=True)
class CrawlerSection:
    """A crawler: where it looks, where it registers, and how it treats change.

    ``on_change``: ``update`` (add columns, widen types), ``log`` (report, keep the
    table) or ``fail``; ``on_delete`` (files of a table gone): ``deprecate``, ``delete``
    or ``log``. ``grouping``: ``schema`` (Glue's rule: compatible schemas under a common
    prefix form one table) or ``folder`` (one table per folder at ``table_level``).
    ``classifiers`` names ``[classifiers.NAME]`` sections tried before the built-ins.
    ``statistics``: ``auto`` (exact over up to 256 MB of new data, estimated from
    ``statistics_sample_rows`` sampled rows above it, like Glue's sample size), ``full``
    or ``sample`` (see :mod:`lakelet.crawler.sample`).
    """

    path: str
    database: str = "raw"
    on_arrival: bool = False
    schedule: str | None = None
    exclude: list[str] = field(default_factory=list)
    on_change: Literal["update", "log", "fail"] = "update"
    on_delete: Literal["deprecate", "delete", "log"] = "deprecate"
    grouping: Literal["schema", "folder"] = "schema"
    table_level: int | None = None
    sample_files: int | None = None
    sample_rows: int = 20480
    classifiers: list[str] = field(default_factory=list)
    statistics: Literal["auto", "full", "sample"] = "auto"
    statistics_sample_rows: int = 30_000  # PostgreSQL's ANALYZE default

    def __post_init__(self) -> None:
        _check_range("statistics_sample_rows", self.statistics_sample_rows, 1000, None)


@dataclass(frozen=True)
class ClassifierSection:
    """A custom classifier, tried before the built-in ones.

    ``kind = "delimited"`` fixes delimiter / quote / header (``present``, ``absent`` or
    ``auto``) for matching files; ``kind = "regex"`` or ``"grok"`` parses each line of a
    log with ``pattern`` (named groups / ``%{PATTERN:name}`` become columns).
    ``match`` is a glob on the object key that limits where the classifier applies.
    """

    kind: Literal["delimited", "regex", "grok"]
    classification: str | None = None
    match: str | None = None
    delimiter: str | None = None
    quote: str | None = None
    escape: str | None = None
    header: Literal["present", "absent", "auto"] = "auto"
    pattern: str | None = None
    custom_patterns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityRule:
    """A data-quality rule of a job, in Glue's DQDL (``IsComplete "machine_id"``).

    ``action``: ``warn`` (record only), ``quarantine`` (row rules: failing rows go to
    ``quarantine.<job>``; the default for row rules) or ``fail`` (nothing is written).
    """

    rule: str
    action: Literal["warn", "quarantine", "fail"] | None = None


@dataclass(frozen=True)
class StepSection:
    """One transform step after (or instead of) a job's SQL, as ``[[jobs.NAME.steps]]``.

    Exactly one of ``sql`` (a file; the previous result is the table ``input``),
    ``python`` (``module:function`` taking and returning an Arrow table, or a DuckDB
    relation) or ``builtin`` (``apply_mapping``, ``resolve_choice``, ``flatten``,
    ``dedupe``, ``join``) with its options. ``flatten`` keeps array columns as lists
    (``arrays = "keep"``) or moves them into child tables (``arrays = "child_tables"``)
    whose rows name their parent by ``key`` (a generated ``row_id`` when unset).
    """

    sql: str | None = None
    python: str | None = None
    builtin: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    order_by: str | None = None
    table: str | None = None
    on: list[str] = field(default_factory=list)
    how: Literal["inner", "left", "right", "full"] = "inner"
    separator: str = "_"
    arrays: Literal["keep", "child_tables"] = "keep"
    key: str | None = None


@dataclass(frozen=True)
class TableSection:
    """What holds for a catalog table whichever job writes it, as ``[tables."db.table"]``:
    data-quality rules checked in every run that writes it and by ``lakelet check``."""

    quality: list[QualityRule] = field(default_factory=list)


@dataclass(frozen=True)
class JobSection:
    output: str
    sql: str | None = None
    mode: Literal["overwrite", "append"] = "overwrite"
    engine: Literal["duckdb", "spark"] = "duckdb"
    description: str | None = None
    trigger: dict[str, Any] = field(default_factory=dict)
    quality: list[QualityRule] = field(default_factory=list)
    max_retries: int = 0
    timeout: int | None = None  # seconds; the run is interrupted and marked "timeout"
    max_concurrent_runs: int = 1
    bookmark: bool = False  # read only new raw files / Iceberg snapshots (append jobs)
    steps: list[StepSection] = field(default_factory=list)


@dataclass(frozen=True)
class SparkSection:
    """The Spark engine (``engine = "spark"`` or ``lakelet run JOB --engine spark``).

    Local mode by default. ``jars`` are added to ``spark.jars`` (the Iceberg runtime and
    the catalog's JDBC driver are found by themselves); ``packages`` go to
    ``spark.jars.packages`` where Maven is reachable; ``conf`` is passed as is and wins
    over Lakelet's own settings; ``warehouse`` is the lake root as the cluster sees it.
    """

    master: str = "local[2]"
    conf: dict[str, str] = field(default_factory=dict)
    jars: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    warehouse: str | None = None


@dataclass(frozen=True)
class WorkflowSection:
    """A DAG of crawlers and jobs: ``start`` nodes (``crawler:NAME`` / ``job:NAME``), and
    every job whose ``trigger.after`` follows from them (see :mod:`lakelet.jobs.workflow`)."""

    start: list[str]
    description: str | None = None


class _InvalidSetting(ValueError):
    """Raised by a section's own checks; :func:`_build` adds the key's place and source."""


def _check_range(key: str, value: float | None, low: float, high: float | None) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bounds = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
        raise _InvalidSetting(f"{key} = {value!r}: must be {bounds}")


FUNCTION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "_HANDLER")
APP_REF_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*")


@dataclass(frozen=True)
class FunctionSettingsSection:
    """Overrides for one function, ``[functions.settings.NAME]``: they win over the
    decorator's arguments, so the same app can run with other limits per project.
    Limits are Lambda's: 128–10240 MB, up to 900 s, 0–2 asynchronous retries."""

    memory_mb: int | None = None
    timeout_s: float | None = None
    reserved_concurrency: int | None = None
    retries: int | None = None
    dead_letter_queue: str | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_range("memory_mb", self.memory_mb, 128, 10240)
        if self.timeout_s is not None and not 0 < self.timeout_s <= 900:
            raise _InvalidSetting(f"timeout_s = {self.timeout_s!r}: must be over 0, at most 900")
        _check_range("reserved_concurrency", self.reserved_concurrency, 0, None)
        _check_range("retries", self.retries, 0, 2)
        if self.dead_letter_queue is not None and not QUEUE_NAME_RE.match(self.dead_letter_queue):
            raise _InvalidSetting(
                f"dead_letter_queue = {self.dead_letter_queue!r}: use 1 to 80 letters, "
                "digits, '-' and '_'"
            )
        for name, value in self.environment.items():
            if not ENV_NAME_RE.match(name):
                raise _InvalidSetting(
                    f"environment.{name}: a variable name is a letter, then letters, digits, '_'"
                )
            if name in RESERVED_ENV or name.startswith("AWS_LAMBDA_"):
                raise _InvalidSetting(f"environment.{name}: Lambda reserves this variable")
            if not isinstance(value, str):
                raise _InvalidSetting(f"environment.{name} = {value!r}: must be a string")


@dataclass(frozen=True)
class GatewaySection:
    """The HTTP API that ``lakelet up`` serves (``[functions.gateway]``).

    CORS is off until ``cors_origins`` is set (``["*"]`` for any). ``api_keys`` are
    accepted in ``x-api-key`` by ``auth="api_key"`` routes (keep them out of the file:
    ``LAKELET__FUNCTIONS__GATEWAY__API_KEYS='["k1", "k2"]'``); ``auth="jwt"`` routes
    check tokens against ``jwks_url`` or ``jwks_file``, ``jwt_issuer`` and
    ``jwt_audience``. ``throttle_rate``/``throttle_burst`` limit the whole API (token
    bucket); bodies over ``max_body_bytes`` (Lambda's 6 MB) get 413.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = field(default_factory=list)
    cors_methods: list[str] = field(default_factory=lambda: ["*"])
    cors_headers: list[str] = field(default_factory=lambda: ["*"])
    api_keys: list[str] = field(default_factory=list)
    jwt_issuer: str | None = None
    jwt_audience: list[str] = field(default_factory=list)
    jwks_url: str | None = None
    jwks_file: str | None = None
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    max_body_bytes: int = 6 * 1024 * 1024

    def __post_init__(self) -> None:
        _check_range("port", self.port, 0, 65535)
        _check_range("max_body_bytes", self.max_body_bytes, 1, None)
        if self.throttle_rate is not None and self.throttle_rate <= 0:
            raise _InvalidSetting(f"throttle_rate = {self.throttle_rate!r}: must be over 0")
        _check_range("throttle_burst", self.throttle_burst, 1, None)
        unknown = [m for m in self.cors_methods if m.upper() not in HTTP_METHODS]
        if unknown:
            raise _InvalidSetting(
                f"cors_methods: {unknown[0]!r} is not one of {', '.join(HTTP_METHODS)}"
            )
        if self.jwks_url is not None and self.jwks_file is not None:
            raise _InvalidSetting("jwks_url and jwks_file: set one of them, not both")
        if any(not key for key in self.api_keys):
            raise _InvalidSetting("api_keys: an API key cannot be empty")


@dataclass(frozen=True)
class QueueSection:
    """A local queue, ``[functions.queues.NAME]``, with SQS's settings: a message not
    deleted within ``visibility_timeout_s`` is delivered again; after
    ``max_receive_count`` deliveries it moves to the ``dead_letter`` queue."""

    visibility_timeout_s: float = 30.0
    max_receive_count: int | None = None
    dead_letter: str | None = None

    def __post_init__(self) -> None:
        _check_range("visibility_timeout_s", self.visibility_timeout_s, 0, 43200)
        _check_range("max_receive_count", self.max_receive_count, 1, 1000)
        if (self.max_receive_count is None) != (self.dead_letter is None):
            raise _InvalidSetting("max_receive_count and dead_letter: a redrive policy needs both")
        if self.dead_letter is not None and not QUEUE_NAME_RE.match(self.dead_letter):
            raise _InvalidSetting(
                f"dead_letter = {self.dead_letter!r}: use 1 to 80 letters, digits, '-' and '_'"
            )


@dataclass(frozen=True)
class FunctionsSection:
    """The serverless runtime: the app (``module:attribute`` holding a
    ``lakelet.App``), its limits and the names it uses in ARNs.

    ``max_concurrency`` caps running invocations across all functions (Lambda's
    account concurrency); a worker idle for ``idle_timeout_s`` is stopped (scale to
    zero; the next call is a cold start).
    """

    app: str | None = None
    idle_timeout_s: float = 300.0
    max_concurrency: int = 10
    region: str = "us-east-1"
    account_id: str = "123456789012"
    settings: dict[str, FunctionSettingsSection] = field(default_factory=dict)
    gateway: GatewaySection = field(default_factory=GatewaySection)
    queues: dict[str, QueueSection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.app is not None and not APP_REF_RE.match(self.app):
            raise _InvalidSetting(
                f"app = {self.app!r}: expected 'module:attribute', for example 'app:app'"
            )
        _check_range("idle_timeout_s", self.idle_timeout_s, 0, None)
        _check_range("max_concurrency", self.max_concurrency, 1, None)
        if not REGION_RE.match(self.region):
            raise _InvalidSetting(f"region = {self.region!r}: expected a region like 'us-east-1'")
        if not re.fullmatch(r"\d{12}", self.account_id):
            raise _InvalidSetting(f"account_id = {self.account_id!r}: expected 12 digits")
        for name in self.settings:
            if not FUNCTION_NAME_RE.match(name):
                raise _InvalidSetting(
                    f"settings.{name}: a function name is letters, digits, '-' and '_'"
                )
        for name, queue in self.queues.items():
            if not QUEUE_NAME_RE.match(name):
                raise _InvalidSetting(
                    f"queues.{name}: a queue name is 1 to 80 letters, digits, '-' and '_'"
                )
            if queue.dead_letter == name:
                raise _InvalidSetting(
                    f"queues.{name}.dead_letter = {name!r}: a queue cannot be its own "
                    "dead-letter queue"
                )


@dataclass(frozen=True)
class Settings:
    """The whole, validated configuration of one project."""

    project: ProjectSection = field(default_factory=ProjectSection)
    lake: LakeSection = field(default_factory=LakeSection)
    s3: S3Section = field(default_factory=S3Section)
    catalog: CatalogSection = field(default_factory=CatalogSection)
    warehouse: WarehouseSection = field(default_factory=WarehouseSection)
    metadata: MetadataSection = field(default_factory=MetadataSection)
    crawlers: dict[str, CrawlerSection] = field(default_factory=dict)
    classifiers: dict[str, ClassifierSection] = field(default_factory=dict)
    workflows: dict[str, WorkflowSection] = field(default_factory=dict)
    jobs: dict[str, JobSection] = field(default_factory=dict)
    tables: dict[str, TableSection] = field(default_factory=dict)
    spark: SparkSection = field(default_factory=SparkSection)
    functions: FunctionsSection = field(default_factory=FunctionsSection)


def load_settings(
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read ``root/lakelet.toml`` and layer environment variables and overrides on it.

    ``overrides`` uses dotted keys (``{"warehouse.uri": "duckdb:///x.duckdb"}``).
    """
    path = root / CONFIG_FILE
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from exc
    settings: Settings = _build(Settings, raw, source=str(path), where="")
    # Apply each later layer alone and re-check, so an error names its real source.
    for name, parts, value in _env_layers(os.environ if env is None else env):
        _set_dotted(raw, parts, value)
        settings = _build(Settings, raw, source=f"environment variable {name}", where="")
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted.split("."), value)
        settings = _build(Settings, raw, source=f"setting override {dotted}", where="")
    _check_references(settings, str(path))
    if settings.tables:  # parsing rules imports the catalog: only pay when declared
        from lakelet.jobs.quality.tables import check_table_sections

        check_table_sections(settings.tables, str(path))
    return settings


def _check_references(settings: Settings, source: str) -> None:
    """Names that point at other sections must exist."""
    for name, crawler in settings.crawlers.items():
        for classifier in crawler.classifiers:
            if classifier not in settings.classifiers:
                raise ConfigError(
                    _unknown_key_message(
                        f"crawlers.{name}.classifiers: {classifier!r}",
                        classifier,
                        list(settings.classifiers),
                        source,
                    ).replace("unknown setting", "no [classifiers] section named")
                )


def _env_layers(env: Mapping[str, str]) -> list[tuple[str, list[str], Any]]:
    layers = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if len(parts) < 2:
            raise ConfigError(
                f"environment variable {name}: expected LAKELET__SECTION__KEY, "
                "for example LAKELET__WAREHOUSE__URI"
            )
        layers.append((name, parts, _parse_env_value(env[name])))
    return layers


def _parse_env_value(value: str) -> Any:
    """Environment values are TOML literals when they parse as one, else strings."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _set_dotted(raw: dict[str, Any], parts: list[str], value: Any) -> None:
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"setting {'.'.join(parts)}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type[Any], data: Any, *, source: str, where: str) -> Any:
    label = where or "the top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {label} must be a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            dotted = f"{where}.{key}" if where else key
            raise ConfigError(_unknown_key_message(dotted, key, list(fields), source))
        dotted = f"{where}.{key}" if where else key
        kwargs[key] = _coerce(hints[key], value, source=source, where=dotted)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{source}: [{where}] is missing required key {missing[0]!r}")
    try:
        return cls(**kwargs)
    except _InvalidSetting as exc:
        raise ConfigError(f"{source}: {where + '.' if where else ''}{exc}") from None


def _unknown_key_message(dotted: str, key: str, valid: list[str], source: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
    return f"{source}: unknown setting {dotted!r}{hint}"


def _coerce(hint: Any, value: Any, *, source: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, source=source, where=where)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{source}: {where} = {value!r} is not one of {choices}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source=source, where=where)  # type: ignore[arg-type]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} must be a table")
        _key_type, value_type = args
        if dataclasses.is_dataclass(value_type):
            return {
                name: _build(value_type, item, source=source, where=f"{where}.{name}")  # type: ignore[arg-type]
                for name, item in value.items()
            }
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            value = [value] if isinstance(value, str) else value
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {where} must be a list")
        return [_coerce(args[0], v, source=source, where=where) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where} must be an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {where} must be a string, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: {where} must be a number, got {value!r}")
        return float(value)
    return value
