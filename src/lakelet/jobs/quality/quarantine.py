"""The quarantine: rows held back by a job's rules, kept as Iceberg ``quarantine.<job>``.

The original row is stored as JSON text, so every job's quarantine has the same five
columns whatever its output looks like, and a changed output schema never breaks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lakelet.catalog.names import TableName, to_identifier

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.catalog.catalog import WriteResult
    from lakelet.project import Project

QUARANTINE_DATABASE = "quarantine"


def quarantine_table(job: str) -> TableName:
    return TableName(QUARANTINE_DATABASE, to_identifier(job))


def quarantine_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("run_id", pa.string()),
            pa.field("rule", pa.string()),
            pa.field("reason", pa.string()),
            pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
            pa.field("row", pa.string()),
        ]
    )


def write_quarantine(
    project: Project, job: str, held: pa.Table, *, run_id: str, at: datetime
) -> WriteResult:
    """Append the held rows (``rule``, ``reason``, ``row``) in one Iceberg commit."""
    import pyarrow as pa

    count = held.num_rows
    schema = quarantine_schema()
    rows = pa.table(
        {
            "run_id": pa.array([run_id] * count, pa.string()),
            "rule": held.column("rule").cast(pa.string()),
            "reason": held.column("reason").cast(pa.string()),
            "quarantined_at": pa.array([at] * count, schema.field("quarantined_at").type),
            "row": held.column("row").cast(pa.string()),
        },
        schema=schema,
    )
    return project.catalog.write(quarantine_table(job), rows, "append")
