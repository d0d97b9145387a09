"""The catalog and the metadata store on a real PostgreSQL server instead of SQLite."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
from pgserver import PostgresServer

from lakelet.catalog import Column, RawTable, TableName
from lakelet.jobs import RunStore, query, run_job
from lakelet.project import Project, init_project


def pg_project(tmp_path: Path, server: PostgresServer) -> Project:
    uri = server.create_database(f"lakelet_{uuid.uuid4().hex[:8]}")
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "lakelet.toml").write_text(
        f'[catalog]\nuri = "{uri}"\n[metadata]\nuri = "{uri}"\n'
        '[jobs.totals]\nsql = "jobs/totals.sql"\noutput = "curated.totals"\n'
    )
    project = init_project(folder)
    (folder / "jobs" / "totals.sql").write_text(
        "SELECT machine, sum(units) AS units FROM curated.sales GROUP BY machine ORDER BY machine"
    )
    return project


def test_iceberg_tables_raw_versions_and_runs_on_postgres(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    project = pg_project(tmp_path, postgres_server)
    sales = TableName("curated", "sales")
    project.catalog.write(
        sales, pa.table({"machine": ["a", "b", "a"], "units": [1, 2, 3]}), "overwrite"
    )
    raw = RawTable(
        database="raw",
        name="sales",
        location="raw/sales/",
        format="csv",
        columns=[Column("machine", "VARCHAR")],
    )
    assert project.catalog.register_raw(raw).version == 1
    assert project.catalog.register_raw(raw).version == 2

    record = run_job(project, "totals")
    assert record.status == "succeeded" and record.rows_written == 2

    # A second process (a new Project) sees everything through PostgreSQL alone.
    again = Project.open(project.root)
    names = {(str(e.name), e.kind) for e in again.catalog.tables()}
    assert names == {
        ("curated.sales", "iceberg"),
        ("curated.totals", "iceberg"),
        ("raw.sales", "raw"),
    }
    assert [v.version for v in again.catalog.raw.versions(TableName("raw", "sales"))] == [1, 2]
    assert query(again, "SELECT * FROM curated.totals").to_pylist() == [
        {"machine": "a", "units": 4},
        {"machine": "b", "units": 2},
    ]
    (stored,) = RunStore(again.metadata).recent("totals")
    assert stored.run_id == record.run_id
    assert not (project.root / ".lakelet" / "catalog.db").exists()
