"""The reference scenario: generated vending sales through the whole lake, with the books.

The demo project is an ordinary project (``lakelet.toml`` with crawlers and jobs, SQL in
``jobs/``), so a kept one can be explored with the rest of the CLI. Every number the demo
prints is reconciled against what the generator declared it wrote: rows in the files,
rows read, accepted and rejected (at the injected file and line), rows written and loaded.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.catalog.names import TableName
from lakelet.config import CONFIG_FILE
from lakelet.demo.generate import DEFAULT_END, RAW_BUCKET, Dataset, generate
from lakelet.errors import UserError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.jobs.runs import RunRecord
    from lakelet.project import Project

PROJECT_NAME = "vending"
WAREHOUSE_SCHEMA = "analytics"
# crawler name → lake path it crawls (the table it registers is raw.<name>)
CRAWLERS: dict[str, str] = {"sales": "raw/sales/", "machines": "raw/machines/"}
# job name → what it computes; each writes curated.<name>
JOBS: dict[str, str] = {
    "daily_machine_sales": "revenue, units and transactions per machine per day",
    "top_products": "products ranked by revenue over the whole period",
}
CROSS_LAYER_QUERY = "machine_totals.sql"
TOP_ROWS = 5


@dataclass(frozen=True)
class DemoOptions:
    days: int = 14
    machines: int = 20
    seed: int = 7
    end: date = DEFAULT_END
    purchases: int = 100
    """Purchases the burst sends through the functions gateway (0: no vending flow)."""

    def __post_init__(self) -> None:
        if self.purchases < 0:
            raise UserError(f"--purchases {self.purchases}: use 0 to skip the vending flow")
        if self.days < 1:
            raise UserError(f"--days {self.days}: generate at least one day")
        if self.machines < 1:
            raise UserError(f"--machines {self.machines}: generate at least one machine")


@dataclass(frozen=True)
class Step:
    """One step of the scenario and how long it took."""

    name: str
    detail: str
    seconds: float


@dataclass(frozen=True)
class InputAccount:
    """One input of a job: rows in its files = rows read = accepted + rejected."""

    job: str
    table: str
    rows_in_files: int
    rows_read: int
    rows_accepted: int
    rows_rejected: int


@dataclass(frozen=True)
class JobAccount:
    job: str
    output: str
    status: str
    run_id: str
    rows_read: int
    rows_rejected: int
    rows_written: int
    inputs: list[InputAccount]


@dataclass(frozen=True)
class RejectedRow:
    """A row the pipeline refused, and the fault the generator declared there (if any)."""

    table: str
    file: str
    line: int | None
    reason: str
    injected: str | None


@dataclass(frozen=True)
class LoadAccount:
    source: str
    target: str
    rows_in_source: int
    rows_loaded: int


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoResult:
    """Everything the demo did and counted; ``ok`` is true when every check holds."""

    options: DemoOptions
    project_root: str
    kept: bool
    manifest: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    crawls: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[JobAccount] = field(default_factory=list)
    rejects: list[RejectedRow] = field(default_factory=list)
    loads: list[LoadAccount] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    top_machines: list[dict[str, Any]] = field(default_factory=list)
    top_products: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    vending: dict[str, Any] | None = None
    """The vending flow's books (see :mod:`lakelet.demo.vending`), when it ran."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def files_landed(self) -> int:
        return len(self.manifest["files"])

    @property
    def rows_in_files(self) -> int:
        return sum(int(f["rows"]) for f in self.manifest["files"])

    @property
    def bytes_landed(self) -> int:
        return sum(int(f["bytes"]) for f in self.manifest["files"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "options": asdict(self.options),
            "project": self.project_root,
            "kept": self.kept,
            "files_landed": self.files_landed,
            "bytes_landed": self.bytes_landed,
            "rows_in_files": self.rows_in_files,
            "steps": [asdict(s) for s in self.steps],
            "crawls": self.crawls,
            "jobs": [asdict(j) for j in self.jobs],
            "rejects": [asdict(r) for r in self.rejects],
            "loads": [asdict(load) for load in self.loads],
            "tables": self.tables,
            "top_machines": self.top_machines,
            "top_products": self.top_products,
            "checks": [asdict(c) for c in self.checks],
            "vending": self.vending,
            "manifest": self.manifest,
        }


StepCallback = Callable[[Step], None]


def run_demo(
    options: DemoOptions,
    *,
    keep: Path | None = None,
    on_step: StepCallback | None = None,
) -> DemoResult:
    """Run the scenario in ``keep`` (left in place) or in a temporary folder (removed)."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="lakelet-demo-") as tmp:
            return run_scenario(Path(tmp) / PROJECT_NAME, options, on_step=on_step, kept=False)
    if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise UserError(
            f"--keep {keep}: it exists and is not an empty folder; "
            "name a new or empty folder for the demo project"
        )
    return run_scenario(keep, options, on_step=on_step, kept=True)


def run_scenario(
    folder: Path,
    options: DemoOptions,
    *,
    on_step: StepCallback | None = None,
    kept: bool = True,
) -> DemoResult:
    """Create the demo project in ``folder`` and run the whole pipeline in it."""
    clock = _Clock(on_step)
    with clock.step("generate", "vending-machine sales and the machine register"):
        dataset = generate(
            seed=options.seed, days=options.days, machines=options.machines, end=options.end
        )
        clock.detail = (
            f"{options.machines} machines, {len(dataset.products)} products, "
            f"{options.days} days to {dataset.end}"
        )
    with clock.step("create project", str(folder)):
        project = create_demo_project(folder)
    result = DemoResult(
        options=options, project_root=str(project.root), kept=kept, manifest=dataset.manifest()
    )
    with clock.step("land", "raw files, each recording an object-created event"):
        for file in dataset.files:
            project.store.put(file.bucket, file.key, file.content)
        clock.detail = (
            f"{result.files_landed} files, {result.rows_in_files:,} rows, "
            f"{result.bytes_landed / 1e6:.1f} MB into {RAW_BUCKET}/"
        )
    result.crawls = [_crawl(project, name, clock) for name in CRAWLERS]
    runs = [_run(project, job, clock) for job in JOBS]
    for job in JOBS:
        with clock.step(f"load {job}", f"curated.{job} → warehouse {WAREHOUSE_SCHEMA}.{job}"):
            result.loads.append(_load(project, job, runs))
    with clock.step("query", "raw, curated and warehouse tables in one statement"):
        totals = _cross_layer_totals(project)
        result.top_products = _top_products(project)
    if options.purchases:
        from lakelet.demo.vending import run_vending_burst

        def vending_step(step: Step) -> None:
            clock.steps.append(step)
            if on_step is not None:
                on_step(step)

        vending = run_vending_burst(
            project, options.purchases, seed=options.seed, on_step=vending_step
        )
        result.vending = vending.to_dict()
        result.checks.extend(vending.checks)
    with clock.step("reconcile", "every count against what the generator wrote"):
        _account(project, dataset, runs, result)
        result.top_machines = [
            {k: totals[k][i] for k in totals}
            for i in range(min(TOP_ROWS, len(totals["machine_id"])))
        ]
        result.checks.extend(_checks(dataset, result, totals))
    result.steps = clock.steps
    return result


def create_demo_project(folder: Path) -> Project:
    """An ordinary project: crawlers and jobs in ``lakelet.toml``, the SQL in ``jobs/``."""
    from lakelet.demo.vending import install_vending_app
    from lakelet.project import Project, init_project

    init_project(folder, PROJECT_NAME)
    install_vending_app(folder)
    config = folder / CONFIG_FILE
    sections = [config.read_text(encoding="utf-8").rstrip() + "\n"]
    for name, path in CRAWLERS.items():
        sections.append(f'[crawlers.{name}]\npath = "{path}"\ndatabase = "raw"\n')
    for name, description in JOBS.items():
        sections.append(
            f'[jobs.{name}]\nsql = "jobs/{name}.sql"\noutput = "curated.{name}"\n'
            f'mode = "overwrite"\ndescription = "{description}"\n'
        )
    config.write_text("\n".join(sections), encoding="utf-8")
    for name in JOBS:
        (folder / "jobs" / f"{name}.sql").write_text(sql_text(f"{name}.sql"), encoding="utf-8")
    queries = folder / "queries"
    queries.mkdir(exist_ok=True)
    (queries / CROSS_LAYER_QUERY).write_text(sql_text(CROSS_LAYER_QUERY), encoding="utf-8")
    return Project.open(folder)


def sql_text(name: str) -> str:
    """One of the demo's SQL files, shipped as package data."""
    return resources.files("lakelet.demo").joinpath("sql", name).read_text(encoding="utf-8")


# --- the steps ----------------------------------------------------------------------


class _Clock:
    """Times the steps and reports each one as it finishes."""

    def __init__(self, on_step: StepCallback | None) -> None:
        self.steps: list[Step] = []
        self.detail = ""
        self._on_step = on_step

    @contextmanager
    def step(self, name: str, detail: str) -> Iterator[None]:
        self.detail = detail
        started = time.perf_counter()
        yield
        step = Step(name, self.detail, round(time.perf_counter() - started, 3))
        self.steps.append(step)
        if self._on_step is not None:
            self._on_step(step)


def _crawl(project: Project, name: str, clock: _Clock) -> dict[str, Any]:
    from lakelet.crawler import crawler_spec, run_crawler

    with clock.step(f"crawl {name}", f"{CRAWLERS[name]} → raw.{name}"):
        report = run_crawler(project, name, crawler_spec(project, name))
        summary: dict[str, Any] = report.to_dict()
    return summary


def _run(project: Project, job: str, clock: _Clock) -> RunRecord:
    from lakelet.jobs import run_job

    with clock.step(f"job {job}", JOBS[job]):
        record = run_job(project, job)
        clock.detail = (
            f"read {record.rows_read:,}, rejected {record.rows_rejected}, "
            f"wrote {record.rows_written:,} rows to {record.output}"
        )
    return record


def _load(project: Project, job: str, runs: list[RunRecord]) -> LoadAccount:
    from lakelet.warehouse.loading import load_table

    target = f"{WAREHOUSE_SCHEMA}.{job}"
    loaded = load_table(project, TableName("curated", job), target, mode="replace")
    written = next(r.rows_written for r in runs if r.job == job)
    return LoadAccount(f"curated.{job}", target, written, loaded.rows_loaded)


def _cross_layer_totals(project: Project) -> dict[str, list[Any]]:
    from lakelet.jobs.session import query

    table: pa.Table = query(project, sql_text(CROSS_LAYER_QUERY))
    totals: dict[str, list[Any]] = table.to_pydict()
    return totals


def _top_products(project: Project) -> list[dict[str, Any]]:
    from lakelet.jobs.session import query

    sql = (
        "SELECT rank, product, category, units, revenue "
        f"FROM {WAREHOUSE_SCHEMA}.top_products ORDER BY rank LIMIT {TOP_ROWS}"
    )
    rows: list[dict[str, Any]] = query(project, sql).to_pylist()
    return rows


# --- the books ----------------------------------------------------------------------


def _account(project: Project, dataset: Dataset, runs: list[RunRecord], result: DemoResult) -> None:
    from lakelet.jobs.session import query

    accepted: dict[str, int] = {}
    for name in CRAWLERS:
        counted = query(project, f"SELECT count(*) AS n FROM raw.{name}")
        accepted[f"raw.{name}"] = int(counted.column("n")[0].as_py())
    declared = {(m.location, m.line): m for m in dataset.malformed}
    seen: set[tuple[str, str, int | None]] = set()
    for run in runs:
        inputs = [
            InputAccount(
                job=run.job,
                table=i.table,
                rows_in_files=_rows_in_files(dataset, i.table),
                rows_read=i.rows_read,
                rows_accepted=accepted.get(i.table, i.rows_read - i.rows_rejected),
                rows_rejected=i.rows_rejected,
            )
            for i in run.inputs
        ]
        result.jobs.append(
            JobAccount(
                job=run.job,
                output=run.output,
                status=run.status,
                run_id=run.run_id,
                rows_read=run.rows_read,
                rows_rejected=run.rows_rejected,
                rows_written=run.rows_written,
                inputs=inputs,
            )
        )
        for reject in run.rejects:
            location = lake_location(reject.file, project.store.root)
            key = (reject.table, location, reject.line)
            if key in seen:
                continue
            seen.add(key)
            fault = declared.get((location, reject.line or 0))
            result.rejects.append(
                RejectedRow(
                    table=reject.table,
                    file=location,
                    line=reject.line,
                    reason=reject.reason,
                    injected=fault.kind if fault else None,
                )
            )
    result.tables = _tables(project, result, accepted)


def _rows_in_files(dataset: Dataset, table: str) -> int:
    database, _, name = table.partition(".")
    path = CRAWLERS.get(name)
    if database != RAW_BUCKET or path is None:
        return 0
    return dataset.rows_under(path.partition("/")[2])


def lake_location(file: str, root: str) -> str:
    """A file as ``bucket/key`` when it lies under the lake root (paths and URLs alike)."""
    for prefix in (root.rstrip("/") + "/", "file://" + root.rstrip("/") + "/"):
        if file.startswith(prefix):
            return file[len(prefix) :]
    return file


def _tables(project: Project, result: DemoResult, accepted: dict[str, int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for table, count in accepted.items():
        rows.append({"table": table, "layer": "raw (files, schema on read)", "rows": count})
    for job in result.jobs:
        rows.append({"table": job.output, "layer": "curated (Iceberg)", "rows": job.rows_written})
    for load in result.loads:
        rows.append({"table": load.target, "layer": "warehouse", "rows": load.rows_loaded})
    return rows


def _checks(dataset: Dataset, result: DemoResult, totals: dict[str, list[Any]]) -> list[Check]:
    checks = [
        Check(
            "every job succeeded",
            all(j.status == "succeeded" for j in result.jobs),
            ", ".join(f"{j.job}: {j.status}" for j in result.jobs),
        )
    ]
    for job in result.jobs:
        for i in job.inputs:
            checks.append(
                Check(
                    f"{job.job}: every row of {i.table} read",
                    i.rows_read == i.rows_in_files,
                    f"rows in files {i.rows_in_files:,}, rows read {i.rows_read:,}",
                )
            )
            checks.append(
                Check(
                    f"{job.job}: {i.table} rows read = rows accepted + rows rejected",
                    i.rows_read == i.rows_accepted + i.rows_rejected,
                    f"{i.rows_read:,} = {i.rows_accepted:,} + {i.rows_rejected}",
                )
            )
    found = {(r.file, r.line) for r in result.rejects}
    injected = {(m.location, m.line) for m in dataset.malformed}
    read_prefixes = {
        CRAWLERS[i.table.partition(".")[2]]
        for j in result.jobs
        for i in j.inputs
        if i.table.partition(".")[2] in CRAWLERS
    }
    expected = {(loc, line) for loc, line in injected if loc.startswith(tuple(read_prefixes))}
    missing, unexpected = expected - found, found - expected
    checks.append(
        Check(
            "rejected rows are exactly the injected ones",
            not missing and not unexpected,
            f"{len(found)} rejected, {len(expected)} injected"
            + (f"; not rejected: {sorted(missing)}" if missing else "")
            + (f"; rejected but not injected: {sorted(unexpected)}" if unexpected else ""),
        )
    )
    for load in result.loads:
        checks.append(
            Check(
                f"{load.target} has every row of {load.source}",
                load.rows_loaded == load.rows_in_source,
                f"written {load.rows_in_source:,}, loaded {load.rows_loaded:,}",
            )
        )
    layers = ("raw", "curated", "warehouse")
    for measure in ("units", "revenue"):
        columns = [totals[f"{layer}_{measure}"] for layer in layers]
        per_machine = all(len(set(values)) == 1 for values in zip(*columns, strict=True))
        sums = [sum(v for v in column if v is not None) for column in columns]
        checks.append(
            Check(
                f"{measure} per machine agree across raw, curated and warehouse",
                per_machine and bool(totals["machine_id"]),
                " = ".join(f"{layer} {value:,}" for layer, value in zip(layers, sums, strict=True)),
            )
        )
    return checks
